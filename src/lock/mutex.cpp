// Mutex hard paths. Every rare case lives here so the inline fast paths stay
// one CAS each. Order of checks follows kern_mutex.c after the 2011 review: the
// stopped-scheduler test comes first and skips everything else, including the
// misuse checks, because after a panic the lock state no longer means anything
// to the panicking thread.
#include "panicstop/mutex.hpp"

#include "lock/wait.hpp"
#include "panicstop/lockprof.hpp"
#include "sys/syscall.hpp"

namespace panicstop {

using detail::kLockContested;
using detail::kLockFlagMask;
using detail::kLockRecursed;

namespace {
inline uintptr_t owner_of(uintptr_t word) noexcept { return word & ~kLockFlagMask; }
}  // namespace

Mutex::~Mutex() {
  PANICSTOP_WITNESS_HOOK(witness_destroy(&lo_));
  uintptr_t w = lo_.word.load(std::memory_order_relaxed);
  if (__builtin_expect(w != 0, 0) && !scheduler_stopped()) detail::lock_misuse(&lo_, "destroyed while held");
}

bool Mutex::lock_hard(uintptr_t self, uintptr_t seen, int64_t deadline_ns) noexcept {
  if (__builtin_expect(scheduler_stopped(), 0)) return true;  // faked: the word is left alone
  if (owner_of(seen) == self) {
    if ((lo_.options & kRecursive) == 0) detail::lock_misuse(&lo_, "recursed on a non-recursive lock");
    ++lo_.recurse;
    lo_.word.fetch_or(kLockRecursed, std::memory_order_relaxed);
    return true;
  }
  // Lock profiling measures the wait here only, never on the fast path.
  const int64_t prof_start = detail::lockprof_active() ? detail::lockprof_ticks() : 0;
  const void* const caller = __builtin_return_address(0);

  // Adaptive spin: worth it only while the owner is running its critical section.
  for (int round = 0; round < detail::kAdaptiveSpinRounds; ++round) {
    uintptr_t w = lo_.word.load(std::memory_order_relaxed);
    if (w == 0) {
      if (lo_.word.compare_exchange_weak(w, self, std::memory_order_acquire, std::memory_order_relaxed)) {
        if (prof_start != 0) detail::lockprof_contested(&lo_, prof_start, caller);
        return true;
      }
      continue;
    }
    if ((w & kLockContested) != 0 || !detail::owner_looks_runnable(w)) break;
    detail::cpu_relax();
  }

  // Sleep. A thread that takes the lock after sleeping sets the contested bit
  // itself while others are still in this loop: they may be asleep, and the
  // next unlock must wake one. A thread that arrives later sets the bit on the
  // word before it sleeps, so deciding from the count never loses a wake-up.
  PANICSTOP_WITNESS_HOOK(witness_sleep(&lo_, "sleep on a contested mutex"));
  detail::WaitRecord wait(&lo_, detail::WaitMode::kExclusive);
  sleepers_.fetch_add(1, std::memory_order_relaxed);
  for (;;) {
    uintptr_t w = lo_.word.load(std::memory_order_relaxed);
    if (w == 0) {
      uintptr_t mine = sleepers_.load(std::memory_order_relaxed) > 1 ? (self | kLockContested) : self;
      if (lo_.word.compare_exchange_weak(w, mine, std::memory_order_acquire, std::memory_order_relaxed)) {
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
        if (prof_start != 0) detail::lockprof_contested(&lo_, prof_start, caller);
        return true;
      }
      continue;
    }
    if (deadline_ns != detail::kNoDeadline && detail::steady_now_ns() >= deadline_ns) {
      // Giving up. An unlock's wake may have picked this thread just now; if
      // others still sleep, pass one wake on so that it is not lost with us.
      if (sleepers_.fetch_sub(1, std::memory_order_relaxed) > 1)
        sys::futex_wake(detail::futex_address(lo_.word), 1);
      return false;
    }
    if ((w & kLockContested) == 0) {
      if (!lo_.word.compare_exchange_weak(w, w | kLockContested, std::memory_order_relaxed,
                                          std::memory_order_relaxed))
        continue;
      w |= kLockContested;
    }
    wait.sleep(detail::futex_address(lo_.word), detail::futex_value(w), deadline_ns);
  }
}

bool Mutex::try_lock_hard(uintptr_t self, uintptr_t seen) noexcept {
  if (__builtin_expect(scheduler_stopped(), 0)) return true;  // faked
  if (owner_of(seen) == self) {
    if ((lo_.options & kRecursive) == 0) detail::lock_misuse(&lo_, "try_lock by its owner on a non-recursive lock");
    ++lo_.recurse;
    lo_.word.fetch_or(kLockRecursed, std::memory_order_relaxed);
    return true;
  }
  return false;
}

void Mutex::unlock_hard(uintptr_t self) noexcept {
  uintptr_t w = lo_.word.load(std::memory_order_relaxed);
  if (owner_of(w) != self) {
    // A faked acquisition by the panicking thread: nothing was written, so
    // nothing is released.
    if (__builtin_expect(scheduler_stopped(), 0)) return;
    detail::lock_misuse(&lo_, w == 0 ? "unlocked while not locked" : "unlocked by a thread that does not own it");
  }
  if ((w & kLockRecursed) != 0) {
    if (--lo_.recurse == 0) lo_.word.fetch_and(~kLockRecursed, std::memory_order_relaxed);
    return;
  }
  uintptr_t old = lo_.word.exchange(0, std::memory_order_release);
  if ((old & kLockContested) != 0) sys::futex_wake(detail::futex_address(lo_.word), 1);
}

void Mutex::assert_held() const noexcept {
  if (!owned() && !scheduler_stopped()) detail::lock_misuse(&lo_, "assert_held failed: not owned by this thread");
}

void Mutex::assert_not_held() const noexcept {
  if (owned() && !scheduler_stopped()) detail::lock_misuse(&lo_, "assert_not_held failed: owned by this thread");
}

}  // namespace panicstop
