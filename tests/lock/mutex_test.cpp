#include "panicstop/mutex.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "support/child_process.hpp"
#include "thread/slot.hpp"

namespace panicstop {
namespace {

using testing::run_in_child;

TEST(Mutex, IsNoLargerThanStdMutex) { EXPECT_LE(sizeof(Mutex), sizeof(std::mutex)); }

TEST(Mutex, LockUnlockTracksOwnership) {
  Mutex m{"basic"};
  EXPECT_STREQ(m.name(), "basic");
  EXPECT_FALSE(m.owned());
  m.lock();
  EXPECT_TRUE(m.owned());
  m.assert_held();
  m.unlock();
  EXPECT_FALSE(m.owned());
  m.assert_not_held();
}

TEST(Mutex, TryLockFailsWhileAnotherThreadHoldsIt) {
  Mutex m{"try"};
  m.lock();
  bool got = true;
  std::thread([&] { got = m.try_lock(); }).join();
  EXPECT_FALSE(got);
  m.unlock();
  std::thread([&] {
    got = m.try_lock();
    if (got) m.unlock();
  }).join();
  EXPECT_TRUE(got);
}

TEST(Mutex, WorksWithStandardGuards) {
  Mutex a{"a"}, b{"b"};
  {
    std::lock_guard<Mutex> g(a);
    EXPECT_TRUE(a.owned());
  }
  {
    std::unique_lock<Mutex> u(a, std::try_to_lock);
    EXPECT_TRUE(u.owns_lock());
  }
  {
    std::scoped_lock both(a, b);
    EXPECT_TRUE(a.owned() && b.owned());
  }
  EXPECT_FALSE(a.owned() || b.owned());
}

TEST(Mutex, RecursiveLockNeedsOneUnlockPerLock) {
  Mutex m{"recursive", kRecursive};
  m.lock();
  m.lock();
  EXPECT_TRUE(m.try_lock());
  m.unlock();
  m.unlock();
  EXPECT_TRUE(m.owned());
  bool other_got = true;
  std::thread([&] { other_got = m.try_lock(); }).join();
  EXPECT_FALSE(other_got);
  m.unlock();
  EXPECT_FALSE(m.owned());
  EXPECT_EQ(m.lock_object().word.load(), 0u);
}

TEST(Mutex, ExclusionUnderStress) {
  Mutex m{"stress"};
  constexpr int kThreads = 8;
  constexpr int kIters = 200000;
  long counter = 0;  // deliberately not atomic: the lock is what protects it
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < kIters; ++i) {
        std::lock_guard<Mutex> g(m);
        ++counter;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, long(kThreads) * kIters);
  EXPECT_EQ(m.lock_object().word.load(), 0u);
}

TEST(Mutex, MixedTryLockAndLockStress) {
  Mutex m{"mixed"};
  std::atomic<int> inside{0};
  std::atomic<bool> overlap{false};
  long counter = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50000; ++i) {
        bool locked = (t % 2 == 0) ? m.try_lock() : (m.lock(), true);
        if (!locked) continue;
        if (inside.fetch_add(1) != 0) overlap = true;
        ++counter;
        inside.fetch_sub(1);
        m.unlock();
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_FALSE(overlap.load());
  EXPECT_GE(counter, 3 * 50000);
}

TEST(Mutex, NoLostWakeUpsWhenManyThreadsSleep) {
  // Yielding inside the critical section sends contenders to sleep, so the
  // sleeper-count path (who marks the lock contested after a wake-up) runs
  // all the time. A lost wake-up leaves a thread asleep forever: the child
  // then hangs and is killed at the deadline.
  testing::ChildOptions opts;
  opts.deadline = std::chrono::seconds(60);
  auto r = run_in_child(
      [] {
        static Mutex m{"sleepy"};
        static long counter = 0;
        constexpr int kThreads = 16, kIters = 3000;
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t)
          threads.emplace_back([] {
            for (int i = 0; i < kIters; ++i) {
              std::lock_guard<Mutex> g(m);
              ++counter;
              if (i % 4 == 0) std::this_thread::yield();
            }
          });
        for (auto& t : threads) t.join();
        if (counter != long(kThreads) * kIters) _exit(3);
      },
      opts);
  EXPECT_FALSE(r.hung) << r.describe();
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
}

TEST(Mutex, TimedLockGivesUpAtTheDeadlineWhileAnotherThreadHoldsIt) {
  Mutex m{"timed"};
  m.lock();
  std::thread t([&] {
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(m.try_lock_for(std::chrono::milliseconds(30)));
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(30));
    EXPECT_FALSE(m.try_lock_until(std::chrono::system_clock::now() + std::chrono::milliseconds(5)));
    EXPECT_FALSE(m.try_lock_for(std::chrono::seconds(0)));  // a passed deadline: one attempt
    EXPECT_FALSE(m.owned());
  });
  t.join();
  EXPECT_TRUE(m.owned());
  m.unlock();
  EXPECT_TRUE(m.try_lock_for(std::chrono::seconds(0)));  // free: the one attempt succeeds
  EXPECT_TRUE(m.owned());
  m.unlock();
}

TEST(Mutex, TimedLockTakesTheLockWhenItIsReleasedInTime) {
  Mutex m{"timed-release"};
  m.lock();
  std::atomic<bool> waiting{false};
  std::thread t([&] {
    waiting = true;
    EXPECT_TRUE(m.try_lock_for(std::chrono::seconds(60)));
    EXPECT_TRUE(m.owned());
    m.unlock();
  });
  while (!waiting.load()) std::this_thread::yield();
  m.unlock();
  t.join();
}

