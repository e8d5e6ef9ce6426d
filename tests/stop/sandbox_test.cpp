// The stop in a sandbox: a seccomp filter (a container's, systemd's
// SystemCallFilter=, a browser's) refuses the system calls that send a
// signal to a thread. Nothing can stop the other threads then; the stop must
// not wait for answers that cannot come, the report must say why they ran
// on, and the panicking thread's own stack, which panicstop reads by sending
// itself a signal, must still be there. Each case runs in a child.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <string>
#include <thread>

#include "panicstop/panic.hpp"
#include "stop/stop.hpp"
#include "support/child_process.hpp"
#include "support/seccomp.hpp"
#include "sys/syscall.hpp"

namespace panicstop::detail {
namespace {

using testing::refuse_thread_signals;
using testing::run_in_child;
using testing::sandbox_available;
using testing::TempDir;

std::atomic<uint32_t> g_never{0};

int thread_count() {
  int n = 0;
  for_each_thread([](int, void* c) noexcept { ++*static_cast<int*>(c); }, &n);
  return n;
}

void start_sleepers(int n) {
  for (int i = 0; i < n; ++i)
    std::thread([] {
      for (;;) sys::futex_wait(&g_never, 0);
    }).detach();
}

TEST(StopSandbox, ThreadsTheSignalCannotReachAreNotWaitedFor) {
  if (!sandbox_available()) GTEST_SKIP() << "no seccomp filter can be set here";
  testing::ChildResult r = run_in_child([] {
    install();
    start_sleepers(3);
    if (!refuse_thread_signals()) _exit(2);
    StopResult s = stop_other_threads(StopKind::kHard, 5'000'000'000);
    long long took_ms = (s.end_ns - s.start_ns) / 1000000;
    // Well under the timeout: no answer was awaited from them.
    bool ok = !s.ok && s.not_stopped == 3 && s.refused == 3 && s.refused_errno == EPERM && took_ms < 1000;
    fprintf(stderr, "not_stopped=%u refused=%u errno=%d took_ms=%lld\n", s.not_stopped, s.refused,
            s.refused_errno, took_ms);
    _exit(ok ? 0 : 1);
  });
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
}

// In a child: 16 sleeping threads, room for `room` queued signals
// (RLIMIT_SIGPENDING bounds the real-time signals queued for all of the
// user's processes), and a hard stop. Exits 0 if every thread stopped, none
// counted as refused, within 2 s.
void stop_sixteen_with_room_for(rlim_t room) {
  install();
  start_sleepers(16);
  while (thread_count() < 17) sys::sched_yield();
  rlimit limit{room, room};
  if (setrlimit(RLIMIT_SIGPENDING, &limit) != 0) _exit(2);
  StopResult s = stop_other_threads(StopKind::kHard, 5'000'000'000);
  long long took_ms = (s.end_ns - s.start_ns) / 1000000;
  fprintf(stderr, "ok=%d stopped=%u not_stopped=%u refused=%u errno=%d took_ms=%lld\n", s.ok, s.stopped,
          s.not_stopped, s.refused, s.refused_errno, took_ms);
  _exit(s.ok && s.stopped == 16 && s.refused == 0 && took_ms < 2000 ? 0 : 1);
}

// With room for 4, the stop signal to 16 threads first finds the queue full
// for most of them. Each thread that takes its signal frees an entry, so
// sending again stops them all; counted as refused for good, 12 of them ran
// on.
TEST(StopSandbox, AFullSignalQueueIsSentAgainUntilEveryThreadStops) {
  testing::ChildResult r = run_in_child([] { stop_sixteen_with_room_for(4); });
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
}

// With no room at all (the queue full for good, as another process of the
// user can keep it), no thread-directed send ever succeeds; kill() of the
// process still reaches one unstopped thread each time. Before, all 16 ran
// on (or, with retries alone, the stop waited its whole timeout for them).
TEST(StopSandbox, AQueueFullForGoodStillStopsEveryThread) {
  testing::ChildResult r = run_in_child([] { stop_sixteen_with_room_for(0); });
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
}

__attribute__((noinline)) void panic_in_the_sandbox() {
  panic("in a sandbox");
  __asm__ volatile("" ::: "memory");
}

TEST(StopSandbox, APanicSaysWhyTheThreadsRanOnAndShowsItsOwnStack) {
  if (!sandbox_available()) GTEST_SKIP() << "no seccomp filter can be set here";
  TempDir dir;
  testing::ChildResult r = run_in_child(
      [] {
        install();
        start_sleepers(3);
        if (!refuse_thread_signals()) _exit(2);
        panic_in_the_sandbox();
      },
      testing::with_env({{"PANICSTOP_DUMP_DIR", dir.path()}, {"PANICSTOP_DUMP", "text"}}));
  ASSERT_FALSE(r.hung) << r.describe() << "\n" << r.output;
  std::string report;
  for (const auto& name : dir.list()) report = testing::read_file(dir.path() + "/" + name);
  ASSERT_FALSE(report.empty()) << r.output;
  EXPECT_NE(report.find("\nnote: the stop signal could not be sent to 3 threads (not permitted (EPERM)"),
            std::string::npos)
      << report;
  EXPECT_NE(report.find("4 threads: 0 stopped, 3 not stopped"), std::string::npos) << report;
  size_t own = report.find("[panicking]");
  ASSERT_NE(own, std::string::npos) << report;
  EXPECT_NE(report.find("panic_in_the_sandbox", own), std::string::npos) << report;
}

}  // namespace
}  // namespace panicstop::detail
