// Crashes in a process whose /proc misleads or is missing: the leader has
// exited (main() returned through pthread_exit()), /proc was covered after
// install, or was never there. Dumps must stay complete where the kernel
// still allows it, and say what they could not read otherwise.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <regex>
#include <string>
#include <thread>

#include "panicstop/panic.hpp"
#include "panicstop/thread.hpp"
#include "snapshot/crash_dumps.hpp"
#include "support/hide_proc.hpp"
#include "support/reports.hpp"
#include "sys/syscall.hpp"

namespace panicstop {
namespace {

std::atomic<uint32_t> g_forever{0};
std::atomic<int> g_parked{0};

__attribute__((noinline)) void parked_for_the_dump() {
  volatile int on_stack = 0;
  printf("parked=%d stack=0x%lx\n", sys::gettid(), static_cast<unsigned long>(reinterpret_cast<uintptr_t>(&on_stack)));
  fflush(stdout);
  g_parked.fetch_add(1);
  while (true) sys::futex_wait(&g_forever, 0);
}

void start_parked(int n, bool registered) {
  for (int i = 0; i < n; ++i)
    std::thread([registered] {
      if (registered) set_thread_name("registered");
      parked_for_the_dump();
    }).detach();
  while (g_parked.load() < n) sched_yield();
}

__attribute__((noinline)) void crash_here() {
  int* null = nullptr;
  __asm__ volatile("" : "+r"(null));
  *null = 1;
  __asm__ volatile("" ::: "memory");
}

char leader_state() {
  std::string stat = testing::read_file("/proc/self/task/" + std::to_string(getpid()) + "/stat");
  size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() ? stat[close + 2] : '?';
}

__attribute__((noinline)) void crash_after_the_leader_exited() {
  while (leader_state() != 'Z') sched_yield();
  crash_here();
  __asm__ volatile("" ::: "memory");  // not a tail call: this frame stays
}

std::string lead_block(const std::string& report) {
  size_t at = report.find("[panicking]");
  if (at == std::string::npos) return "";
  return report.substr(at, report.find("\nthread ", at) - at);
}

// Every "parked=TID stack=0x..." the child printed: stopped, unwound, in the core.
void expect_parked_threads_dumped(const testing::CrashDumps& d, int expected) {
  std::regex parked(R"(parked=(\d+) stack=0x([0-9a-f]+))");
  int seen = 0;
  for (std::sregex_iterator it(d.child.output.begin(), d.child.output.end(), parked), end; it != end; ++it, ++seen) {
    std::string block = testing::thread_block(d.report, std::stoi((*it)[1]));
    EXPECT_NE(block.find("[stopped]"), std::string::npos) << block;
    std::string stack = testing::stack_of(d.report, std::stoi((*it)[1]));
    EXPECT_NE(stack.find("parked_for_the_dump"), std::string::npos) << block << "\n" << stack;
    EXPECT_TRUE(testing::core_has_memory_at(d.core_path, uintptr_t(std::stoull((*it)[2], nullptr, 16))))
        << "thread " << (*it)[1] << ": stack not in the core";
  }
  EXPECT_EQ(seen, expected);
}

TEST(CaptureProc, LeaderExitedThroughPthreadExit) {
  testing::TempDir dir;
  testing::CrashDumps d = testing::crash_with_dumps(
      dir.path(),
      [] {
        install();
        start_parked(2, false);
        std::thread(crash_after_the_leader_exited).detach();
        // As pthread_exit() from main() ends, without unwinding through the
        // test runner's catch(...).
        for (;;) sys::raw_syscall(SYS_exit, 0);
      },
      {{"PANICSTOP_STOP_TIMEOUT_MS", "5000"}});
  ASSERT_FALSE(d.child.hung) << d.child.output;
  ASSERT_FALSE(d.report.empty()) << d.child.describe() << "\n" << d.child.output;
  // The stop did not wait its 5 s for the dead leader.
  EXPECT_LT(d.child.elapsed.count(), 4000) << d.child.output;
  EXPECT_TRUE(testing::lists_module(d.report, "libc.so")) << d.report.substr(0, 2000);
  EXPECT_NE(d.report.find("snapshot_capture_proc_test"), std::string::npos) << "cmdline empty:\n"
                                                                              << d.report.substr(0, 400);
  std::string lead = lead_block(d.report);
  EXPECT_NE(lead.find("crash_after_the_leader_exited"), std::string::npos) << lead;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(d.report, m, std::regex(R"(process (\d+) )")));
  std::string leader = testing::thread_block(d.report, std::stoi(m[1]));
  EXPECT_NE(leader.find("it had exited"), std::string::npos) << leader;
  EXPECT_NE(leader.find("(no registers: the thread had exited)"), std::string::npos) << leader;
  EXPECT_EQ(d.report.find("incomplete:"), std::string::npos) << d.report.substr(0, 1000);
  expect_parked_threads_dumped(d, 2);
}

TEST(CaptureProc, ProcCoveredAfterInstallIsStillRead) {
  testing::TempDir dir;
  testing::CrashDumps d = testing::crash_with_dumps(dir.path(), [] {
    if (!testing::enter_private_mount_namespace()) _exit(77);
    install();
    start_parked(3, false);
    if (!testing::cover_proc()) _exit(78);
    crash_here();
  });
  if (d.child.exited && d.child.exit_code == 77) GTEST_SKIP() << "no mount namespace here";
  ASSERT_FALSE(d.child.hung) << d.child.output;
  ASSERT_FALSE(d.report.empty()) << d.child.describe() << "\n" << d.child.output;
  EXPECT_EQ(d.report.find("incomplete:"), std::string::npos) << d.report.substr(0, 1000);
  EXPECT_TRUE(testing::lists_module(d.report, "libc.so")) << d.report.substr(0, 2000);
  EXPECT_NE(lead_block(d.report).find("crash_here"), std::string::npos) << d.report.substr(0, 2000);
  expect_parked_threads_dumped(d, 3);
}

TEST(CaptureProc, NoProcAtAllStopsRegisteredThreadsAndSaysSo) {
  testing::TempDir dir;
  testing::CrashDumps d = testing::crash_with_dumps(dir.path(), [] {
    if (!testing::enter_private_mount_namespace() || !testing::cover_proc()) _exit(77);
    install();
    start_parked(3, true);
    crash_here();
  });
  if (d.child.exited && d.child.exit_code == 77) GTEST_SKIP() << "no mount namespace here";
  ASSERT_FALSE(d.child.hung) << d.child.output;
  ASSERT_FALSE(d.report.empty()) << d.child.describe() << "\n" << d.child.output;
  EXPECT_NE(d.report.find("\nincomplete: /proc/self/task could not be read"), std::string::npos)
      << d.report.substr(0, 1000);
  EXPECT_NE(d.report.find("\nincomplete: /proc/self/maps could not be read"), std::string::npos)
      << d.report.substr(0, 1000);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(d.report, m, std::regex(R"(\n(\d+) threads: (\d+) stopped)")));
  EXPECT_GE(std::stoi(m[1]), 4) << d.report.substr(0, 1000);  // the crashing thread and the three
  EXPECT_EQ(std::stoi(m[2]), 3) << d.report.substr(0, 1000);
  std::regex parked(R"(parked=(\d+) )");
  int seen = 0;
  for (std::sregex_iterator it(d.child.output.begin(), d.child.output.end(), parked), end; it != end; ++it, ++seen)
    EXPECT_NE(testing::thread_block(d.report, std::stoi((*it)[1])).find("[stopped]"), std::string::npos)
        << d.report.substr(0, 2000);
  EXPECT_EQ(seen, 3);
}

}  // namespace
}  // namespace panicstop
