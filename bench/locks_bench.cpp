// panicstop's locks side by side with their peers, in one run on one machine.
//
//   uncontended/LOCK              one thread, lock+unlock of a lock nobody else
//                                 touches (CPU time per pair).
//   uncontended_shared/LOCK       the same with lock_shared+unlock_shared.
//   contended/LOCK/threads:N      N threads take one lock in a loop. Inside:
//                                 increment a shared counter and mix a shared
//                                 word (a few multiply/xor-shift rounds).
//                                 Outside: the same amount of private work.
//                                 items_per_second = critical sections per
//                                 second, all threads together (wall time).
//   read_mostly/LOCK/threads:N    as contended, but 19 of every 20 sections are
//                                 shared (reader) sections that read the word.
//
// Both multi-threaded cases also report how long writers waited, next to the
// throughput: wwait_p99_us, wwait_p999_us and wwait_max_us, the 99th and
// 99.9th percentiles and the longest time from a writer calling lock() to its unlock() returning (the
// wait plus one short section), over all threads. read_mostly times every
// exclusive section, contended one in kContendedSampleEvery (two clock reads
// per section would cost more than the section).
//
// panicstop::SxLock shares RwLock's mechanism and is measured beside it.
// Peers: std::mutex, std::shared_mutex, absl::Mutex, and CasSpinLock (a bare
// test-and-test-and-set lock with pause: the floor, it never sleeps). The
// context block at the top of the output gives the sizes of the lock objects.
// docs/BENCHMARKS.md has the commands, the targets and the results.
#include <absl/synchronization/mutex.h>
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "panicstop/mutex.hpp"
#include "panicstop/spin_mutex.hpp"
#if __has_include("panicstop/rwlock.hpp")
#include "panicstop/rwlock.hpp"
#include "panicstop/sx_lock.hpp"
#define PANICSTOP_BENCH_HAVE_RWLOCK 1
#endif

namespace {

// The floor: one CAS to lock, a plain release store to unlock, spin on a read
// while someone holds it.
class CasSpinLock {
 public:
  void lock() noexcept {
    for (;;) {
      bool expected = false;
      if (word_.compare_exchange_weak(expected, true, std::memory_order_acquire, std::memory_order_relaxed)) return;
      while (word_.load(std::memory_order_relaxed)) panicstop::detail::cpu_relax();
    }
  }
  void unlock() noexcept { word_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> word_{false};
};

// absl::Mutex spelled the std way, so one template drives every lock.
class AbslMutex {
 public:
  void lock() noexcept { mu_.Lock(); }
  void unlock() noexcept { mu_.Unlock(); }
  void lock_shared() noexcept { mu_.ReaderLock(); }
  void unlock_shared() noexcept { mu_.ReaderUnlock(); }

 private:
  absl::Mutex mu_;
};

// panicstop locks take a name; the templates below default-construct.
struct NamedMutex : panicstop::Mutex {
  NamedMutex() : panicstop::Mutex("bench.mutex") {}
};
struct NamedSpinMutex : panicstop::SpinMutex {
  NamedSpinMutex() : panicstop::SpinMutex("bench.spin") {}
};
#ifdef PANICSTOP_BENCH_HAVE_RWLOCK
struct NamedRwLock : panicstop::RwLock {
  NamedRwLock() : panicstop::RwLock("bench.rwlock") {}
};
struct NamedSxLock : panicstop::SxLock {
  NamedSxLock() : panicstop::SxLock("bench.sx") {}
};
#endif

// The lock and the data it protects sit on separate cache lines, so no lock
// gains or loses from sharing a line with the data.
template <class Lock>
struct Arena {
  alignas(64) Lock lock;
  alignas(64) uint64_t count = 0;
  uint64_t word = 1;
};

template <class Lock>
Arena<Lock>& arena() {
  static Arena<Lock> a;
  return a;
}

// A few rounds of a non-linear mix (the compiler cannot fold them into one).
inline uint64_t mix(uint64_t x) noexcept {
  for (int i = 0; i < 4; ++i) {
    x ^= x >> 31;
    x *= 0x9e3779b97f4a7c15ull;
  }
  return x;
}

template <class Lock>
inline void exclusive_section(Arena<Lock>& a) noexcept {
  a.lock.lock();
  a.count += 1;
  a.word = mix(a.word + a.count);
  a.lock.unlock();
}

// Writer waits: a log-linear histogram per thread (no allocation while
// measuring, bounded memory), merged by the last thread to finish a run.
class WaitHistogram {
 public:
  static constexpr int kSubBits = 5;  // 32 buckets per power of two: ~3% resolution
  static constexpr int kBuckets = (64 - kSubBits + 1) << kSubBits;

