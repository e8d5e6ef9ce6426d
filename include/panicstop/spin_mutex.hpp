// panicstop::SpinMutex — a spin mutex (FreeBSD's MTX_SPIN).
//
// Taking it enters a spinlock section (the analogue of disabling interrupts),
// which lasts until the thread's last SpinMutex is released. Spin mutexes nest
// (each holds the section open); kRecursive allows the owner to re-lock.
// Contenders never sleep: keep critical sections short and never block while
// holding one.
//
// What a spinlock section guarantees:
//   - Nothing panicstop sends for kdb or a live dump (the soft stop, a kdb
//     request) runs in the holder while it is inside: the signal's handler
//     notes it and returns at once, and the thread acts on it right after its
//     outermost unlock: it stops there, with its registers saved outside the
//     section and every SpinMutex it held released. A thread that stays
//     inside (spins forever) is reported by the stop as not stopped once the
//     stop's deadline passes, as a thread blocking the signal would be; it is
//     never waited for past the deadline.
//   - The panic's hard stop (its NMI) and synchronous faults still get through
//     at once: a panic can always stop the holder, and a fault inside the
//     section panics inside it.
//   - The program's own asynchronous signal handlers (SIGUSR1, SIGALRM, a
//     SIGTERM handler, ...) MAY run inside the section. The section costs no
//     system call because it does not touch the signal mask; holding those
//     handlers off would need the mask. A handler that takes a SpinMutex
//     held by the code it interrupted gets no exclusion from that code: a
//     non-recursive lock ends in a panic for recursion misuse, a kRecursive
//     one lets it in. For a lock that such a handler takes,
//     construct it with kBlockSignals: then its sections also block every
//     asynchronous signal but the hard stop and the faults, at the old price
//     of two rt_sigprocmask system calls per lock/unlock pair, and a signal
//     sent meanwhile arrives after the unlock.
//
// Uncontended, the section is a thread-local counter and two compiler
// barriers, so a SpinMutex costs about what a Mutex does (docs/BENCHMARKS.md).
// Still, use Mutex unless kdb and live dumps must not stop the holder.
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
// The kBlockSignals form of the section (src/thread/signal_sections.hpp).
PANICSTOP_EXPORT void blocking_section_enter() noexcept;
PANICSTOP_EXPORT void blocking_section_exit() noexcept;
}  // namespace detail

class PANICSTOP_CAPABILITY("mutex") PANICSTOP_EXPORT SpinMutex {
 public:
  explicit constexpr SpinMutex(const char* name, LockOption options = kNoOptions) noexcept
      : lo_(name, detail::LockKind::kSpinMutex, options) {}
  ~SpinMutex();
  SpinMutex(const SpinMutex&) = delete;
  SpinMutex& operator=(const SpinMutex&) = delete;

  // Enters a spinlock section, then spins until the lock is taken.
  PANICSTOP_WITNESS_INLINE void lock() noexcept PANICSTOP_ACQUIRE() {
    PANICSTOP_WITNESS_HOOK(witness_lock(&lo_, 0));
    enter_section();
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
      exit_section();
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
  void enter_section() noexcept {
    detail::spinlock_enter();
    if (__builtin_expect((lo_.options & kBlockSignals) != 0, 0)) detail::blocking_section_enter();
  }
  // The count drops before the mask opens: what the mask held back (a soft
  // stop among it) then arrives outside the section and acts at once.
  void exit_section() noexcept {
    detail::spinlock_exit();
    if (__builtin_expect((lo_.options & kBlockSignals) != 0, 0)) detail::blocking_section_exit();
  }
  void lock_hard(uintptr_t self, uintptr_t seen) noexcept;
  void unlock_hard(uintptr_t self) noexcept;

  detail::LockObject lo_;
};

}  // namespace panicstop
