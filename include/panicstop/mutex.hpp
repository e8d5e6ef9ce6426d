// panicstop::Mutex — a sleep mutex (FreeBSD's MTX_DEF).
//
// The lock word holds the owner's identity (its thread slot) and two flags:
// contested (a thread sleeps on the lock) and recursed. Lock and unlock are one
// compare-and-swap each, inline; everything rare — recursion, contention,
// misuse, the stopped-scheduler bypass — lives in the out-of-line hard path
// (src/lock/mutex.cpp), as in FreeBSD's mutex.h and kern_mutex.c.
//
// Contention: one contender at a time spins while the owner looks runnable
// (it is not parked in a panicstop wait) and no other thread sleeps on the
// lock, reading the lock word about every 0.7 us for at most about 7 us; it
// and the others then sleep on a word of their own, queued under the lock's
// address (src/lock/park.hpp). There is no FIFO order; a released lock goes
// to whoever takes it first.
// An unlock wakes at most one sleeper, and no further one until that one has
// run (abseil's "designated waker"), so the unlocks meanwhile make no system
// call and, since the contested bit leaves the word with the wake, take the
// one-CAS fast path. Once unlock has released the word it no longer touches
// the Mutex, so the next owner may destroy it at once.
//
// After a panic (scheduler_stopped() on the calling thread) lock, try_lock and
// unlock never block and never write the lock word of a lock someone else owns,
// so the dump shows the real owner.
//
// Usable with std::lock_guard, std::unique_lock, std::scoped_lock, and with
// panicstop::CondVar. sizeof(Mutex) is 32 bytes (std::mutex: 40).
#pragma once

#include <chrono>

#include "panicstop/deadline.hpp"
#include "panicstop/lock_object.hpp"
#include "panicstop/thread.hpp"
#include "panicstop/thread_annotations.hpp"
#include "panicstop/witness.hpp"

namespace panicstop {

class PANICSTOP_CAPABILITY("mutex") PANICSTOP_EXPORT Mutex {
 public:
  // `name` must outlive the lock (normally a string literal). Locks with the
  // same name form one class for WITNESS and profiling. Options: kRecursive,
  // kDupOk, kNoWitness, kNoProfile.
  explicit constexpr Mutex(const char* name, LockOption options = kNoOptions) noexcept
      : lo_(name, detail::LockKind::kMutex, options) {}
  // Destroying a lock that any thread holds is a misuse and panics.
  ~Mutex();
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  // Blocks until the calling thread owns the lock. Locking a lock the caller
  // already holds panics unless it was made kRecursive.
  PANICSTOP_WITNESS_INLINE void lock() noexcept PANICSTOP_ACQUIRE() {
    PANICSTOP_WITNESS_HOOK(witness_lock(&lo_, 0));
    uintptr_t self = reinterpret_cast<uintptr_t>(detail::current_slot());
    uintptr_t seen = 0;
    if (__builtin_expect(
            lo_.word.compare_exchange_strong(seen, self, std::memory_order_acquire, std::memory_order_relaxed), 1))
      return;
    (void)lock_hard(self, seen, detail::kNoDeadline);
  }

  // Takes the lock if it is free (or recursively, if kRecursive and owned by
  // the caller) and returns true; otherwise returns false at once.
  PANICSTOP_WITNESS_INLINE bool try_lock() noexcept PANICSTOP_TRY_ACQUIRE(true) {
    uintptr_t self = reinterpret_cast<uintptr_t>(detail::current_slot());
    uintptr_t seen = 0;
    if (__builtin_expect(
            lo_.word.compare_exchange_strong(seen, self, std::memory_order_acquire, std::memory_order_relaxed), 1)) {
      PANICSTOP_WITNESS_HOOK(witness_trylock(&lo_, 0));
      return true;
    }
    bool taken = try_lock_hard(self, seen);
    if (taken) PANICSTOP_WITNESS_HOOK(witness_trylock(&lo_, 0));
    return taken;
  }

  // Like lock(), but gives up and returns false once the deadline passes
  // (std::timed_mutex's contract): any clock's time point, or a duration from
  // now, converted once to a monotonic deadline. A deadline already passed
  // still makes one attempt. Blocking like lock() for WITNESS (it can wait, so
  // it takes part in the lock order). After a panic it behaves as lock().
  template <class Clock, class Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& deadline) noexcept PANICSTOP_TRY_ACQUIRE(true) {
    return lock_timed(detail::deadline_at(deadline));
  }
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout) noexcept PANICSTOP_TRY_ACQUIRE(true) {
    return lock_timed(detail::deadline_after(timeout));
  }

  // Releases one level of ownership. Unlocking a lock the caller does not own
  // panics.
  PANICSTOP_WITNESS_INLINE void unlock() noexcept PANICSTOP_RELEASE() {
    PANICSTOP_WITNESS_HOOK(witness_unlock(&lo_, 0));
    uintptr_t self = reinterpret_cast<uintptr_t>(detail::current_slot());
    uintptr_t expected = self;
    if (__builtin_expect(
            lo_.word.compare_exchange_strong(expected, 0, std::memory_order_release, std::memory_order_relaxed), 1))
      return;
    unlock_hard(self);
  }

  // True if the calling thread owns the lock.
  bool owned() const noexcept {
    uintptr_t self = reinterpret_cast<uintptr_t>(detail::tls_slot);
    return self != 0 && (lo_.word.load(std::memory_order_relaxed) & ~detail::kLockFlagMask) == self;
  }
  // Panics unless the calling thread owns the lock (or the scheduler is stopped).
  void assert_held() const noexcept PANICSTOP_ASSERT_CAPABILITY(this);
  // Panics if the calling thread owns the lock.
  void assert_not_held() const noexcept;
  const char* name() const noexcept { return lo_.name; }

  // For dumps, WITNESS and tests: the lock as every lock kind presents itself.
  const detail::LockObject& lock_object() const noexcept { return lo_; }

 private:
  PANICSTOP_WITNESS_INLINE bool lock_timed(int64_t deadline_ns) noexcept {
    PANICSTOP_WITNESS_HOOK(witness_lock(&lo_, 0));
    uintptr_t self = reinterpret_cast<uintptr_t>(detail::current_slot());
    uintptr_t seen = 0;
    if (__builtin_expect(
            lo_.word.compare_exchange_strong(seen, self, std::memory_order_acquire, std::memory_order_relaxed), 1))
      return true;
    bool taken = lock_hard(self, seen, deadline_ns);
    if (!taken) PANICSTOP_WITNESS_HOOK(witness_lock_failed(&lo_));
    return taken;
  }
  // deadline_ns: an absolute CLOCK_MONOTONIC time, or kNoDeadline. Returns
  // false only when the deadline passed first.
  bool lock_hard(uintptr_t self, uintptr_t seen, int64_t deadline_ns) noexcept;
  bool try_lock_hard(uintptr_t self, uintptr_t seen) noexcept;
  void unlock_hard(uintptr_t self) noexcept;

  detail::LockObject lo_;
  // Threads in the hard path's sleep loop (never touched by the fast paths). A
  // thread that takes the lock after sleeping marks it contested only while
  // others are still in that loop, so the last sleeper's unlock wakes
  // nobody.
  std::atomic<uint32_t> sleepers_{0};
  // Set while a contender spins on the lock (lock/wait.hpp, SpinTurn): the
  // others sleep without spinning. In what was padding: sizeof is unchanged.
  std::atomic<uint8_t> spinner_{0};
};

}  // namespace panicstop