TEST(Mutex, TimedWaitersThatGiveUpLoseNoWakeUps) {
  // Timed waiters give up all the time while untimed ones sleep beside them.
  // An unlock's single wake can land on a waiter at the moment it gives up; if
  // that wake were not passed on, an untimed sleeper would sleep for ever: the
  // child then hangs and is killed at the deadline.
  testing::ChildOptions opts;
  opts.deadline = std::chrono::seconds(60);
  auto r = run_in_child(
      [] {
        static Mutex m{"timed-sleepy"};
        static long counter = 0;
        std::vector<std::thread> threads;
        for (int t = 0; t < 12; ++t)
          threads.emplace_back([t] {
            for (int i = 0; i < 2000; ++i) {
              if (t % 2 == 0) {
                if (!m.try_lock_for(std::chrono::microseconds(50))) continue;
              } else {
                m.lock();
              }
              ++counter;
              if (i % 4 == 0) std::this_thread::yield();
              m.unlock();
            }
          });
        for (auto& t : threads) t.join();
        if (counter < 6L * 2000) _exit(3);
      },
      opts);
  EXPECT_FALSE(r.hung) << r.describe();
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
}

TEST(Mutex, WaiterRecordsWhatItWaitsFor) {
  Mutex m{"recorded"};
  m.lock();
  std::atomic<detail::ThreadSlot*> waiter_slot{nullptr};
  std::thread t([&] {
    waiter_slot = detail::current_slot();
    m.lock();
    m.unlock();
  });
  // Wait until the waiter has published that it sleeps on m.
  while (waiter_slot.load() == nullptr || waiter_slot.load()->waiting_on.load() != &m.lock_object())
    std::this_thread::yield();
  EXPECT_EQ(waiter_slot.load()->wait_mode.load(), detail::WaitMode::kExclusive);
  m.unlock();
  t.join();
  EXPECT_EQ(waiter_slot.load()->waiting_on.load(), nullptr);
}

// --- misuse: each ends in a panic naming the lock ------------------------------

TEST(MutexMisuse, RecursionOnNonRecursiveLockPanicsWithItsName) {
  auto r = run_in_child([] {
    Mutex m{"not-recursive"};
    m.lock();
    m.lock();
  });
  EXPECT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("mutex \"not-recursive\""), std::string::npos) << r.describe();
  EXPECT_NE(r.output.find("recursed on a non-recursive lock"), std::string::npos) << r.describe();
}

TEST(MutexMisuse, UnlockByNonOwnerPanics) {
  auto r = run_in_child([] {
    static Mutex m{"someone-elses"};
    std::thread([] { m.lock(); }).join();
    m.unlock();
  });
  EXPECT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("unlocked by a thread that does not own it"), std::string::npos) << r.describe();
}

TEST(MutexMisuse, UnlockWhileUnlockedPanics) {
  auto r = run_in_child([] {
    Mutex m{"never-locked"};
    m.unlock();
  });
  EXPECT_NE(r.output.find("unlocked while not locked"), std::string::npos) << r.describe();
}

TEST(MutexMisuse, DestroyingAHeldLockPanics) {
  auto r = run_in_child([] {
    auto* m = new Mutex{"doomed"};
    m->lock();
    delete m;
  });
  EXPECT_NE(r.output.find("mutex \"doomed\""), std::string::npos) << r.describe();
  EXPECT_NE(r.output.find("destroyed while held"), std::string::npos) << r.describe();
}

// --- the stopped-scheduler bypass (docs/DESIGN.md, section 4, invariants 2 and 3) -----------

TEST(MutexBypass, StoppedThreadPassesAHeldLockWithoutWritingIt) {
  Mutex m{"held-by-other"};
  std::atomic<bool> held{false}, release{false};
  std::thread owner([&] {
    m.lock();
    held = true;
    while (!release) std::this_thread::yield();
    m.unlock();
  });
  while (!held) std::this_thread::yield();
  const uintptr_t before = m.lock_object().word.load();

  std::atomic<bool> done{false};
  std::thread panicking([&] {
    detail::set_scheduler_stopped(true);
    m.lock();  // would block forever without the bypass
    EXPECT_TRUE(m.try_lock());
    m.unlock();
    m.unlock();
    detail::set_scheduler_stopped(false);
    done = true;
  });
  panicking.join();
  EXPECT_TRUE(done);
  EXPECT_EQ(m.lock_object().word.load(), before) << "a faked acquisition wrote the lock word";

  // Invariant 3: a thread without the flag still blocks.
  EXPECT_FALSE(m.try_lock());
  release = true;
  owner.join();
}

TEST(MutexBypass, WithoutTheFlagTheSameLockBlocks) {
  // The control for the test above: the same sequence without the flag hangs,
  // and the child is killed at its deadline.
  testing::ChildOptions opts;
  opts.deadline = std::chrono::milliseconds(1500);
  auto r = run_in_child(
      [] {
        static Mutex m{"held-forever"};
        std::atomic<bool> held{false};
        std::thread([&] {
          m.lock();
          held = true;
          for (;;) pause();
        }).detach();
        while (!held) std::this_thread::yield();
        m.lock();
      },
      opts);
  EXPECT_TRUE(r.hung) << r.describe();
}

}  // namespace
}  // namespace panicstop
