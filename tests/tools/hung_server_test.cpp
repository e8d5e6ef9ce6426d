// The README's kdb story on examples/hung_server.cpp: a process whose two
// handlers deadlock; `panicstop kdb PID -c locks` names each lock's owner and
// waiter, `panicstop dump PID` takes a core, and the process is still there.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <regex>
#include <string>

#include "support/child_process.hpp"

namespace panicstop {
namespace {

using testing::run_command;
using testing::TempDir;

const std::string kTool = PANICSTOP_TOOL_PATH;

TEST(HungServer, KdbShowsTheDeadlockAndDumpLeavesItRunning) {
#ifndef PANICSTOP_HUNG_SERVER
  GTEST_SKIP() << "the examples are not built (PANICSTOP_BUILD_EXAMPLES=OFF)";
#else
  TempDir dir;
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    setenv("PANICSTOP_DUMP_DIR", dir.path().c_str(), 1);
    setenv("PANICSTOP_CORE_LIMIT", "ignore", 1);  // a core is expected wherever ulimit -c is 0
    execl(PANICSTOP_HUNG_SERVER, "hung_server", nullptr);
    _exit(127);
  }
  close(out[1]);
  char line[128] = {};
  ssize_t n = read(out[0], line, sizeof line - 1);  // "hung_server: pid N; ..."
  close(out[0]);
  ASSERT_GT(n, 0);
  ASSERT_EQ(std::string(line).find("hung_server: pid " + std::to_string(pid)), 0u) << line;

  // The handlers deadlock right after the line; ask until kdb sees both
  // waiting (each ask stops and resumes the process), with a deadline. Both
  // locks are held a moment before their waiters block on them.
  const std::regex first(R"(handler-1 .*waiting for mutex "cache" .*held by thread \d+)");
  const std::regex second(R"(handler-2 .*waiting for mutex "sessions" .*held by thread \d+)");
  std::string shown;
  std::smatch m;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = run_command({kTool, "kdb", std::to_string(pid), "-c", "locks", "-c", "threads"},
                         testing::with_env({}, 20000));
    ASSERT_FALSE(r.hung) << r.describe();
    shown = r.output;
    if (std::regex_search(shown, m, first) && std::regex_search(shown, m, second)) break;
  }
  EXPECT_NE(shown.find("name=sessions"), std::string::npos) << shown;
  EXPECT_NE(shown.find("name=cache"), std::string::npos) << shown;
  EXPECT_TRUE(std::regex_search(shown, m, first)) << shown;
  EXPECT_TRUE(std::regex_search(shown, m, second)) << shown;

  auto dump = run_command({kTool, "dump", std::to_string(pid)}, testing::with_env({}, 20000));
  EXPECT_TRUE(dump.exited && dump.exit_code == 0) << dump.describe() << dump.output;
  EXPECT_EQ(dir.list().size(), 2u) << dump.output;
  EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), 0) << "the hung server is still running after kdb and the dump";
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
#endif
}

}  // namespace
}  // namespace panicstop
