// `panicstop show` on dumps made by the project's own writers: a child with
// threads parked in known functions is stopped, captured once, and written as
// a text report and a mini core; show must print every thread of each with
// its known function, and file:line from this build's debug info.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <string>
#include <vector>

#include "dump/elf_core.hpp"
#include "dump/text_report.hpp"
#include "dump/dump_options.hpp"
#include "snapshot/parked_threads.hpp"
#include "snapshot/snapshot.hpp"
#include "stop/stop.hpp"
#include "support/child_process.hpp"

namespace panicstop {
namespace {

using testing::ChildOptions;
using testing::ChildResult;

constexpr int kParked = 3;

// In the child: park, stop, capture once, write both dumps, exit.
void write_both_dumps(const std::string& dir) {
  if (!detail::reserve_snapshot()) _exit(2);
  detail::claim_current_slot();
  testing::ParkedThreads parked(kParked, {testing::park_in_alpha, testing::park_in_beta, testing::park_in_gamma});
  if (!parked.stop()) _exit(3);
  detail::save_own_context_via_signal();
  detail::CrashRecord& rec = detail::reset_crash_record();
  if (!detail::capture_crash_record(rec)) _exit(4);
  rec.facts.message = "writer dumps test";
  rec.facts.signo = SIGABRT;
  detail::DumpOptions t = detail::dump_options();
  t.core = detail::CoreKind::kMini;
  int report = open((dir + "/dump.txt").c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
  int core = open((dir + "/dump.core").c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
  if (report < 0 || core < 0) _exit(5);
  if (!detail::write_text_report(rec, t, report)) _exit(6);
  if (!detail::write_elf_core(rec, t, core)) _exit(7);
  close(report);
  close(core);
  _exit(0);
}

ChildResult show(const std::string& file) {
  ChildOptions options;
  options.deadline = std::chrono::milliseconds(30000);
  return testing::run_command({PANICSTOP_TOOL_PATH, "show", file}, options);
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = 0; (pos = text.find(needle, pos)) != std::string::npos; pos += needle.size()) ++n;
  return n;
}

class ShowWriterDumps : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir;
    ChildOptions options;
    options.deadline = std::chrono::milliseconds(30000);
    std::string path = dir_->path();
    child_ = new ChildResult(testing::run_in_child([path] { write_both_dumps(path); }, options));
  }
  static void TearDownTestSuite() {
    delete child_;
    delete dir_;
  }
  void SetUp() override {
    ASSERT_FALSE(child_->hung) << child_->describe();
    ASSERT_TRUE(child_->exited && child_->exit_code == 0) << child_->describe() << "\n" << child_->output;
  }
  static inline testing::TempDir* dir_ = nullptr;
  static inline ChildResult* child_ = nullptr;
};

void expect_parked_stacks(const std::string& output) {
  for (const char* fn : {"park_in_alpha()", "park_in_beta()", "park_in_gamma()"}) {
    EXPECT_NE(output.find(std::string("panicstop::testing::") + fn + "+0x"), std::string::npos)
        << fn << " missing in\n" << output;
  }
  EXPECT_NE(output.find("parked_threads.hpp:"), std::string::npos) << "no file:line in\n" << output;
}

TEST_F(ShowWriterDumps, TextReport) {
  ChildResult r = show(dir_->path() + "/dump.txt");
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_EQ(r.output.rfind("panic: writer dumps test\n", 0), 0u) << r.output;
  EXPECT_EQ(count(r.output, "\nthread "), size_t(kParked + 1)) << r.output;
  expect_parked_stacks(r.output);
}

TEST_F(ShowWriterDumps, MiniCore) {
  ChildResult r = show(dir_->path() + "/dump.core");
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_EQ(r.output.rfind("panic: writer dumps test\n", 0), 0u) << r.output;
  EXPECT_EQ(count(r.output, "\nthread "), size_t(kParked + 1)) << r.output;
  for (int i = 0; i < kParked; ++i) {
    EXPECT_NE(r.output.find("(parked-" + std::to_string(i) + ") [stopped]"), std::string::npos) << r.output;
  }
  expect_parked_stacks(r.output);
}

}  // namespace
}  // namespace panicstop
