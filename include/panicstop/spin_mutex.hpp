// panicstop::SpinMutex — a spin mutex (FreeBSD's MTX_SPIN).
//
// Taking it enters a spinlock section: every asynchronous signal is blocked in
// the holding thread until its last SpinMutex is released (the analogue of
// disabling interrupts). Only fault signals and the panic's hard-stop signal
// still get through, so a panic can always stop the holder. Spin mutexes nest
// (each holds the section open); kRecursive allows the owner to re-lock.
// Contenders never sleep: keep critical sections short and never block while
// holding one.
//
// The section costs two rt_sigprocmask system calls per outermost lock/unlock
// pair; that is the price of "nothing interrupts the holder" in a process. Use
// Mutex unless a signal handler or the crash path must be excluded.
//
// After a panic the bypass rules of Mutex apply, including on unlock: a faked
// acquisition is never released into the lock word.
#pragma once

#include "panicstop/lock_object.hpp"
#include "panicstop/thread.hpp"
#include "panicstop/thread_annotations.hpp"
#include "panicstop/witness.hpp"

namespace panicstop {

namespace detail {
void spinlock_enter() noexcept;
void spinlock_exit() noexcept;
}  // namespace detail

class PANICSTOP_CAPABILITY("mutex") SpinMutex {
 public:
  explicit constexpr SpinMutex(const char* name, LockOption options = kNoOptions) noexcept
      : lo_(name, detail::LockKind::kSpinMutex, options) {}
  ~SpinMutex();
  SpinMutex(const SpinMutex&) = delete;
  SpinMutex& operator=(const SpinMutex&) = delete;

  // Enters a spinlock section, then spins until the lock is taken.
  PANICSTOP_WITNESS_INLINE void lock() noexcept PANICSTOP_ACQUIRE() {
    PANICSTOP_WITNESS_HOOK(witness_lock(&lo_, 0));
    detail::spinlock_enter();
    uintptr_t self = reinterpret_cast<uintptr_t>(detail::current_slot());
    uintptr_t seen = 0;
    if (__builtin_expect(
            lo_.word.compare_exchange_strong(seen, self, std::memory_order_acquire, std::memory_order_relaxed), 1))
      return;
    lock_hard(self, seen);
  }
  // On success the caller is in a spinlock section until unlock(); on failure
  // it is not.
  bool try_lock() noexcept PANICSTOP_TRY_ACQUIRE(true);
  // Releases the lock, then leaves the spinlock section.
  PANICSTOP_WITNESS_INLINE void unlock() noexcept PANICSTOP_RELEASE() {
    PANICSTOP_WITNESS_HOOK(witness_unlock(&lo_, 0));
    uintptr_t self = reinterpret_cast<uintptr_t>(detail::current_slot());
    uintptr_t expected = self;
    if (__builtin_expect(
            lo_.word.compare_exchange_strong(expected, 0, std::memory_order_release, std::memory_order_relaxed), 1)) {
      detail::spinlock_exit();
      return;
    }
    unlock_hard(self);
  }

  bool owned() const noexcept {
    uintptr_t self = reinterpret_cast<uintptr_t>(detail::tls_slot);
    return self != 0 && (lo_.word.load(std::memory_order_relaxed) & ~detail::kLockFlagMask) == self;
  }
  void assert_held() const noexcept PANICSTOP_ASSERT_CAPABILITY(this);
  void assert_not_held() const noexcept;
  const char* name() const noexcept { return lo_.name; }
  const detail::LockObject& lock_object() const noexcept { return lo_; }

 private:
  void lock_hard(uintptr_t self, uintptr_t seen) noexcept;
  void unlock_hard(uintptr_t self) noexcept;

  detail::LockObject lo_;
};

}  // namespace panicstop
