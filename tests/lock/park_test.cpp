// The parking layer (src/lock/park.hpp): where lock waiters sleep, and the
// designated-waker marks. Each case runs in a child with a deadline: a lost
// wake-up is a hang, and a hang is a failure.
#include "lock/park.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "panicstop/mutex.hpp"
#include "support/child_process.hpp"
#include "support/sanitizer.hpp"
#include "sys/syscall.hpp"

namespace panicstop::detail {
namespace {

using testing::run_in_child;

void expect_clean_exit_in_child(const std::function<void()>& body) {
  testing::ChildOptions opts;
  opts.deadline = std::chrono::seconds(10);
  auto r = run_in_child(body, opts);
  EXPECT_FALSE(r.hung) << r.describe();
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
}

// A thread that parks under `key` with `tag` (validate always true) and
// records what park() returned.
struct Parker {
  std::atomic<int> result{-1};
  std::thread thread;
  Parker(const void* key, uint32_t tag, int64_t deadline_ns = -1)
      : thread([this, key, tag, deadline_ns] {
          WaitRecord wait(nullptr, WaitMode::kExclusive);
          auto yes = [] { return true; };
          result = int(park(key, tag, deadline_ns, wait, yes));
        }) {}
};

void await_parked(const void* key, int n) {
  while (parked_count(key) != n) std::this_thread::yield();
}

TEST(Park, ValidateFalseQueuesNothing) {
  int key = 0;
  WaitRecord wait(nullptr, WaitMode::kExclusive);
  bool asked = false;
  auto no = [&] {
    asked = true;
    return false;
  };
  EXPECT_EQ(park(&key, kWakeAny, -1, wait, no), ParkResult::kInvalid);
  EXPECT_TRUE(asked);
  EXPECT_EQ(parked_count(&key), 0);
  EXPECT_EQ(unpark(&key, 1), 0);
}

TEST(Park, UnparkWakesInParkingOrderAndOnlyMatchingTags) {
  expect_clean_exit_in_child([] {
    static int key = 0;
    static int other = 0;
    Parker a(&key, 1u);
    await_parked(&key, 1);
    Parker b(&key, 2u);
    await_parked(&key, 2);
    Parker c(&key, 1u);
    await_parked(&key, 3);
    Parker d(&other, 1u);
    await_parked(&other, 1);
    if (unpark(&key, 1, 2u) != 1) _exit(2);  // b only: a and c do not match
    b.thread.join();
    if (b.result != int(ParkResult::kWoken) || a.result != -1 || c.result != -1) _exit(3);
    if (unpark(&key, 1, 1u) != 1) _exit(4);  // a, the older of a and c
    a.thread.join();
    if (c.result != -1 || parked_count(&key) != 1) _exit(5);
    if (unpark(&key, 5) != 1) _exit(6);  // c; the other key's thread stays
    c.thread.join();
    if (parked_count(&other) != 1) _exit(7);
    unpark(&other, 1);
    d.thread.join();
  });
}

TEST(Park, ADeadlineDequeuesTheThread) {
  expect_clean_exit_in_child([] {
    static int key = 0;
    const int64_t deadline = sys::monotonic_ns() + 20'000'000;
    Parker p(&key, kWakeAny, deadline);
    p.thread.join();
    if (p.result != int(ParkResult::kTimedOut)) _exit(2);
    if (sys::monotonic_ns() < deadline) _exit(3);
    if (parked_count(&key) != 0 || unpark(&key, 1) != 0) _exit(4);
  });
}

// Many threads park and wake under one bucket's keys at once, some with
// deadlines: every park ends exactly once, by a wake or by its deadline.
TEST(Park, ChurnLosesNoThread) {
  expect_clean_exit_in_child([] {
    static int keys[4] = {};
    constexpr int kThreads = 8;
    constexpr int kRounds = 2000;
    std::atomic<int> woken{0}, timed_out{0};
    std::atomic<bool> done{false};
    std::vector<std::thread> parkers;
    for (int t = 0; t < kThreads; ++t)
      parkers.emplace_back([&, t] {
        WaitRecord wait(nullptr, WaitMode::kExclusive);
        auto yes = [] { return true; };
        for (int i = 0; i < kRounds; ++i) {
          const int64_t deadline = (i + t) % 3 == 0 ? sys::monotonic_ns() + 50'000 : -1;
          ParkResult r = park(&keys[(i + t) % 4], kWakeAny, deadline, wait, yes);
          (r == ParkResult::kWoken ? woken : timed_out).fetch_add(1);
        }
      });
    std::thread waker([&] {
      while (!done.load())
        for (int& k : keys) unpark(&k, 1);
    });
    for (auto& t : parkers) t.join();
    done = true;
    waker.join();
    if (woken + timed_out != kThreads * kRounds) _exit(2);
    for (int& k : keys)
      if (parked_count(&k) != 0) _exit(3);
  });
}

// After a panic or in kdb, the thread whose scheduler is stopped may not
// wait for a bucket a stopped thread holds, so its wake is skipped; the
// bucket owes it, and its next release wakes everyone queued there. The
// holder here is a thread inside park()'s validate(), which runs with the
// bucket held. Hangs if the skipped wake is lost.
TEST(Park, AWakeSkippedWhileTheSchedulerIsStoppedIsPaidByTheBucketsNextRelease) {
  expect_clean_exit_in_child([] {
    static int key = 0;
    Parker p(&key, kWakeAny);
    await_parked(&key, 1);
    std::atomic<bool> holding{false}, release{false};
    std::thread holder([&] {
      WaitRecord wait(nullptr, WaitMode::kExclusive);
      auto hold = [&] {
        holding = true;
        while (!release) std::this_thread::yield();
        return false;
      };
      park(&key, kWakeAny, -1, wait, hold);
    });
    while (!holding) std::this_thread::yield();
    std::thread stopped([] {
      set_scheduler_stopped(true);
      const int woken = unpark(&key, 1);
      set_scheduler_stopped(false);
      if (woken != 0) _exit(2);
    });
    stopped.join();
    if (p.result != -1) _exit(3);
    release = true;
    holder.join();
    p.thread.join();
    if (p.result != int(ParkResult::kWoken)) _exit(4);
  });
}

TEST(DesignatedWaker, WakesOneUntilTheWokenThreadHasRun) {
  expect_clean_exit_in_child([] {
    static int key = 0;
    Parker a(&key, kWakeAny);
    await_parked(&key, 1);
    Parker b(&key, kWakeAny);
    await_parked(&key, 2);
    wake_one_designated(&key);  // a
    a.thread.join();
    if (!designated_wake_pending(&key)) _exit(2);
    wake_one_designated(&key);  // nobody: a has not reported that it ran
    if (parked_count(&key) != 1 || b.result != -1) _exit(3);
    designated_waker_ran(&key);
    if (designated_wake_pending(&key)) _exit(4);
    wake_one_designated(&key);  // b
    b.thread.join();
    designated_waker_ran(&key);
  });
}

// A designated wake that found nobody parked must not leave its mark behind:
// no woken thread would ever clear it, and every later wake of the key would
// be suppressed. Hangs (b is never woken) if the mark stays.
TEST(DesignatedWaker, AWakeThatFindsNobodyLeavesNoMark) {
  expect_clean_exit_in_child([] {
    static int key = 0;
    wake_one_designated(&key);
    if (designated_wake_pending(&key)) _exit(2);
    Parker b(&key, kWakeAny);
    await_parked(&key, 1);
    wake_one_designated(&key);
    b.thread.join();
    designated_waker_ran(&key);
  });
}

// Keys that share a mark slot: the second key's wakes are not suppressed by
// the first key's pending mark, they only lose their own suppression.
TEST(DesignatedWaker, AKeySharingAMarkSlotStillWakes) {
  expect_clean_exit_in_child([] {
    alignas(64) static char area[64 * 129];
    const void* first = &area[0];
    const void* second = &area[64 * 128];  // the same slot of 128
    if (!mark_designated_wake(first)) _exit(2);
    Parker b(second, kWakeAny);
    await_parked(second, 1);
    wake_one_designated(second);
    b.thread.join();
    designated_waker_ran(first);
  });
}

// --- fork() -------------------------------------------------------------------
// The child of a fork() has only the forking thread: what the parent's other
// threads left in the table (queued records, a wake mark of a woken thread
// that had not run yet) must not outlive them there. Each child here runs in
// a fork of the test's own child; a lost wake-up there is a hang, which the
// deadline reports.

// A program that uses the locks and never calls install() (the handler is
// registered at load). Without the reset the child's first unlock "wakes" the
// parent's sleeper, whose wake mark then stands for good, and the child's own
// sleeper is never woken.
TEST(ParkAfterFork, AChildOfAProgramThatNeverInstalledWakesItsOwnSleepers) {
  if (testing::kThreadSanitizerBuild) GTEST_SKIP() << "ThreadSanitizer starts no thread after a multithreaded fork";
  expect_clean_exit_in_child([] {
    static Mutex lock{"forked"};
    lock.lock();
    std::thread parent_sleeper([] {
      lock.lock();
      lock.unlock();
    });
    await_parked(&lock, 1);
    int status = testing::run_in_fork_child([] {
      if (parked_count(&lock) != 0) _exit(4);  // the parent's sleeper is queued here
      lock.unlock();
      lock.lock();
      std::thread child_sleeper([] {
        lock.lock();
        lock.unlock();
      });
      await_parked(&lock, 1);
      lock.unlock();
      child_sleeper.join();
    });
    lock.unlock();
    parent_sleeper.join();
    _exit(status);
  });
}

// A wake mark that stood at the fork (its thread woken but not yet run in the
// parent) is gone in the child, installed or not.
TEST(ParkAfterFork, AWakeMarkStandingAtTheForkIsGoneInTheChild) {
  expect_clean_exit_in_child([] {
    static char key;
    if (!mark_designated_wake(&key)) _exit(2);
    int status = testing::run_in_fork_child([] {
      if (designated_wake_pending(&key)) _exit(3);
    });
    _exit(status);
  });
}

}  // namespace
}  // namespace panicstop::detail
