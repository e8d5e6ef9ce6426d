// The stop when /proc does not tell the whole truth: a thread group leader
// that returned through pthread_exit() (a zombie that never answers), and a
// process that has no /proc at all. Each case runs in a child.
#include "stop/stop.hpp"

#include <gtest/gtest.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "panicstop/panic.hpp"
#include "panicstop/thread.hpp"
#include "stop/proc_dir.hpp"
#include "support/child_process.hpp"
#include "support/hide_proc.hpp"
#include "sys/syscall.hpp"
#include "thread/slot.hpp"

namespace panicstop::detail {
namespace {

using testing::run_in_child;

std::atomic<uint32_t> g_release{0};

void wait_forever() {
  while (true) sys::futex_wait(&g_release, 0);
}

// The leader's state letter in /proc/self/task/PID/stat.
char leader_state() {
  std::string stat = testing::read_file("/proc/self/task/" + std::to_string(getpid()) + "/stat");
  size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() ? stat[close + 2] : '?';
}

// What main() returning through pthread_exit() leaves: the leader exits, the
// process goes on. The exit system call itself, since pthread_exit() would
// unwind through the test runner's catch(...) and abort.
[[noreturn]] void leader_exits() {
  for (;;) sys::raw_syscall(SYS_exit, 0);
}

TEST(StopProcLoss, AnExitedLeaderIsNotWaitedFor) {
  testing::ChildResult r = run_in_child([] {
    install();
    for (int i = 0; i < 3; ++i) std::thread(wait_forever).detach();
    std::thread([] {
      while (leader_state() != 'Z') sched_yield();
      int64_t timeout = 5'000'000'000;
      StopResult s = stop_other_threads(StopKind::kHard, timeout);
      int64_t took_ms = (s.end_ns - s.start_ns) / 1000000;
      // Well under the timeout: a zombie leader counts as exited at once.
      bool ok = s.ok && s.stopped == 3 && s.exited == 1 && s.not_stopped == 0 && took_ms < 1000;
      char line[160];
      int n = snprintf(line, sizeof line, "ok=%d stopped=%u exited=%u not_stopped=%u took_ms=%lld\n", s.ok,
                       s.stopped, s.exited, s.not_stopped, static_cast<long long>(took_ms));
      sys::write_all(2, line, size_t(n));
      _exit(ok ? 0 : 1);
    }).detach();
    leader_exits();
  });
  ASSERT_TRUE(r.exited) << r.describe() << "\n" << r.output;
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(StopProcLoss, WithoutProcTheRegistryThreadsAreStopped) {
  testing::ChildResult r = run_in_child([] {
    if (!testing::enter_private_mount_namespace() || !testing::cover_proc()) _exit(77);
    install();
    std::atomic<int> named{0};
    for (int i = 0; i < 4; ++i)
      std::thread([&named] {
        set_thread_name("registered");  // claims a slot: the registry knows it
        named.fetch_add(1);
        wait_forever();
      }).detach();
    while (named.load() < 4) sched_yield();
    ThreadSource source = ThreadSource::kProc;
    int listed = for_each_thread([](int, void*) noexcept {}, nullptr, &source);
    StopResult s = stop_other_threads(StopKind::kHard, 2'000'000'000);
    char line[160];
    int n = snprintf(line, sizeof line, "listed=%d source=%d ok=%d stopped=%u from_registry=%d proc=%d\n", listed,
                     int(source), s.ok, s.stopped, s.from_registry, proc_dir_available());
    sys::write_all(2, line, size_t(n));
    _exit(source == ThreadSource::kRegistry && s.ok && s.stopped == 4 && s.from_registry ? 0 : 1);
  });
  ASSERT_TRUE(r.exited) << r.describe() << "\n" << r.output;
  if (r.exit_code == 77) GTEST_SKIP() << "no mount namespace here (neither root nor user namespaces)";
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
}  // namespace panicstop::detail
