// `panicstop show` on a live dump and on a crash, each written by a real
// program in a child with a deadline. A live dump's core gives its capturing
// thread SIGSTOP (for debuggers) and the writer calls that thread the
// panicking one; show must still say that nothing panicked: no "[panicking]"
// thread, no signal as the cause, the thread that took the dump named, in the
// core, the text report and the minidump alike. A crash's dumps must still
// say "[panicking]" and the signal.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <regex>
#include <string>

#include "panicstop/kdb.hpp"
#include "panicstop/panic.hpp"
#include "snapshot/parked_threads.hpp"
#include "support/child_process.hpp"
#include "sys/syscall.hpp"

namespace panicstop {
namespace {

using testing::ChildOptions;
using testing::ChildResult;
using testing::TempDir;

const std::vector<std::pair<std::string, std::string>> kAllDumps = {
    {"PANICSTOP_DUMP", "text,core,minidump"}, {"PANICSTOP_CORE_LIMIT", "ignore"}};

ChildOptions dumps_into(const TempDir& dir) {
  ChildOptions options = testing::with_env(kAllDumps, 30000);
  options.set_env.emplace_back("PANICSTOP_DUMP_DIR", dir.path());
  options.unset_env = {"PANICSTOP_UPLOAD_URL"};
  return options;
}

ChildResult show(const std::vector<std::string>& args) {
  std::vector<std::string> argv{PANICSTOP_TOOL_PATH, "show"};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildOptions options;
  options.deadline = std::chrono::milliseconds(30000);
  return testing::run_command(argv, options);
}

class ShowLiveDumpAndCrash : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    live_dir_ = new TempDir;
    crash_dir_ = new TempDir;
    live_ = new ChildResult(testing::run_in_child(
        [] {
          install();
          testing::ParkedThreads parked(2, {testing::park_in_alpha}, "live");
          printf("dumper=%d\n", sys::gettid());
          fflush(stdout);
          _exit(live_dump(nullptr) == 3 ? 0 : 3);  // text, core, minidump
        },
        dumps_into(*live_dir_)));
    crash_ = new ChildResult(testing::run_in_child(
        [] {
          install();
          testing::ParkedThreads parked(2, {testing::park_in_beta}, "crash");
          panic("show test crash");
        },
        dumps_into(*crash_dir_)));
  }
  static void TearDownTestSuite() {
    delete live_;
    delete crash_;
    delete live_dir_;
    delete crash_dir_;
  }

  static int dumper() {
    std::smatch m;
    return std::regex_search(live_->output, m, std::regex(R"(dumper=(\d+))")) ? std::stoi(m[1]) : 0;
  }

  static inline TempDir* live_dir_ = nullptr;
  static inline TempDir* crash_dir_ = nullptr;
  static inline ChildResult* live_ = nullptr;
  static inline ChildResult* crash_ = nullptr;
};

TEST_F(ShowLiveDumpAndCrash, LiveDumpNamesTheDumpingThreadAndNoCause) {
  ASSERT_TRUE(live_->exited && live_->exit_code == 0) << live_->describe() << "\n" << live_->output;
  int tid = dumper();
  ASSERT_NE(tid, 0) << live_->output;
  for (const char* suffix : {".core", ".txt", ".dmp"}) {
    std::string file = live_dir_->file_ending(suffix);
    ASSERT_FALSE(file.empty()) << "no " << suffix << " in " << live_dir_->path() << "\n" << live_->output;
    ChildResult r = show({file});
    ASSERT_TRUE(r.exited && r.exit_code == 0) << suffix << ": " << r.describe() << "\n" << r.output;
    EXPECT_EQ(r.output.find("[panicking]"), std::string::npos) << suffix << ":\n" << r.output;
    EXPECT_EQ(r.output.find("SIGSTOP"), std::string::npos) << suffix << ":\n" << r.output;
    EXPECT_EQ(r.output.find("signal 19"), std::string::npos) << suffix << ":\n" << r.output;
    std::string heading = "\nlive dump: the process kept running; thread " + std::to_string(tid) + " (";
    EXPECT_NE(r.output.find(heading), std::string::npos) << suffix << ":\n" << r.output;
    std::regex block("\nthread " + std::to_string(tid) + R"( \([^)]*\) \[dumping\])");
    EXPECT_TRUE(std::regex_search(r.output, block)) << suffix << ":\n" << r.output;
  }
}

