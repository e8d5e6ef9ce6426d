// Soft stop and restart, the machinery the panic path's hard stop shares. The
// stopping runs in a child so a stop that goes wrong cannot freeze the runner.
#include "stop/stop.hpp"

#include <gtest/gtest.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <thread>
#include <vector>

#include "panicstop/panic.hpp"
#include "support/child_process.hpp"
#include "support/io_uring_worker.hpp"
#include "sys/format.hpp"
#include "sys/syscall.hpp"
#include "thread/signal_sections.hpp"
#include "thread/slot.hpp"

namespace panicstop::detail {
namespace {

using testing::ChildOptions;
using testing::run_in_child;

// Not testing::say (it builds a std::string): these children speak while
// their other threads are stopped, and one of those may hold malloc's lock.
void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void say(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  size_t n = sys::vformat(buf, sizeof buf, fmt, ap);
  va_end(ap);
  sys::write_all(2, buf, n);
}

void count_tid(int, void* n) noexcept { ++*static_cast<int*>(n); }
int thread_count() {
  int n = 0;
  for_each_thread(count_tid, &n);
  return n;
}

struct Idle {
  std::atomic<uint32_t> release{0};
  std::vector<std::thread> threads;
  void start(int n) {
    for (int i = 0; i < n; ++i)
      threads.emplace_back([this] {
        while (release.load() == 0) sys::futex_wait(&release, 0);
      });
  }
  void join() {
    release.store(1);
    sys::futex_wake(&release, INT32_MAX);
    for (auto& t : threads) t.join();
  }
};

TEST(Stop, SoftStopSavesEveryContextAndRestarts) {
  auto r = run_in_child([] {
    install();
    Idle idle;
    idle.start(8);
    std::atomic<bool> spin_go{true};
    std::thread spinner([&] {
      while (spin_go.load(std::memory_order_relaxed)) {
      }
    });
    while (thread_count() < 10) sched_yield();
    StopResult s = stop_other_threads(StopKind::kSoft, 2'000'000'000);
    int valid = 0;
    ThreadSlot* slots = slot_array();
    for (size_t i = 0; i < slot_count(); ++i)
      if (slots[i].in_use.load() && slots[i].stop_state.load() == StopState::kStopped && slots[i].context.valid &&
          slots[i].context.stack_pointer != 0)
        ++valid;
    say("ok=%d stopped=%u not_stopped=%u valid=%d threads=%d\n", s.ok, s.stopped, s.not_stopped, valid,
        thread_count());
    restart_stopped_threads();
    spin_go.store(false);  // only works if the spinner runs again
    spinner.join();
    idle.join();
    say("resumed\n");
  });
  EXPECT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_NE(r.output.find("ok=1 stopped=9 not_stopped=0 valid=9 threads=10"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resumed"), std::string::npos) << r.output;
}

TEST(Stop, RepeatedStopsAndRestarts) {
  auto r = run_in_child([] {
    install();
    Idle idle;
    idle.start(16);
    while (thread_count() < 17) sched_yield();
    int good = 0;
    for (int i = 0; i < 200; ++i) {
      StopResult s = stop_other_threads(StopKind::kSoft, 2'000'000'000);
      if (s.ok && s.stopped == 16) ++good;
      restart_stopped_threads();
    }
    idle.join();
    say("good=%d\n", good);
  });
  EXPECT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_NE(r.output.find("good=200"), std::string::npos) << r.output;
}

TEST(Stop, ThreadBlockedInReadIsStopped) {
  auto r = run_in_child([] {
    install();
    int fds[2];
    if (pipe(fds) != 0) return;
    std::thread reader([&] {
      char c;
      ssize_t n = read(fds[0], &c, 1);  // interrupted by the stop, restarted after
      say("read=%zd\n", n);
    });
    while (thread_count() < 2) sched_yield();
    StopResult s = stop_other_threads(StopKind::kSoft, 2'000'000'000);
    say("ok=%d stopped=%u\n", s.ok, s.stopped);
    restart_stopped_threads();
    if (write(fds[1], "x", 1) != 1) return;
    reader.join();
  });
  EXPECT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_NE(r.output.find("ok=1 stopped=1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("read=1"), std::string::npos) << r.output;  // SA_RESTART: read went on
}

TEST(Stop, ThreadBlockingEverySignalIsReportedNotStopped) {
  auto r = run_in_child([] {
    install();
    std::atomic<uint32_t> release{0};
    std::atomic<int> blocker_tid{0};
    std::thread blocker([&] {
      sigset_t all;
      sigfillset(&all);
      testing::raw_sigmask(SIG_BLOCK, &all);  // past the interposer, as a raw system call would
      blocker_tid.store(sys::gettid());
      while (release.load() == 0) sys::futex_wait(&release, 0);
    });
    while (blocker_tid.load() == 0) sched_yield();
    StopResult s = stop_other_threads(StopKind::kHard, 200'000'000);
    say("ok=%d stopped=%u not_stopped=%u first=%d expected=%d\n", s.ok, s.stopped, s.not_stopped,
        s.not_stopped > 0 ? s.not_stopped_tids[0] : 0, blocker_tid.load());
    _exit(0);  // the hard stop is for good: the blocker keeps its pending signal
  });
  EXPECT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_NE(r.output.find("ok=0 stopped=0 not_stopped=1"), std::string::npos) << r.output;
  auto pos = r.output.find("first=");
  ASSERT_NE(pos, std::string::npos);
  auto first = r.output.substr(pos + 6, r.output.find(' ', pos) - pos - 6);
  EXPECT_NE(r.output.find("expected=" + first), std::string::npos) << r.output;
}

// A kernel worker in the thread group (io_uring's iou-wrk-PID) never takes
// the stop signal. The stop neither waits for it (it waited its whole timeout)
// nor counts it as a thread that did not stop.
TEST(Stop, AKernelWorkerIsNotWaitedForNorCountedAsNotStopped) {
  auto r = run_in_child([] {
    install();
    Idle idle;
    idle.start(1);
    if (int err = testing::start_io_uring_read(); err != 0) {
      say("no io_uring: %s\n", strerror(-err));
      _exit(77);
    }
    int worker = testing::io_uring_worker_tid(std::chrono::seconds(5));
    if (worker == 0) _exit(78);
    StopResult s = stop_other_threads(StopKind::kHard, 10'000'000'000);  // 10 s: waiting would show
    say("ok=%d stopped=%u not_stopped=%u kernel_workers=%u\n", s.ok, s.stopped, s.not_stopped, s.kernel_workers);
    _exit(0);
  }, ChildOptions{std::chrono::milliseconds(30000), {}, {}, ""});
  if (r.exited && r.exit_code == 77) GTEST_SKIP() << r.output;
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  EXPECT_NE(r.output.find("ok=1 stopped=1 not_stopped=0 kernel_workers=1\n"), std::string::npos) << r.output;
}

TEST(Stop, ThreadsCreatedAndExitingDuringTheStop) {
  auto r = run_in_child([] {
    install();
    std::atomic<bool> go{true};
    std::vector<std::thread> spawners;
    for (int i = 0; i < 4; ++i)
      spawners.emplace_back([&] {
        while (go.load()) std::thread([] {}).join();
      });
    int good = 0;
    for (int i = 0; i < 50; ++i) {
      StopResult s = stop_other_threads(StopKind::kSoft, 2'000'000'000);
      // Every spawner is parked; the count of parked threads is what /proc shows minus us.
      int now = thread_count();
      if (s.ok && int(s.stopped) + 1 == now) ++good;
      restart_stopped_threads();
    }
    go.store(false);
    for (auto& t : spawners) t.join();
    say("good=%d\n", good);
  });
  EXPECT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_NE(r.output.find("good=50"), std::string::npos) << r.output;
}

TEST(Stop, CriticalSectionHoldsOffOnlyTheSoftStop) {
  auto r = run_in_child([] {
    install();
    std::atomic<uint32_t> phase{0};
    std::thread t([&] {
      critical_enter();
      phase.store(1);
      while (phase.load() != 2) sys::futex_wait(&phase, 1);
    });
    while (phase.load() != 1) sched_yield();
    StopResult soft = stop_other_threads(StopKind::kSoft, 100'000'000);
    restart_stopped_threads();
    StopResult hard = stop_other_threads(StopKind::kHard, 2'000'000'000);
    say("soft ok=%d not_stopped=%u; hard ok=%d stopped=%u\n", soft.ok, soft.not_stopped, hard.ok, hard.stopped);
    _exit(0);
  });
  EXPECT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_NE(r.output.find("soft ok=0 not_stopped=1; hard ok=1 stopped=1"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace panicstop::detail

namespace panicstop::detail {
namespace {

// FreeBSD's `if (!kdb_active) stop_cpus_hard()`: a hard stop by the thread
// whose soft stop holds everyone signals nobody again, and nothing it stopped
// is ever restarted.
TEST(Stop, HardStopInsideOwnSoftStopKeepsTheThreadsParked) {
  auto r = run_in_child([] {
    install();
    std::atomic<uint64_t> rounds{0};
    std::vector<std::thread> workers;
    for (int i = 0; i < 4; ++i)
      workers.emplace_back([&] {
        for (;;) rounds.fetch_add(1, std::memory_order_relaxed);
      });
    while (thread_count() < 5) sched_yield();
    StopResult soft = stop_other_threads(StopKind::kSoft, 2'000'000'000);
    StopResult hard = stop_other_threads(StopKind::kHard, 2'000'000'000);
    say("soft ok=%d stopped=%u; hard ok=%d stopped=%u scans=%u\n", soft.ok, soft.stopped, hard.ok, hard.stopped,
        hard.scans);
    restart_stopped_threads();  // must do nothing now
    uint64_t before = rounds.load();
    // A restarted worker would add millions within this window; parked ones add nothing.
    int64_t until = sys::monotonic_ns() + 100'000'000;
    while (sys::monotonic_ns() < until) sched_yield();
    say("advanced=%d\n", rounds.load() != before);
    sys::exit_group(0);  // the workers never run again: do not join them
  });
  EXPECT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_NE(r.output.find("soft ok=1 stopped=4; hard ok=1 stopped=4 scans=0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("advanced=0"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace panicstop::detail
