// A SpinMutex's spinlock section against the stops: the soft stop (kdb, live
// dumps) that reaches a thread inside one is deferred by its handler and acts
// right after the outermost unlock; the hard stop (a panic) gets through at
// once. Every case runs in a child with a deadline.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "panic/panic_state.hpp"
#include "panic/panic_test_util.hpp"
#include "panicstop/panic.hpp"
#include "panicstop/spin_mutex.hpp"
#include "stop/stop.hpp"
#include "support/child_process.hpp"
#include "sys/syscall.hpp"
#include "thread/signal_sections.hpp"

namespace panicstop::detail {
namespace {

using testing::run_in_child;
using testing::say;
using testing::with_env;

uintptr_t word_of(const SpinMutex& m) { return m.lock_object().word.load(); }

// Has a handler on this thread deferred one of panicstop's signals?
bool deferred_here() { return __atomic_load_n(&tls_spin_deferred, __ATOMIC_RELAXED) != 0; }

// Starts a thread that takes m and spins inside its section for good;
// returns once it is inside.
void start_holder_spinning_forever(SpinMutex& m) {
  static std::atomic<bool> ready{false};
  ready.store(false);
  std::thread([&m] {
    m.lock();
    ready.store(true);
    for (;;) cpu_relax();
  }).detach();
  while (!ready.load()) sched_yield();
}

constexpr int64_t kLongDeadlineNs = 5'000'000'000;

// The worker holds the section until the stop's signal has reached it (its
// handler noted it) or the stopper gave up, then leaves: it must stop there,
// after the unlock, never while the flag set inside is up.
TEST(SpinSection, SoftStopArrivingInsideStopsTheThreadRightAfterTheUnlock) {
  auto r = run_in_child([] {
    install();
    static SpinMutex m{"section"};
    std::atomic<int> inside{0}, seen{0};
    std::atomic<bool> ready{false}, stop_returned{false}, quit{false};
    std::thread t([&] {
      m.lock();
      inside.store(1);
      ready.store(true);
      while (!deferred_here() && !stop_returned.load()) cpu_relax();
      seen.store(deferred_here() ? 1 : 0);
      inside.store(0);
      m.unlock();
      while (!quit.load()) cpu_relax();
    });
    while (!ready.load()) sched_yield();
    StopResult s = stop_other_threads(StopKind::kSoft, kLongDeadlineNs);
    stop_returned.store(true);
    say("ok=%d stopped=%u inside=%d held=%d deferred=%d depth-after=%u\n", s.ok, s.stopped, inside.load(),
        word_of(m) != 0, seen.load(), spinlock_depth());
    restart_stopped_threads();
    quit.store(true);
    t.join();
    say("resumed\n");
  });
  EXPECT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_NE(r.output.find("ok=1 stopped=1 inside=0 held=0 deferred=1 depth-after=0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resumed"), std::string::npos) << r.output;
}

// Leaving the inner of two nested sections is not leaving: the thread stops
// after the outer unlock only.
TEST(SpinSection, NestedSectionsStopOnlyAfterTheOutermostUnlock) {
  auto r = run_in_child([] {
    install();
    static SpinMutex outer{"outer"}, inner{"inner"};
    std::atomic<int> stage{0};
    std::atomic<bool> stop_returned{false}, quit{false};
    std::thread t([&] {
      outer.lock();
      inner.lock();
      stage.store(1);
      while (!deferred_here() && !stop_returned.load()) cpu_relax();
      inner.unlock();
      stage.store(2);  // still inside outer's section
      outer.unlock();
      while (!quit.load()) cpu_relax();
    });
    while (stage.load() == 0) sched_yield();
    StopResult s = stop_other_threads(StopKind::kSoft, kLongDeadlineNs);
    stop_returned.store(true);
    say("ok=%d stage=%d outer-held=%d inner-held=%d\n", s.ok, stage.load(), word_of(outer) != 0,
        word_of(inner) != 0);
    restart_stopped_threads();
    quit.store(true);
    t.join();
  });
  EXPECT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_NE(r.output.find("ok=1 stage=2 outer-held=0 inner-held=0"), std::string::npos) << r.output;
}

// Stops land at random points of a lock/unlock loop, many of them in the few
// instructions between the release and the deferred check: none may find the
// thread inside, none may be lost.
TEST(SpinSection, StopsRacingTheUnlockNeverCatchTheThreadInside) {
  auto r = run_in_child([] {
    install();
    static SpinMutex m{"racing"};
    std::atomic<int> inside{0};
    std::atomic<bool> quit{false};
    std::atomic<uint64_t> rounds{0};
    std::thread t([&] {
      while (!quit.load(std::memory_order_relaxed)) {
        m.lock();
        inside.store(1, std::memory_order_relaxed);
        for (int i = 0; i < 20; ++i) cpu_relax();
        inside.store(0, std::memory_order_relaxed);
        m.unlock();
        rounds.fetch_add(1, std::memory_order_relaxed);
      }
    });
    while (rounds.load() == 0) sched_yield();
    int good = 0, caught_inside = 0, failed = 0;
    constexpr int kStops = 300;
    for (int i = 0; i < kStops; ++i) {
      StopResult s = stop_other_threads(StopKind::kSoft, kLongDeadlineNs);
      if (!s.ok || s.stopped != 1) ++failed;
      else if (inside.load() != 0 || word_of(m) != 0) ++caught_inside;
      else ++good;
      restart_stopped_threads();
      // Let the worker run a little between stops, so the next one lands elsewhere.
      uint64_t seen = rounds.load();
      while (rounds.load() - seen < uint64_t(1 + i % 7)) sched_yield();
    }
    quit.store(true);
    t.join();
    say("good=%d inside=%d failed=%d\n", good, caught_inside, failed);
  });
  EXPECT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_NE(r.output.find("good=300 inside=0 failed=0"), std::string::npos) << r.output;
}

// A thread that never leaves its section is not waited for past the stop's
// deadline: the soft stop reports it as not stopped. The hard stop, the
// panic's NMI, still stops it inside.
TEST(SpinSection, AThreadSpinningForeverInsideIsReportedNotStoppedAndHardStopped) {
  auto r = run_in_child([] {
    install();
    static SpinMutex m{"forever"};
    start_holder_spinning_forever(m);
    int64_t start = sys::monotonic_ns();
    StopResult soft = stop_other_threads(StopKind::kSoft, 100'000'000);
    int64_t took_ms = (sys::monotonic_ns() - start) / 1'000'000;
    restart_stopped_threads();
    StopResult hard = stop_other_threads(StopKind::kHard, kLongDeadlineNs);
    say("soft ok=%d not_stopped=%u listed=%d bounded=%d; hard ok=%d stopped=%u\n", soft.ok, soft.not_stopped,
        soft.not_stopped > 0 && soft.not_stopped_tids[0] > 0, took_ms < 4000, hard.ok, hard.stopped);
    sys::exit_group(0);  // the holder is parked for good
  });
  EXPECT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_NE(r.output.find("soft ok=0 not_stopped=1 listed=1 bounded=1; hard ok=1 stopped=1"), std::string::npos)
      << r.output;
}

void print_stop_counts(void*) {
  say("hook: stopped=%u not_stopped=%u depth=%u\n", panic_state().stop.stopped, panic_state().stop.not_stopped,
      spinlock_depth());
}
void hanging_hook(void*) {
  for (;;) pause();
}
void final_hook(void*) { say("final-ran nested=%u\n", panic_state().nested_count.load()); }

// The panicking thread is itself inside a spinlock section, and another one
// spins inside its own: the panic hard-stops the other, and its step
// watchdog (never deferred) still cuts a hook that hangs.
TEST(SpinSection, APanicInsideASpinSectionStopsOthersAndKeepsItsWatchdog) {
  auto r = run_in_child(
      [] {
        install();
        on_panic(Stage::PreDump, print_stop_counts, nullptr);
        on_panic(Stage::PreDump, hanging_hook, nullptr);
        on_panic(Stage::Final, final_hook, nullptr);
        static SpinMutex theirs{"theirs"}, mine{"mine"};
        start_holder_spinning_forever(theirs);
        mine.lock();
        panic("inside a spin section");
      },
      with_env({{"PANICSTOP_STEP_TIMEOUT_MS", "300"}}));
  EXPECT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << r.output;
  EXPECT_NE(r.output.find("panic: inside a spin section"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("hook: stopped=1 not_stopped=0 depth=1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("final-ran nested=1"), std::string::npos) << r.output;
}

volatile uintptr_t g_bad_address = 16;  // volatile: the compiler cannot see the fault coming

// A fault inside a section panics at once: synchronous signals are never
// deferred.
TEST(SpinSection, AFaultInsideASpinSectionPanicsAtOnce) {
  auto r = run_in_child([] {
    install();
    static SpinMutex m{"faulting"};
    m.lock();
    *reinterpret_cast<volatile int*>(g_bad_address) = 1;
    say("survived the fault\n");
  });
  EXPECT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_NE(r.output.find("fatal signal SIGSEGV"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("survived"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace panicstop::detail
