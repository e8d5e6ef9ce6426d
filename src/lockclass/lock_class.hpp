// The lock-class layer: what WITNESS and lock profiling both build on, so
// that neither needs the other. Lock classes: locks grouped by name and kind
// (or one class per lock with kOwnClass), numbered 1..kMaxLockClasses-1 and
// cached in LockObject::class_index on first use. The table is static; nothing
// allocates. Sites and the hooks between the two users: site.hpp, hold_hooks.hpp.
#pragma once

#include <atomic>
#include <cstdint>

#include "panicstop/lock_object.hpp"
#include "thread/slot.hpp"

namespace panicstop::detail {

inline constexpr uint16_t kMaxLockClasses = 1024;
// Returned once the table is full: such locks are tracked as held but take no
// part in order checks or profiling.
inline constexpr uint16_t kUntrackedClass = 0xffff;

struct LockClass {
  const char* name;
  LockKind kind;
  uint8_t options;          // of the first lock seen in the class
  const LockObject* own;    // kOwnClass: the lock; otherwise nullptr
};

// Assigns lo's class (the slow half of lock_class_of).
uint16_t assign_lock_class(const LockObject* lo) noexcept;

// The class of lo, assigned on first call. Never blocks: if the class table's
// lock is held by this same thread (a signal handler interrupted the
// assignment) returns kUntrackedClass without caching it.
inline uint16_t lock_class_of(const LockObject* lo) noexcept {
  // class_index is a plain field of the lock: every thread that races to fill
  // it writes the same value, through atomic builtins so the race is defined.
  uint16_t idx = __atomic_load_n(&lo->class_index, __ATOMIC_ACQUIRE);
  return __builtin_expect(idx != 0, 1) ? idx : assign_lock_class(lo);
}
// Valid for 1 <= index < lock_class_count().
const LockClass& lock_class(uint16_t index) noexcept;
uint16_t lock_class_count() noexcept;
inline const char* lock_class_name(uint16_t index) noexcept {
  return index == kUntrackedClass || index == 0 ? "?" : lock_class(index).name;
}

// A tiny spin lock for witness and profiling tables. A waiter spins briefly,
// then yields and naps (at most 1 ms at a time), so that a holder that is
// not running gets the CPU back; it never sleeps on anything a release must
// wake, so it is safe in signal handlers and on the crash path. It records
// its owner's slot, so that try_acquire() returns false instead of waiting
// for good where the owner will never let go; callers then skip their
// bookkeeping:
//   - a signal handler that re-enters on the owner's own thread;
//   - a thread whose scheduler is stopped (a panic, kdb: the owner is stopped
//     too), once a short spin has not seen the lock free.
// An owner that is gone, a thread of the parent of a fork() (its slot is
// retired in the child), loses the lock to the next taker; a table it was
// updating keeps the half-made entry, which costs the child at most an order
// check or a profile row.
class InternalSpinLock {
 public:
  bool try_acquire() noexcept;  // waits while another thread holds it, but see above
  void release() noexcept { owner_.store(0, std::memory_order_release); }

 private:
  std::atomic<uintptr_t> owner_{0};
};

}  // namespace panicstop::detail
