#include "panicstop/spin_mutex.hpp"

#include "panicstop/lockprof.hpp"
#include "thread/signal_sections.hpp"

namespace panicstop {

using detail::kLockFlagMask;
using detail::kLockRecursed;

SpinMutex::~SpinMutex() {
  PANICSTOP_WITNESS_HOOK(witness_destroy(&lo_));
  if (__builtin_expect(lo_.word.load(std::memory_order_relaxed) != 0, 0) && !scheduler_stopped())
    detail::lock_misuse(&lo_, "destroyed while held");
}

void SpinMutex::lock_hard(uintptr_t self, uintptr_t seen) noexcept {
  if (__builtin_expect(scheduler_stopped(), 0)) return;  // faked; the section stays entered
  if ((seen & ~kLockFlagMask) == self) {
    if ((lo_.options & kRecursive) == 0) detail::lock_misuse(&lo_, "recursed on a non-recursive lock");
    ++lo_.recurse;
    lo_.word.fetch_or(kLockRecursed, std::memory_order_relaxed);
    return;
  }
  const int64_t prof_start = detail::lockprof_active() ? detail::lockprof_ticks() : 0;
  const void* const caller = __builtin_return_address(0);
  // Test-and-test-and-set: spin on plain loads so the cache line stays shared
  // until it looks free.
  for (;;) {
    uintptr_t w = lo_.word.load(std::memory_order_relaxed);
    if (w == 0 && lo_.word.compare_exchange_weak(w, self, std::memory_order_acquire, std::memory_order_relaxed)) {
      if (prof_start != 0) detail::lockprof_contested(&lo_, prof_start, caller);
      return;
    }
    if (__builtin_expect(scheduler_stopped(), 0)) return;
    detail::cpu_relax();
  }
}

bool SpinMutex::try_lock() noexcept {
  enter_section();
  uintptr_t self = reinterpret_cast<uintptr_t>(detail::current_slot());
  uintptr_t seen = 0;
  if (lo_.word.compare_exchange_strong(seen, self, std::memory_order_acquire, std::memory_order_relaxed)) {
    PANICSTOP_WITNESS_HOOK(witness_trylock_from(&lo_, 0, __builtin_return_address(0)));
    return true;
  }
  if (__builtin_expect(scheduler_stopped(), 0)) return true;  // faked
  if ((seen & ~kLockFlagMask) == self && (lo_.options & kRecursive) != 0) {
    ++lo_.recurse;
    lo_.word.fetch_or(kLockRecursed, std::memory_order_relaxed);
    PANICSTOP_WITNESS_HOOK(witness_trylock_from(&lo_, 0, __builtin_return_address(0)));
    return true;
  }
  exit_section();
  return false;
}

void SpinMutex::unlock_hard(uintptr_t self) noexcept {
  uintptr_t w = lo_.word.load(std::memory_order_relaxed);
  if ((w & ~kLockFlagMask) != self) {
    if (__builtin_expect(scheduler_stopped(), 0)) {
      exit_section();  // the faked acquisition entered the section; leave it
      return;
    }
    detail::lock_misuse(&lo_, w == 0 ? "unlocked while not locked" : "unlocked by a thread that does not own it");
  }
  if ((w & kLockRecursed) != 0) {
    if (--lo_.recurse == 0) lo_.word.fetch_and(~kLockRecursed, std::memory_order_relaxed);
  } else {
    lo_.word.store(0, std::memory_order_release);
  }
  exit_section();
}

void SpinMutex::assert_held() const noexcept {
  if (!owned() && !scheduler_stopped()) detail::lock_misuse(&lo_, "assert_held failed: not owned by this thread");
}

void SpinMutex::assert_not_held() const noexcept {
  if (owned() && !scheduler_stopped()) detail::lock_misuse(&lo_, "assert_not_held failed: owned by this thread");
}

}  // namespace panicstop
