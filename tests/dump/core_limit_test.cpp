// `ulimit -c 0` and a non-dumpable process get no core from panicstop (the
// text report, which holds no memory, is still written) unless
// PANICSTOP_CORE_LIMIT=ignore.
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <functional>
#include <string>

#include "panicstop/panic.hpp"
#include "support/child_process.hpp"

namespace panicstop {
namespace {

using testing::ChildOptions;
using testing::run_in_child;
using testing::TempDir;

struct Outcome {
  testing::ChildResult child;
  bool text = false, core = false;
};

Outcome panic_after(const std::function<void()>& restrict_process, const char* core_limit) {
  TempDir dir;
  // exit, not die: a process that raised its core limit would also get the
  // kernel's core, in the working directory.
  ChildOptions options = testing::with_env(
      {{"PANICSTOP_DUMP", "text,core"}, {"PANICSTOP_DUMP_DIR", dir.path()}, {"PANICSTOP_ON_PANIC", "exit"}});
  if (core_limit != nullptr) options.set_env.push_back({"PANICSTOP_CORE_LIMIT", core_limit});
  else options.unset_env.push_back("PANICSTOP_CORE_LIMIT");
  Outcome out;
  out.child = run_in_child(
      [&] {
        restrict_process();
        install();
        panic("core limit test");
      },
      options);
  for (const auto& name : dir.list()) {
    out.text |= name.size() > 4 && name.compare(name.size() - 4, 4, ".txt") == 0;
    out.core |= name.size() > 5 && name.compare(name.size() - 5, 5, ".core") == 0;
  }
  return out;
}

void no_core_limit() {
  struct rlimit zero = {0, RLIM_INFINITY};
  if (setrlimit(RLIMIT_CORE, &zero) != 0) _exit(3);
}

void not_dumpable() {
  struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
  setrlimit(RLIMIT_CORE, &unlimited);
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) _exit(3);
}

TEST(CoreLimit, UlimitZeroWritesTheReportButNoCore) {
  Outcome o = panic_after(no_core_limit, nullptr);
  ASSERT_FALSE(o.child.hung) << o.child.describe();
  EXPECT_TRUE(o.text) << o.child.output;
  EXPECT_FALSE(o.core) << o.child.output;
  EXPECT_NE(o.child.output.find("panicstop: no core: RLIMIT_CORE is 0"), std::string::npos) << o.child.output;
}

TEST(CoreLimit, ANonDumpableProcessGetsNoCore) {
  Outcome o = panic_after(not_dumpable, "respect");
  ASSERT_FALSE(o.child.hung) << o.child.describe();
  EXPECT_TRUE(o.text) << o.child.output;
  EXPECT_FALSE(o.core) << o.child.output;
  EXPECT_NE(o.child.output.find("panicstop: no core: the process is not dumpable"), std::string::npos)
      << o.child.output;
}

TEST(CoreLimit, IgnoreWritesTheCoreAnyway) {
  Outcome zero = panic_after(no_core_limit, "ignore");
  EXPECT_TRUE(zero.text && zero.core) << zero.child.output;
  Outcome secret = panic_after(not_dumpable, "ignore");
  EXPECT_TRUE(secret.text && secret.core) << secret.child.output;
}

TEST(CoreLimit, AnUnlimitedDumpableProcessGetsItsCore) {
  Outcome o = panic_after([] {
    struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
    setrlimit(RLIMIT_CORE, &unlimited);
  }, nullptr);
  EXPECT_TRUE(o.text && o.core) << o.child.output;
}

}  // namespace
}  // namespace panicstop
