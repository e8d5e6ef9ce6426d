#include "panicstop/condvar.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "panicstop/mutex.hpp"
#include "panicstop/rwlock.hpp"
#include "panicstop/spin_mutex.hpp"
#include "panicstop/sx_lock.hpp"
#include "support/child_process.hpp"
#include "thread/slot.hpp"

namespace panicstop {
namespace {

using namespace std::chrono_literals;
using std::chrono::steady_clock;
using std::chrono::system_clock;

// A bounded queue guarded by any panicstop lock L, waiting through CondVar
// either on L itself or on a std::unique_lock<L>.
template <class L, bool kViaUniqueLock>
class BoundedQueue {
 public:
  static constexpr int kCapacity = 4;

  void push(long v) {
    if constexpr (kViaUniqueLock) {
      std::unique_lock<L> u(lock_);
      not_full_.wait(u, [&] { return count_ < kCapacity; });
      put(v);
    } else {
      lock_.lock();
      while (count_ == kCapacity) not_full_.wait(lock_);
      put(v);
      lock_.unlock();
    }
    not_empty_.notify_one();
  }
  long pop() {
    long v;
    if constexpr (kViaUniqueLock) {
      std::unique_lock<L> u(lock_);
      not_empty_.wait(u, [&] { return count_ > 0; });
      v = take();
    } else {
      lock_.lock();
      while (count_ == 0) not_empty_.wait(lock_);
      v = take();
      lock_.unlock();
    }
    not_full_.notify_one();
    return v;
  }

 private:
  void put(long v) {
    items_[(head_ + count_) % kCapacity] = v;
    ++count_;
  }
  long take() {
    long v = items_[head_];
    head_ = (head_ + 1) % kCapacity;
    --count_;
    return v;
  }

