// The contenders' spin (src/lock/wait.hpp): one spinner per lock at a time,
// and a bounded number of reads of the lock word. What it buys is measured in
// bench/locks_bench (docs/BENCHMARKS.md), not here.
#include "lock/wait.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "support/child_process.hpp"
#include "sys/syscall.hpp"

namespace panicstop::detail {
namespace {

TEST(SpinTurn, OnlyOneThreadHoldsTheTurnOfALock) {
  std::atomic<uint8_t> spinner{0};
  SpinTurn first(spinner);
  SpinTurn second(spinner);
  EXPECT_TRUE(first.held());
  EXPECT_FALSE(second.held());

  std::atomic<uint8_t> other_lock{0};
  SpinTurn elsewhere(other_lock);
  EXPECT_TRUE(elsewhere.held()) << "each lock has its own turn";
}

TEST(SpinTurn, GivingUpOrLeavingPassesTheTurnOn) {
  std::atomic<uint8_t> spinner{0};
  {
    SpinTurn first(spinner);
    ASSERT_TRUE(first.held());
    first.give_up();
    EXPECT_FALSE(first.held());
    SpinTurn second(spinner);
    EXPECT_TRUE(second.held());
    first.give_up();  // a second give_up must not take the turn from `second`
    SpinTurn third(spinner);
    EXPECT_FALSE(third.held());
  }
  SpinTurn after_scope(spinner);
  EXPECT_TRUE(after_scope.held());
}

// Threads take and leave the turn as fast as they can: never two at once.
TEST(SpinTurn, NeverTwoHoldersUnderContention) {
  std::atomic<uint8_t> spinner{0};
  std::atomic<int> holders{0};
  std::atomic<int> most{0};
  std::atomic<long> turns{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 5000; ++i) {
        SpinTurn turn(spinner);
        if (!turn.held()) continue;
        const int now = holders.fetch_add(1) + 1;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        turns.fetch_add(1, std::memory_order_relaxed);
        for (int k = 0; k < 20; ++k) cpu_relax();  // a window for a second holder to show
        holders.fetch_sub(1);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(most.load(), 1);
  EXPECT_GT(turns.load(), 0);
  EXPECT_EQ(spinner.load(), 0) << "the last holder left the turn free";
}

TEST(SpinBudget, ASpinNotAllowedNeverPauses) {
  SpinBudget budget(false);
  EXPECT_FALSE(budget.pause());
}

TEST(SpinBudget, AllowsExactlyTheBoundedNumberOfReads) {
  SpinBudget budget(true);
  int pauses = 0;
  while (budget.pause()) ++pauses;
  EXPECT_EQ(pauses, kSpinReads);
  EXPECT_FALSE(budget.pause());
}

TEST(SpinBudget, RelaxesPerReadAreMeasuredOnceAndAtLeastOne) {
  const uint32_t first = relaxes_per_spin_read();
  EXPECT_GE(first, 1u);
  EXPECT_EQ(relaxes_per_spin_read(), first);
}

// A turn that a thread of the parent held at a fork() is free in the child,
// which does not have that thread: otherwise the lock never spins there again.
TEST(SpinTurn, AForkedChildTakesATurnAThreadOfTheParentHeld) {
  testing::ChildOptions opts;
  opts.deadline = std::chrono::seconds(10);
  auto r = testing::run_in_child(
      [] {
        static std::atomic<uint8_t> spinner{0};
        static std::atomic<uint32_t> held{0}, never{0};
        std::thread([] {
          SpinTurn turn(spinner);
          held = turn.held() ? 1 : 2;
          sys::futex_wake(&held, 1);
          for (;;) sys::futex_wait(&never, 0);  // keeps the turn across the fork
        }).detach();
        while (held.load() == 0) sys::futex_wait(&held, 0);
        if (held.load() != 1) _exit(2);
        _exit(testing::run_in_fork_child([] {
          SpinTurn turn(spinner);
          if (!turn.held()) _exit(3);
        }));
      },
      opts);
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
}

}  // namespace
}  // namespace panicstop::detail