// The core carries the live dump's reason (its note's live_reason line), so
// show gives it the same first line as for the text report beside it.
TEST_F(ShowLiveDumpAndCrash, LiveCoreSaysTheReasonTheTextReportSays) {
  ASSERT_TRUE(live_->exited && live_->exit_code == 0) << live_->describe() << "\n" << live_->output;
  ChildResult text = show({live_dir_->file_ending(".txt")});
  ChildResult core = show({live_dir_->file_ending(".core")});
  const std::string first = text.output.substr(0, text.output.find('\n'));
  EXPECT_EQ(first.rfind("panic: (none) ", 0), 0u) << text.output;
  EXPECT_GT(first.size(), std::string("panic: (none) ").size()) << text.output;
  EXPECT_EQ(core.output.substr(0, core.output.find('\n')), first) << core.output;
}

TEST_F(ShowLiveDumpAndCrash, LiveCoreJsonHasNoSignalNorPanickingThread) {
  ASSERT_TRUE(live_->exited && live_->exit_code == 0) << live_->describe() << "\n" << live_->output;
  ChildResult r = show({"--json", live_dir_->file_ending(".core")});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("\"signal\":null,\"panicking_tid\":null,\"live_dump\":true,\"dumping_tid\":" +
                          std::to_string(dumper()) + ","),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("\"state\":\"panicking\""), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("\"signal\":19"), std::string::npos) << r.output;
}

TEST_F(ShowLiveDumpAndCrash, CrashStillSaysPanickingAndItsSignal) {
  ASSERT_TRUE(crash_->signaled && crash_->term_signal == SIGABRT) << crash_->describe() << "\n" << crash_->output;
  for (const char* suffix : {".core", ".txt", ".dmp"}) {
    std::string file = crash_dir_->file_ending(suffix);
    ASSERT_FALSE(file.empty()) << "no " << suffix << " in " << crash_dir_->path() << "\n" << crash_->output;
    ChildResult r = show({file});
    ASSERT_TRUE(r.exited && r.exit_code == 0) << suffix << ": " << r.describe() << "\n" << r.output;
    EXPECT_EQ(r.output.rfind("panic: show test crash\n", 0), 0u) << suffix << ":\n" << r.output;
    EXPECT_NE(r.output.find("[panicking]"), std::string::npos) << suffix << ":\n" << r.output;
    EXPECT_EQ(r.output.find("live dump"), std::string::npos) << suffix << ":\n" << r.output;
    EXPECT_EQ(r.output.find("[dumping]"), std::string::npos) << suffix << ":\n" << r.output;
  }
  ChildResult core = show({crash_dir_->file_ending(".core")});
  EXPECT_NE(core.output.find("core: pid "), std::string::npos) << core.output;
  EXPECT_NE(core.output.find(", signal 6 (SIGABRT)"), std::string::npos) << core.output;
  EXPECT_NE(core.output.find("\n  signal 6 (SIGABRT)\n"), std::string::npos) << core.output;
  ChildResult json = show({"--json", crash_dir_->file_ending(".core")});
  EXPECT_NE(json.output.find("\"signal\":6,\"panicking_tid\":"), std::string::npos) << json.output;
  EXPECT_NE(json.output.find("\"live_dump\":false,\"dumping_tid\":null"), std::string::npos) << json.output;
}

}  // namespace
}  // namespace panicstop