  L lock_{"queue"};
  CondVar not_full_{"not-full"}, not_empty_{"not-empty"};
  long items_[kCapacity] = {};
  int head_ = 0, count_ = 0;
};

// Many producers and consumers through a tiny queue: every item arrives
// exactly once (a lost wake-up shows as a hang, a lost item as a wrong sum).
template <class Queue>
void produce_and_consume(int items_per_producer) {
  Queue q;
  constexpr int kProducers = 3, kConsumers = 3;
  const long total = long(kProducers) * items_per_producer;
  std::atomic<long> sum{0}, received{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p)
    threads.emplace_back([&, p] {
      for (int i = 0; i < items_per_producer; ++i) q.push(long(p) * items_per_producer + i + 1);
    });
  for (int c = 0; c < kConsumers; ++c)
    threads.emplace_back([&, c] {
      // Consumers split the items evenly; the remainder goes to the first.
      long mine = total / kConsumers + (c == 0 ? total % kConsumers : 0);
      for (long i = 0; i < mine; ++i) {
        sum += q.pop();
        ++received;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(received.load(), total);
  EXPECT_EQ(sum.load(), total * (total + 1) / 2);
}

TEST(CondVar, NameIsOptional) {
  CondVar unnamed;
  CondVar named{"queue-not-empty"};
  EXPECT_STREQ(unnamed.name(), "condvar");
  EXPECT_STREQ(named.name(), "queue-not-empty");
}

TEST(CondVar, ProducerConsumerWithMutex) { produce_and_consume<BoundedQueue<Mutex, false>>(20000); }
TEST(CondVar, ProducerConsumerWithUniqueLockOfMutex) { produce_and_consume<BoundedQueue<Mutex, true>>(20000); }
TEST(CondVar, ProducerConsumerWithRwLock) { produce_and_consume<BoundedQueue<RwLock, false>>(10000); }
TEST(CondVar, ProducerConsumerWithUniqueLockOfSxLock) { produce_and_consume<BoundedQueue<SxLock, true>>(10000); }
TEST(CondVar, ProducerConsumerWithSpinMutex) { produce_and_consume<BoundedQueue<SpinMutex, false>>(3000); }

TEST(CondVar, NotifyAllWakesEveryWaiter) {
  Mutex m{"m"};
  CondVar cv{"broadcast"};
  constexpr int kWaiters = 6;
  int waiting = 0;  // guarded by m
  bool go = false;  // guarded by m
  std::atomic<int> woke{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kWaiters; ++i)
    threads.emplace_back([&] {
      std::unique_lock<Mutex> u(m);
      ++waiting;
      cv.wait(u, [&] { return go; });
      ++woke;
    });
  // Each waiter counted itself under m and then released m only inside wait(),
  // so once all are counted every one of them waits (or is about to sleep on
  // the sequence it read): one notify_all must reach all.
  for (;;) {
    std::lock_guard<Mutex> g(m);
    if (waiting == kWaiters) break;
  }
  {
    std::lock_guard<Mutex> g(m);
    go = true;
  }
  cv.notify_all();
  for (auto& t : threads) t.join();
  EXPECT_EQ(woke.load(), kWaiters);
}

TEST(CondVar, NotifyOneWakesAWaiter) {
  Mutex m{"m"};
  CondVar cv{"one"};
  bool ready = false;
  std::atomic<detail::ThreadSlot*> slot{nullptr};
  std::thread waiter([&] {
    std::unique_lock<Mutex> u(m);
    slot = detail::current_slot();
    while (!ready) cv.wait(u);
    EXPECT_TRUE(m.owned());
  });
  // The waiter records the condvar it sleeps on, for dumps.
  while (slot.load() == nullptr || slot.load()->waiting_on.load() != &cv.lock_object()) std::this_thread::yield();
  EXPECT_EQ(slot.load()->wait_mode.load(), detail::WaitMode::kCondVar);
  EXPECT_EQ(cv.lock_object().kind, detail::LockKind::kCondVar);
  EXPECT_STREQ(cv.name(), "one");
  {
    std::lock_guard<Mutex> g(m);
    ready = true;
  }
  cv.notify_one();
  waiter.join();
}

TEST(CondVar, WaitForTimesOutAndRetakesTheLock) {
  Mutex m{"m"};
  CondVar cv{"timeout"};
  m.lock();
  auto start = steady_clock::now();
  EXPECT_EQ(cv.wait_for(m, 5ms), std::cv_status::timeout);
  EXPECT_GE(steady_clock::now() - start, 5ms);
  EXPECT_TRUE(m.owned());
  EXPECT_EQ(cv.wait_until(m, steady_clock::now() + 2ms), std::cv_status::timeout);
  EXPECT_EQ(cv.wait_until(m, system_clock::now() + 2ms), std::cv_status::timeout);
  EXPECT_EQ(cv.wait_for(m, -1s), std::cv_status::timeout);
  EXPECT_FALSE(cv.wait_for(m, 2ms, [] { return false; }));
  EXPECT_TRUE(cv.wait_for(m, 2ms, [] { return true; }));
  EXPECT_FALSE(cv.wait_until(m, system_clock::now() + 2ms, [] { return false; }));
  EXPECT_TRUE(m.owned());
  m.unlock();
}

TEST(CondVar, WaitForReturnsEarlyWhenNotified) {
  SxLock l{"sx"};
  CondVar cv{"early"};
  bool ready = false;
  std::atomic<bool> waiting{false};
  bool result = false;
  std::thread waiter([&] {
    std::unique_lock<SxLock> u(l);
    waiting = true;
    result = cv.wait_for(u, 60s, [&] { return ready; });
  });
  while (!waiting) std::this_thread::yield();
  {
    std::lock_guard<SxLock> g(l);  // taken only once the waiter released it in wait
    ready = true;
  }
  cv.notify_all();
  waiter.join();
  EXPECT_TRUE(result);
}

TEST(CondVar, WaitsWithASharedLock) {
  RwLock l{"rw"};
  CondVar cv{"shared"};
  std::atomic<bool> ready{false};
  std::thread waiter([&] {
    std::shared_lock<RwLock> s(l);
    cv.wait(s, [&] { return ready.load(); });
    EXPECT_TRUE(s.owns_lock());
  });
  {
    std::lock_guard<RwLock> g(l);  // exclusive: the waiter dropped its shared hold
    ready = true;
  }
  cv.notify_all();
  waiter.join();
  EXPECT_EQ(l.lock_object().word.load(), 0u);
}

TEST(CondVarBypass, WaitsReturnAtOnceWhenTheSchedulerIsStopped) {
  Mutex m{"m"};
  CondVar cv{"stopped"};
  std::atomic<bool> done{false};
  std::thread([&] {
    detail::set_scheduler_stopped(true);
    m.lock();
    cv.wait(m);  // nobody will ever notify
    EXPECT_TRUE(m.owned()) << "the lock is not released by a bypassed wait";
    EXPECT_EQ(cv.wait_for(m, 1h), std::cv_status::no_timeout);
    EXPECT_EQ(cv.wait_until(m, system_clock::now() + 1h), std::cv_status::no_timeout);
    cv.wait(m, [] { return false; });
    EXPECT_FALSE(cv.wait_for(m, 1h, [] { return false; }));
    m.unlock();
    detail::set_scheduler_stopped(false);
    done = true;
  }).join();
  EXPECT_TRUE(done.load());
  EXPECT_EQ(m.lock_object().word.load(), 0u);
}

TEST(CondVarBypass, WithoutTheFlagAWaitBlocks) {
  testing::ChildOptions opts;
  opts.deadline = std::chrono::milliseconds(500);
  auto r = testing::run_in_child(
      [] {
        Mutex m{"m"};
        CondVar cv{"never-notified"};
        m.lock();
        cv.wait(m);
      },
      opts);
  EXPECT_TRUE(r.hung) << r.describe();
}

}  // namespace
}  // namespace panicstop
