// The stop's deadline: its timeout counts from the last thread that answered,
// up to kMaxStopTimeouts timeouts in all. Threads here answer late on
// purpose: each blocks the hard-stop signal with the raw system call (past
// the interposer) and unblocks it at a set time after the stop began, so the
// pending signal then stops it. Each stop runs in a child with a deadline.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <csignal>
#include <thread>
#include <vector>

#include "panicstop/panic.hpp"
#include "stop/stop.hpp"
#include "support/child_process.hpp"
#include "sys/syscall.hpp"
#include "thread/signal_sections.hpp"

namespace panicstop::detail {
namespace {

using testing::ChildOptions;
using testing::run_in_child;
using testing::say;

constexpr int64_t kMs = 1'000'000;

// Starts `count` threads; thread k (from 1) answers the stop first_ns + (k - 1) * step_ns after
// it began. Then hard-stops them with `timeout_ns` and prints the result.
[[noreturn]] void stop_late_answerers(int count, int64_t first_ns, int64_t step_ns, int64_t timeout_ns) {
  install();
  static std::atomic<int64_t> began{0};
  static std::atomic<int> ready{0};
  for (int k = 1; k <= count; ++k)
    std::thread([k, first_ns, step_ns] {
      sigset_t stop_signal;
      sigemptyset(&stop_signal);
      sigaddset(&stop_signal, hard_stop_signal());
      testing::raw_sigmask(SIG_BLOCK, &stop_signal);
      ready.fetch_add(1);
      while (began.load() == 0) sched_yield();
      // A slow thread: the wait is what is being modelled, not synchronization.
      const int64_t at = began.load() + first_ns + (k - 1) * step_ns;
      for (int64_t now = sys::monotonic_ns(); now < at; now = sys::monotonic_ns()) {
        const int64_t left = at - now;
        timespec ts{time_t(left / 1'000'000'000), long(left % 1'000'000'000)};
        nanosleep(&ts, nullptr);
      }
      testing::raw_sigmask(SIG_UNBLOCK, &stop_signal);  // the pending stop signal arrives here
      for (;;) pause();
    }).detach();
  while (ready.load() != count) sched_yield();
  began.store(sys::monotonic_ns());
  StopResult s = stop_other_threads(StopKind::kHard, timeout_ns);
  say("ok=" + std::to_string(s.ok) + " stopped=" + std::to_string(s.stopped) +
      " not_stopped=" + std::to_string(s.not_stopped) +
      " elapsed_ms=" + std::to_string((s.end_ns - began.load()) / kMs));
  _exit(0);  // the hard stop is for good
}

// stop_late_answerers in a child with a deadline: a stop that hangs fails.
testing::ChildResult stop_with_late_answerers_in_child(int count, int64_t first_ns, int64_t step_ns,
                                                        int64_t timeout_ns) {
  ChildOptions o;
  o.deadline = std::chrono::seconds(30);
  return run_in_child([=] { stop_late_answerers(count, first_ns, step_ns, timeout_ns); }, o);
}

// Three threads answer 0.5 s apart with a 1 s timeout: the last answers 1.5 s
// after the stop began, past a deadline counted from the start, and each
// answer came within a timeout of the one before.
TEST(StopDeadline, ThreadsThatKeepAnsweringAreWaitedFor) {
  auto r = stop_with_late_answerers_in_child(3, 500 * kMs, 500 * kMs, 1000 * kMs);
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_NE(r.output.find("ok=1 stopped=3 not_stopped=0"), std::string::npos) << r.output;
  EXPECT_GE(testing::value_of(r.output, "elapsed_ms"), 1500) << r.output;
}

// Forty threads answer 50 ms apart with a 100 ms timeout: answers keep
// coming for 2 s, but the stop gives up after kMaxStopTimeouts timeouts
// (1 s; sooner if the machine's load stretches a gap past 100 ms) and lists
// the rest as not stopped.
TEST(StopDeadline, AnswersNeverExtendTheStopPastItsBound) {
  static_assert(kMaxStopTimeouts * 100 < 1500, "the bound must fall inside the answers' 2 s");
  auto r = stop_with_late_answerers_in_child(40, 50 * kMs, 50 * kMs, 100 * kMs);
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_NE(r.output.find("ok=0"), std::string::npos) << r.output;
  EXPECT_GE(testing::value_of(r.output, "not_stopped"), 1) << r.output;
  EXPECT_LT(testing::value_of(r.output, "elapsed_ms"), 1500) << r.output;
}

}  // namespace
}  // namespace panicstop::detail
