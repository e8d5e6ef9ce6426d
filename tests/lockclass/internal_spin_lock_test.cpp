#include "lockclass/lock_class.hpp"

#include <gtest/gtest.h>
#include <time.h>

#include <atomic>
#include <thread>
#include <vector>

#include "sys/syscall.hpp"

namespace panicstop::detail {
namespace {

int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

TEST(InternalSpinLock, AWaiterGivesItsCpuUpWhileTheHolderIsNotRunning) {
  // The holder sleeps with the lock held, as a preempted holder, or one
  // blocked inside a sanitizer's runtime, is off the CPU. A waiter that only
  // spun would burn the whole wait (the CI hang these naps ended: 15 such
  // waiters kept such a holder from running); one that naps burns a sliver.
  // More load only lowers the waiter's share, so the check cannot fail for
  // load; on a quiet machine a spinning waiter fails it.
  static InternalSpinLock lock;
  ASSERT_TRUE(lock.try_acquire());
  std::atomic<bool> started{false};
  int64_t waited_ns = 0, cpu_ns = 0;
  std::thread waiter([&] {
    started.store(true);
    const int64_t wall0 = sys::monotonic_ns(), cpu0 = thread_cpu_ns();
    EXPECT_TRUE(lock.try_acquire());
    cpu_ns = thread_cpu_ns() - cpu0;
    waited_ns = sys::monotonic_ns() - wall0;
    lock.release();
  });
  while (!started.load()) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the holder off the CPU, not a synchronization
  lock.release();
  waiter.join();
  if (waited_ns < 100'000'000)
    GTEST_SKIP() << "the waiter reached the lock only " << waited_ns / 1000 << " us before its release";
  EXPECT_LT(cpu_ns * 5, waited_ns) << "the waiter used " << cpu_ns / 1000 << " us of CPU in a wait of "
                                   << waited_ns / 1000 << " us";
}

TEST(InternalSpinLock, ExcludesAmongManyMoreThreadsThanCpus) {
  // Waiters that nap must still get in, and only one at a time: a plain
  // counter under the lock (ThreadSanitizer checks the ordering) ends exact.
  static InternalSpinLock lock;
  static long counter = 0;
  std::atomic<int> inside{0};
  std::atomic<bool> overlap{false};
  constexpr int kThreads = 16, kIters = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < kIters; ++i) {
        ASSERT_TRUE(lock.try_acquire());
        if (inside.fetch_add(1) != 0) overlap = true;
        ++counter;
        inside.fetch_sub(1);
        lock.release();
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_FALSE(overlap.load());
  EXPECT_EQ(counter, long(kThreads) * kIters);
}

}  // namespace
}  // namespace panicstop::detail
