// A workload that checks itself while kdb and live dumps stop and resume it:
// workers move units between accounts under panicstop Mutexes, so the total
// never changes, and each counts its own rounds, so a worker that was never
// resumed shows.
#pragma once

#include <sched.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "panicstop/mutex.hpp"
#include "panicstop/thread.hpp"

namespace panicstop::testing {

class SelfCheckingWorkload {
 public:
  static constexpr int kAccounts = 16;
  static constexpr long kStartBalance = 1000;

  explicit SelfCheckingWorkload(int workers) : rounds_(size_t(workers)) {
    // One lock class; a worker holds two of its locks at once, in index order.
    for (int i = 0; i < kAccounts; ++i) locks_.push_back(std::make_unique<Mutex>("account", kDupOk));
    for (auto& b : balance_) b = kStartBalance;
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this, i] { run(i); });
    while (started_.load() < workers) sched_yield();
  }
  ~SelfCheckingWorkload() {
    quit_.store(true);
    for (auto& t : threads_) t.join();
  }
  SelfCheckingWorkload(const SelfCheckingWorkload&) = delete;
  SelfCheckingWorkload& operator=(const SelfCheckingWorkload&) = delete;

  int workers() const { return int(threads_.size()); }

  // Returns once every worker has finished at least two more rounds (so it
  // ran after the moment of the call). Never returns if one stays stopped:
  // the test's child deadline turns that into a failure.
  void wait_until_all_progress() {
    std::vector<uint64_t> seen(rounds_.size());
    for (size_t i = 0; i < rounds_.size(); ++i) seen[i] = rounds_[i].value.load();
    for (size_t i = 0; i < rounds_.size(); ++i)
      while (rounds_[i].value.load() < seen[i] + 2) sched_yield();
  }

  // The books balance: the sum over all accounts, taken with every lock held.
  bool books_balance() {
    for (auto& m : locks_) m->lock();
    long sum = 0;
    for (long b : balance_) sum += b;
    for (auto it = locks_.rbegin(); it != locks_.rend(); ++it) (*it)->unlock();
    return sum == kAccounts * kStartBalance;
  }

 private:
  struct alignas(64) Counter {
    std::atomic<uint64_t> value{0};
  };

  void run(int id) {
    char name[16] = "worker-";
    name[7] = char('0' + id / 10 % 10);
    name[8] = char('0' + id % 10);
    set_thread_name(name);
    started_.fetch_add(1);
    uint32_t r = uint32_t(id) * 2654435761u + 1;
    while (!quit_.load(std::memory_order_relaxed)) {
      r = r * 1664525u + 1013904223u;
      int from = int(r >> 8) % kAccounts, to = int(r >> 16) % kAccounts;
      if (from != to) {
        // Lock order by index: no deadlock between workers.
        Mutex& first = *locks_[size_t(from < to ? from : to)];
        Mutex& second = *locks_[size_t(from < to ? to : from)];
        std::lock_guard<Mutex> a(first);
        std::lock_guard<Mutex> b(second);
        balance_[from] -= 1;
        balance_[to] += 1;
      }
      rounds_[size_t(id)].value.fetch_add(1, std::memory_order_relaxed);
    }
  }

  std::vector<std::unique_ptr<Mutex>> locks_;
  long balance_[kAccounts];
  std::vector<Counter> rounds_;
  std::vector<std::thread> threads_;
  std::atomic<int> started_{0};
  std::atomic<bool> quit_{false};
};

}  // namespace panicstop::testing
