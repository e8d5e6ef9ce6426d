// panicstop::SxLock — a shared/exclusive lock that may be held while blocking
// (FreeBSD's sx(9)).
//
// SxLock is RwLock's mechanism (include/panicstop/rwlock.hpp: the word layout,
// the writer-preference fairness policy, the fast paths, the stopped-scheduler
// bypass and its residual case all apply unchanged) plus timed acquisition.
// Where an RwLock holder should never block, an SxLock holder may sleep, wait
// on a CondVar, or do I/O: contenders simply park meanwhile.
//
// Timed waits take std::chrono durations and time points of any clock
// (steady_clock and system_clock included). A deadline already passed still
// makes one attempt. A time point of a clock other than steady_clock is turned
// into a monotonic deadline once, at the call. The last waiting writer to
// time out drops the lock's reservation for writers and wakes the readers it
// held back.
//
// After a panic (scheduler_stopped()) the timed calls behave like lock() and
// lock_shared(): they return true at once, faking the acquisition where the
// untimed call would.
#pragma once

#include <chrono>

#include "panicstop/deadline.hpp"
#include "panicstop/rwlock.hpp"

namespace panicstop {

class PANICSTOP_CAPABILITY("sx lock") PANICSTOP_EXPORT SxLock : public detail::SharedLockBase {
 public:
  // `name` must outlive the lock (normally a string literal). Options:
  // kRecursive (exclusive side only), kDupOk, kNoWitness, kNoProfile.
  explicit constexpr SxLock(const char* name, LockOption options = kNoOptions) noexcept
      : SharedLockBase(name, detail::LockKind::kSxLock, options) {}

  // Like lock(), but gives up and returns false once the deadline passes.
  template <class Clock, class Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& deadline) noexcept PANICSTOP_TRY_ACQUIRE(true) {
    return acquire(detail::deadline_at(deadline));
  }
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout) noexcept PANICSTOP_TRY_ACQUIRE(true) {
    return acquire(detail::deadline_after(timeout));
  }

  // Like lock_shared(), but gives up and returns false once the deadline passes.
  template <class Clock, class Duration>
  bool try_lock_shared_until(const std::chrono::time_point<Clock, Duration>& deadline) noexcept
      PANICSTOP_TRY_ACQUIRE_SHARED(true) {
    PANICSTOP_WITNESS_HOOK(witness_lock(&lo_, detail::kWitnessShared));
    bool taken = __builtin_expect(take_shared_fast(), 1) || lock_shared_hard(detail::deadline_at(deadline));
    if (!taken) PANICSTOP_WITNESS_HOOK(witness_lock_failed(&lo_));
    return taken;
  }
  template <class Rep, class Period>
  bool try_lock_shared_for(const std::chrono::duration<Rep, Period>& timeout) noexcept
      PANICSTOP_TRY_ACQUIRE_SHARED(true) {
    PANICSTOP_WITNESS_HOOK(witness_lock(&lo_, detail::kWitnessShared));
    bool taken = __builtin_expect(take_shared_fast(), 1) || lock_shared_hard(detail::deadline_after(timeout));
    if (!taken) PANICSTOP_WITNESS_HOOK(witness_lock_failed(&lo_));
    return taken;
  }
};

}  // namespace panicstop