  void clear() noexcept {
    counts_.fill(0);
    max_ns_ = 0;
    total_ = 0;
  }
  void add(uint64_t ns) noexcept {
    ++counts_[bucket(ns)];
    max_ns_ = std::max(max_ns_, ns);
    ++total_;
  }
  void merge(const WaitHistogram& other) noexcept {
    for (int i = 0; i < kBuckets; ++i) counts_[size_t(i)] += other.counts_[size_t(i)];
    max_ns_ = std::max(max_ns_, other.max_ns_);
    total_ += other.total_;
  }
  uint64_t max_ns() const noexcept { return max_ns_; }
  uint64_t total() const noexcept { return total_; }
  // The upper bound of the bucket that holds quantile q (never above the max).
  uint64_t quantile_ns(double q) const noexcept {
    const uint64_t rank = uint64_t(q * double(total_));
    uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts_[size_t(i)];
      if (seen > rank) return std::min(upper(i), max_ns_);
    }
    return max_ns_;
  }

 private:
  static int bucket(uint64_t ns) noexcept {
    if (ns < (uint64_t(1) << kSubBits)) return int(ns);
    const int top = 63 - __builtin_clzll(ns);  // >= kSubBits
    const int shift = top - kSubBits;
    return ((shift + 1) << kSubBits) + int((ns >> shift) & ((uint64_t(1) << kSubBits) - 1));
  }
  static uint64_t upper(int b) noexcept {
    if (b < (1 << kSubBits)) return uint64_t(b);
    const int shift = (b >> kSubBits) - 1;
    const uint64_t sub = uint64_t(b & ((1 << kSubBits) - 1)) | (uint64_t(1) << kSubBits);
    return ((sub + 1) << shift) - 1;
  }

  std::array<uint32_t, kBuckets> counts_{};
  uint64_t max_ns_ = 0;
  uint64_t total_ = 0;
};

constexpr int kMaxThreads = 64;

// One per benchmark function (Lock and case): the threads' histograms and the
// count of threads done with the current run.
template <class Lock, int kCase>
struct WaitRecorder {
  static WaitRecorder& get() {
    static WaitRecorder r;
    return r;
  }
  std::array<WaitHistogram, kMaxThreads> per_thread;
  std::atomic<int> done{0};

  // Called by every thread after its loop; the last one reports for all.
  void finish(benchmark::State& state) {
    if (done.fetch_add(1, std::memory_order_acq_rel) + 1 != state.threads()) return;
    WaitHistogram all;
    all.clear();
    for (int t = 0; t < state.threads(); ++t) all.merge(per_thread[size_t(t)]);
    done.store(0, std::memory_order_relaxed);
    if (all.total() == 0) return;
    // Counters of all threads are summed: only this thread sets them.
    state.counters["wwait_p99_us"] = double(all.quantile_ns(0.99)) / 1e3;
    state.counters["wwait_p999_us"] = double(all.quantile_ns(0.999)) / 1e3;
    state.counters["wwait_max_us"] = double(all.max_ns()) / 1e3;
  }
};

inline uint64_t now_ns() noexcept {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count());
}

template <class Lock>
inline void timed_exclusive_section(Arena<Lock>& a, WaitHistogram& waits) noexcept {
  const uint64_t start = now_ns();
  exclusive_section(a);
  waits.add(now_ns() - start);
}

template <class Lock>
void uncontended(benchmark::State& state) {
  Lock& lock = arena<Lock>().lock;
  for (auto _ : state) {
    lock.lock();
    lock.unlock();
  }
}

template <class Lock>
void uncontended_shared(benchmark::State& state) {
  Lock& lock = arena<Lock>().lock;
  for (auto _ : state) {
    lock.lock_shared();
    lock.unlock_shared();
  }
}

constexpr uint64_t kContendedSampleEvery = 16;

