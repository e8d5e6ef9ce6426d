// What only SxLock has: timed acquisition. Everything SxLock shares with
// RwLock is tested on both in rwlock_test.cpp.
#include "panicstop/sx_lock.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "panicstop/condvar.hpp"
#include "panicstop/mutex.hpp"
#include "support/child_process.hpp"
#include "thread/slot.hpp"

namespace panicstop {
namespace {

using namespace std::chrono_literals;
using std::chrono::steady_clock;
using std::chrono::system_clock;

uintptr_t word_of(const SxLock& l) { return l.lock_object().word.load(); }

// A thread holding `l` (exclusively or shared) until the object dies.
class Holder {
 public:
  Holder(SxLock& l, bool exclusive) : l_(l), exclusive_(exclusive) {
    t_ = std::thread([this] {
      if (exclusive_)
        l_.lock();
      else
        l_.lock_shared();
      held_ = true;
      while (!release_) std::this_thread::yield();
      if (exclusive_)
        l_.unlock();
      else
        l_.unlock_shared();
    });
    while (!held_) std::this_thread::yield();
  }
  ~Holder() {
    release_ = true;
    t_.join();
  }

 private:
  SxLock& l_;
  bool exclusive_;
  std::atomic<bool> held_{false}, release_{false};
  std::thread t_;
};

TEST(SxLock, TimedCallsSucceedAtOnceOnAFreeLock) {
  SxLock l{"free"};
  ASSERT_TRUE(l.try_lock_for(1s));
  l.unlock();
  ASSERT_TRUE(l.try_lock_until(steady_clock::now() + 1s));
  l.unlock();
  ASSERT_TRUE(l.try_lock_until(system_clock::now() + 1s));
  l.unlock();
  ASSERT_TRUE(l.try_lock_shared_for(1s));
  ASSERT_TRUE(l.try_lock_shared_until(system_clock::now() + 1s));
  ASSERT_TRUE(l.try_lock_shared_until(steady_clock::now() - 1s)) << "a passed deadline still makes one attempt";
  l.unlock_shared();
  l.unlock_shared();
  l.unlock_shared();
  EXPECT_EQ(word_of(l), 0u);
  // A duration too long to add to now() means no deadline, not an overflow.
  ASSERT_TRUE(l.try_lock_for(std::chrono::hours::max()));
  l.unlock();
}

TEST(SxLock, TimedCallsTimeOutWhileAWriterHoldsIt) {
  SxLock l{"write-held"};
  Holder h(l, /*exclusive=*/true);
  const uintptr_t before = word_of(l);
  std::thread([&] {
    auto start = steady_clock::now();
    EXPECT_FALSE(l.try_lock_for(5ms));
    EXPECT_GE(steady_clock::now() - start, 5ms);
    EXPECT_FALSE(l.try_lock_until(steady_clock::now() + 3ms));
    EXPECT_FALSE(l.try_lock_until(system_clock::now() + 3ms));
    EXPECT_FALSE(l.try_lock_for(0ms));
    EXPECT_FALSE(l.try_lock_shared_for(5ms));
    EXPECT_FALSE(l.try_lock_shared_until(system_clock::now() + 3ms));
    EXPECT_FALSE(l.try_lock_shared_until(steady_clock::now() - 1s));
  }).join();
  // Timed-out waiters leave at most their flags, which the release clears.
  EXPECT_EQ(detail::shared_lock_owner(word_of(l)), detail::shared_lock_owner(before));
}

TEST(SxLock, TimedWriterTimesOutOverReadersAndReleasesTheReservation) {
  SxLock l{"read-held"};
  {
    Holder h(l, /*exclusive=*/false);
    std::thread([&] { EXPECT_FALSE(l.try_lock_for(5ms)); }).join();
    // The writer gave up: nothing holds new readers back any more.
    EXPECT_EQ(word_of(l) & detail::kRwWriteWaiters, 0u);
    bool reader_got = false;
    std::thread([&] {
      reader_got = l.try_lock_shared_for(1s);
      if (reader_got) l.unlock_shared();
    }).join();
    EXPECT_TRUE(reader_got);
  }
  EXPECT_EQ(word_of(l), 0u);
}

TEST(SxLock, TimedWaitSucceedsWhenTheHolderReleases) {
  for (bool exclusive_waiter : {true, false}) {
    SxLock l{"released"};
    l.lock();
    std::atomic<detail::ThreadSlot*> slot{nullptr};
    std::atomic<bool> got{false};
    std::thread waiter([&] {
      slot = detail::current_slot();
      // Far deadline: only the release can end this wait in time.
      if (exclusive_waiter ? l.try_lock_for(60s) : l.try_lock_shared_until(system_clock::now() + 60s)) {
        got = true;
        if (exclusive_waiter)
          l.unlock();
        else
          l.unlock_shared();
      }
    });
    while (slot.load() == nullptr || slot.load()->waiting_on.load() != &l.lock_object()) std::this_thread::yield();
    EXPECT_FALSE(got.load());
    l.unlock();
    waiter.join();
    EXPECT_TRUE(got.load()) << (exclusive_waiter ? "exclusive" : "shared");
    EXPECT_EQ(word_of(l), 0u);
  }
}

TEST(SxLock, WorksWithStandardTimedGuards) {
  SxLock l{"guards"};
  {
    std::unique_lock<SxLock> u(l, 10ms);
    EXPECT_TRUE(u.owns_lock());
    std::thread([&] {
      std::shared_lock<SxLock> s(l, 2ms);
      EXPECT_FALSE(s.owns_lock());
    }).join();
  }
  {
    std::shared_lock<SxLock> s(l, steady_clock::now() + 10ms);
    EXPECT_TRUE(s.owns_lock());
  }
  EXPECT_EQ(word_of(l), 0u);
}

TEST(SxLock, MixedTimedStress) {
  SxLock l{"timed-stress"};
  long value = 0;
  std::atomic<int> writers_inside{0};
  std::atomic<bool> violation{false}, go{false};
  std::atomic<long> timed_out{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&, t] {
      while (!go) std::this_thread::yield();
      for (int i = 0; i < 20000; ++i) {
        if (t % 2 == 0) {
          if (!l.try_lock_for(std::chrono::microseconds(i % 50))) {
            ++timed_out;
            continue;
          }
          if (writers_inside.fetch_add(1) != 0) violation = true;
          ++value;
          if ((i % 128) == 0) std::this_thread::yield();
          writers_inside.fetch_sub(1);
          l.unlock();
        } else {
          if (!l.try_lock_shared_for(std::chrono::microseconds(i % 50))) {
            ++timed_out;
            continue;
          }
          if (writers_inside.load() != 0) violation = true;
          l.unlock_shared();
        }
      }
    });
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_FALSE(violation.load());
  EXPECT_EQ(word_of(l), 0u) << "timed-out waiters left state behind";
}

// Lost wake-ups around timed writers: the last waiting writer to give up
// drops the lock's reservation for writers, racing with writers that arrive
// and sleep meanwhile; a writer woken then finds the word without the
// writer-waiters flag and must set it again before it sleeps. Untimed
// writers and readers must all get through; a stranded one hangs the child.
TEST(SxLock, NoWakeUpIsLostWhenTimedWritersGiveUp) {
  testing::ChildOptions opts;
  opts.deadline = std::chrono::seconds(20);
  auto r = testing::run_in_child(
      [] {
        static SxLock l{"timed-give-up"};
        long value = 0;  // written under the exclusive hold only
        std::atomic<bool> go{false};
        std::vector<std::thread> threads;
        constexpr int kIters = 3000;
        for (int t = 0; t < 8; ++t)
          threads.emplace_back([&, t] {
            while (!go) std::this_thread::yield();
            for (int i = 0; i < kIters; ++i) {
              switch (t % 4) {
                case 0:  // a timed writer, mostly giving up
                case 1:
                  if (!l.try_lock_for(std::chrono::microseconds(i % 20))) break;
                  ++value;
                  l.unlock();
                  break;
                case 2:  // an untimed writer
                  l.lock();
                  ++value;
                  if ((i % 16) == 0) std::this_thread::yield();
                  l.unlock();
                  break;
                default:  // a reader
                  l.lock_shared();
                  if ((i % 16) == 0) std::this_thread::yield();
                  l.unlock_shared();
              }
            }
          });
        go = true;
        for (auto& t : threads) t.join();
        if (value < 2 * kIters) _exit(3);
        if (word_of(l) != 0) _exit(4);
      },
      opts);
  EXPECT_FALSE(r.hung) << r.describe();
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
}

TEST(SxLock, MayBeHeldWhileBlocking) {
  // An SxLock holder may sleep on a condvar with another lock; contenders of
  // the SxLock just wait meanwhile.
  SxLock sx{"held-while-blocking"};
  Mutex m{"cv-lock"};
  CondVar cv{"cv"};
  bool ready = false;
  sx.lock_shared();
  std::thread other([&] {
    EXPECT_FALSE(sx.try_lock_for(2ms));
    std::lock_guard<Mutex> g(m);
    ready = true;
    cv.notify_one();
  });
  {
    std::unique_lock<Mutex> u(m);
    cv.wait(u, [&] { return ready; });
  }
  other.join();
  sx.unlock_shared();
  EXPECT_EQ(word_of(sx), 0u);
}

TEST(SxLockBypass, TimedCallsReturnAtOnceWithoutWritingTheWord) {
  SxLock l{"write-owned"};
  Holder h(l, /*exclusive=*/true);
  const uintptr_t before = word_of(l);
  std::atomic<bool> done{false};
  std::thread([&] {
    detail::set_scheduler_stopped(true);
    EXPECT_TRUE(l.try_lock_for(1h));
    EXPECT_TRUE(l.try_lock_until(system_clock::now() + 1h));
    l.unlock();
    l.unlock();
    EXPECT_TRUE(l.try_lock_shared_for(1h));
    EXPECT_TRUE(l.try_lock_shared_until(steady_clock::now() + 1h));
    l.unlock_shared();
    l.unlock_shared();
    detail::set_scheduler_stopped(false);
    done = true;
  }).join();
  EXPECT_TRUE(done.load());
  EXPECT_EQ(word_of(l), before) << "a faked acquisition wrote the lock word";
  bool got = true;
  std::thread([&] { got = l.try_lock_for(2ms) || l.try_lock_shared_for(2ms); }).join();
  EXPECT_FALSE(got) << "a thread without the flag must still block";
}

TEST(SxLockBypass, WithoutTheFlagATimedWaitRunsToItsDeadline) {
  // The control: without the flag the same call does not return before its
  // deadline; it hangs past the child's deadline.
  testing::ChildOptions opts;
  opts.deadline = std::chrono::milliseconds(500);
  auto r = testing::run_in_child(
      [] {
        static SxLock l{"held-forever"};
        std::atomic<bool> held{false};
        std::thread([&] {
          l.lock();
          held = true;
          for (;;) pause();
        }).detach();
        while (!held) std::this_thread::yield();
        (void)l.try_lock_for(1h);
      },
      opts);
  EXPECT_TRUE(r.hung) << r.describe();
}

}  // namespace
}  // namespace panicstop
