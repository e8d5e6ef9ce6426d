#include "lockclass/lock_class.hpp"

#include "panicstop/thread.hpp"
#include "sys/syscall.hpp"
#include "thread/slot.hpp"

namespace panicstop::detail {

namespace {

constexpr uint32_t kHashSlots = 2048;  // power of two, twice kMaxLockClasses
static_assert(kHashSlots >= 2 * kMaxLockClasses);

InternalSpinLock g_class_lock;
LockClass g_classes[kMaxLockClasses];
std::atomic<uint16_t> g_class_count{1};  // index 0 means "unassigned"
uint16_t g_hash[kHashSlots];             // class indices; 0 = empty. Under g_class_lock.

uint32_t hash_key(const LockObject* lo) noexcept {
  uint64_t h = 1469598103934665603ull ^ uint64_t(lo->kind);
  if ((lo->options & kOwnClass) != 0) {
    h ^= reinterpret_cast<uintptr_t>(lo);
    h *= 1099511628211ull;
  } else {
    for (const char* p = lo->name; p != nullptr && *p != '\0'; ++p) h = (h ^ uint8_t(*p)) * 1099511628211ull;
  }
  return uint32_t(h ^ (h >> 29));
}

bool same_name(const char* a, const char* b) noexcept {
  if (a == b) return true;
  if (a == nullptr || b == nullptr) return false;
  while (*a != '\0' && *a == *b) ++a, ++b;
  return *a == *b;
}

bool matches(const LockClass& c, const LockObject* lo) noexcept {
  if (c.kind != lo->kind) return false;
  if ((lo->options & kOwnClass) != 0) return c.own == lo;
  return c.own == nullptr && same_name(c.name, lo->name);
}

uint16_t find_or_add(const LockObject* lo) noexcept {
  for (uint32_t i = hash_key(lo) & (kHashSlots - 1);; i = (i + 1) & (kHashSlots - 1)) {
    uint16_t idx = g_hash[i];
    if (idx == 0) {
      uint16_t n = g_class_count.load(std::memory_order_relaxed);
      if (n >= kMaxLockClasses) return kUntrackedClass;
      g_classes[n] = LockClass{lo->name != nullptr ? lo->name : "(unnamed)", lo->kind, lo->options,
                               (lo->options & kOwnClass) != 0 ? lo : nullptr};
      g_hash[i] = n;
      g_class_count.store(uint16_t(n + 1), std::memory_order_release);
      return n;
    }
    if (matches(g_classes[idx], lo)) return idx;
  }
}

}  // namespace

bool InternalSpinLock::try_acquire() noexcept {
  // The spin a thread whose scheduler is stopped allows (0.1 ms where a pause
  // takes 20 ns): a holder that failed to stop may still let go; a stopped
  // one never does.
  constexpr int kStoppedSpins = 5000;
  // Otherwise a waiter spins only as long as a holder that is running needs
  // (the tables are updated a few microseconds at a time), then gives its CPU
  // up: a few yields, then naps that double up to a millisecond. A holder
  // that is not running, preempted or blocked, lets go only once it runs
  // again, and waiters that kept spinning kept it off the CPU: 15 of them on
  // 2 CPUs, at the first lock of a new Mutex, kept the holder, asleep inside
  // ThreadSanitizer's periodic reset that itself needed a CPU, from letting
  // go for over a minute.
  constexpr int kSpins = 100;
  constexpr int kYields = 10;
  constexpr int64_t kFirstNapNs = 10'000;
  constexpr int64_t kLongestNapNs = 1'000'000;
  uintptr_t self = reinterpret_cast<uintptr_t>(current_slot());
  int64_t nap_ns = kFirstNapNs;
  for (int attempt = 0;; ++attempt) {
    uintptr_t seen = 0;
    if (owner_.compare_exchange_weak(seen, self, std::memory_order_acquire, std::memory_order_relaxed)) return true;
    if (seen == self) return false;  // re-entered from a signal handler on this thread
    if (seen != 0 && slot_retired(reinterpret_cast<const ThreadSlot*>(seen)) &&
        owner_.compare_exchange_strong(seen, self, std::memory_order_acquire, std::memory_order_relaxed))
      return true;
    if (scheduler_stopped()) {
      if (attempt >= kStoppedSpins) return false;
      cpu_relax();
    } else if (attempt < kSpins) {
      cpu_relax();
    } else if (attempt < kSpins + kYields) {
      sys::sched_yield();
    } else {
      sys::sleep_ns(nap_ns);
      nap_ns = nap_ns * 2 < kLongestNapNs ? nap_ns * 2 : kLongestNapNs;
    }
  }
}

uint16_t assign_lock_class(const LockObject* lo) noexcept {
  if (!g_class_lock.try_acquire()) return kUntrackedClass;
  uint16_t idx = find_or_add(lo);
  g_class_lock.release();
  __atomic_store_n(&const_cast<LockObject*>(lo)->class_index, idx, __ATOMIC_RELEASE);
  return idx;
}

const LockClass& lock_class(uint16_t index) noexcept { return g_classes[index]; }
uint16_t lock_class_count() noexcept { return g_class_count.load(std::memory_order_acquire); }

}  // namespace panicstop::detail