template <class Lock>
void contended(benchmark::State& state) {
  Arena<Lock>& a = arena<Lock>();
  auto& rec = WaitRecorder<Lock, 0>::get();
  WaitHistogram& waits = rec.per_thread[size_t(state.thread_index())];
  waits.clear();
  uint64_t local = uint64_t(state.thread_index()) + 1;
  uint64_t n = uint64_t(state.thread_index());
  for (auto _ : state) {
    if (++n % kContendedSampleEvery == 0)
      timed_exclusive_section(a, waits);
    else
      exclusive_section(a);
    local = mix(local);
    benchmark::DoNotOptimize(local);
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
  rec.finish(state);
}

// One exclusive section in every kWriteEvery; the rest are shared.
constexpr uint64_t kWriteEvery = 20;

template <class Lock>
void read_mostly(benchmark::State& state) {
  Arena<Lock>& a = arena<Lock>();
  auto& rec = WaitRecorder<Lock, 1>::get();
  WaitHistogram& waits = rec.per_thread[size_t(state.thread_index())];
  waits.clear();
  uint64_t local = uint64_t(state.thread_index()) + 1;
  uint64_t n = uint64_t(state.thread_index());
  for (auto _ : state) {
    if (++n % kWriteEvery == 0) {
      timed_exclusive_section(a, waits);
    } else {
      a.lock.lock_shared();
      local += mix(a.word ^ a.count);
      a.lock.unlock_shared();
    }
    local = mix(local);
    benchmark::DoNotOptimize(local);
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
  rec.finish(state);
}

void with_thread_counts(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 2, 4, 16, kMaxThreads}) b->Threads(threads);
  b->UseRealTime();
}

template <class Lock>
void register_exclusive(const std::string& name, bool with_contended = true) {
  benchmark::RegisterBenchmark(("uncontended/" + name).c_str(), &uncontended<Lock>);
  if (with_contended) benchmark::RegisterBenchmark(("contended/" + name).c_str(), &contended<Lock>)->Apply(with_thread_counts);
}

template <class Lock>
void register_shared(const std::string& name) {
  benchmark::RegisterBenchmark(("uncontended_shared/" + name).c_str(), &uncontended_shared<Lock>);
  benchmark::RegisterBenchmark(("read_mostly/" + name).c_str(), &read_mostly<Lock>)->Apply(with_thread_counts);
}

void add_size(const char* what, size_t size) { benchmark::AddCustomContext(std::string("sizeof ") + what, std::to_string(size)); }

}  // namespace

int main(int argc, char** argv) {
  // Debian builds abseil without NDEBUG, which turns on absl::Mutex's deadlock
  // detection (a graph update on every lock). Measure it as an NDEBUG build
  // ships it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  register_exclusive<NamedMutex>("panicstop::Mutex");
  // SpinMutex blocks signals around every outermost hold (two rt_sigprocmask
  // calls per pair, by design); its contended figures would measure the kernel.
  register_exclusive<NamedSpinMutex>("panicstop::SpinMutex", /*with_contended=*/false);
#ifdef PANICSTOP_BENCH_HAVE_RWLOCK
  register_exclusive<NamedRwLock>("panicstop::RwLock");
  register_exclusive<NamedSxLock>("panicstop::SxLock");
#endif
  register_exclusive<std::mutex>("std::mutex");
  register_exclusive<std::shared_mutex>("std::shared_mutex");
  register_exclusive<AbslMutex>("absl::Mutex");
  register_exclusive<CasSpinLock>("CasSpinLock");

#ifdef PANICSTOP_BENCH_HAVE_RWLOCK
  register_shared<NamedRwLock>("panicstop::RwLock");
  register_shared<NamedSxLock>("panicstop::SxLock");
#endif
  register_shared<std::shared_mutex>("std::shared_mutex");
  register_shared<AbslMutex>("absl::Mutex");

  add_size("panicstop::Mutex", sizeof(panicstop::Mutex));
  add_size("panicstop::SpinMutex", sizeof(panicstop::SpinMutex));
#ifdef PANICSTOP_BENCH_HAVE_RWLOCK
  add_size("panicstop::RwLock", sizeof(panicstop::RwLock));
  add_size("panicstop::SxLock", sizeof(panicstop::SxLock));
#endif
  add_size("std::mutex", sizeof(std::mutex));
  add_size("std::shared_mutex", sizeof(std::shared_mutex));
  add_size("absl::Mutex", sizeof(absl::Mutex));

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
