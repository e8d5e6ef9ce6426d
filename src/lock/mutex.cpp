// Mutex hard paths. Every rare case lives here so the inline fast paths stay
// one CAS each. Order of checks follows kern_mutex.c after the 2011 review: the
// stopped-scheduler test comes first and skips everything else, including the
// misuse checks, because after a panic the lock state no longer means anything
// to the panicking thread.
//
// Wake-up protocol. The lock word holds the owner and kLockContested (a
// thread may sleep: its owner's unlock must see to a wake-up); sleepers_
// counts the threads in the sleep loop. An unlock of a contested word wakes
// one sleeper and sets that lock's wake mark (wake_one_designated, park.hpp): until the woken thread
// has run and cleared it, unlocks of that lock wake no one (abseil's
// "designated waker"); the woken thread will either take the lock or mark it
// contested again before it sleeps. Every unlock of a contested word clears
// the contested bit, so the owners that follow take the one-CAS fast paths
// until a sleeper marks the word again. Before, every unlock of a contested
// lock made a futex call and woke a thread that mostly found the lock taken
// again by the time it ran (a convoy once threads outnumber CPUs).
//
// Sleepers park (lock/park.hpp) under the Mutex's address while the word is
// held and contested, whoever the owner is; they used to sleep on the lock
// word, and a futex wait on a word whose owner changes faster than a thread
// reaches the kernel mostly returned at once (docs/BENCHMARKS.md, "Mutex and
// RwLock: parking"). The park's check runs under the parking bucket's lock
// and an unlock looks for sleepers under that lock after releasing the word,
// so a sleeper that saw the word contested is found.
//
// Who clears a wake mark: a thread that returns from its park with a wake
// (it may not be the one meant; clearing early costs at most one extra wake
// later), and the unlocker itself when its wake found nobody asleep; it
// then passes one wake on, for a thread that went to sleep while the mark
// stood. A timed waiter that gives up passes a wake on likewise, since it may
// have been the woken one. So every sleeping thread is covered by one of: an
// owner whose word says contested while no wake is pending, a woken thread
// that has not run yet, or a wake sent after the mark was cleared. These
// steps are seq_cst, so that a thread that changes the word or the mark and
// then reads the other (or the count) sees every sleeper that saw the earlier
// state.
//
// The marks live outside the Mutex (park.cpp): once an unlock has released
// the word, the next owner may destroy the lock, so the unlock's remaining
// steps touch only the parking layer's tables, never the Mutex.
#include "panicstop/mutex.hpp"

#include "lock/park.hpp"
#include "panicstop/lockprof.hpp"

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

  // Adaptive spin (lock/wait.hpp): worth it only while the owner is running
  // its critical section, and only for one contender at a time; the others,
  // and this one once its turn is over, sleep. It spins again after each wake.
  // Not while threads sleep on the lock: then the lock is a queue, and the
  // spinner, whose turn will come after theirs, only takes the word's cache
  // line from the owner and a CPU that the owner's next sections could use.
  // Arrivals that sleep at once leave one thread running sections back to
  // back, as abseil's queue does (lock/wait.hpp).
  detail::SpinTurn turn(spinner_);
  detail::SpinBudget budget(turn.held() && sleepers_.load(std::memory_order_relaxed) == 0);
  for (int round = 0;; ++round) {
    uintptr_t w = round == 0 ? seen : lo_.word.load(std::memory_order_relaxed);
    if (w == 0) {
      if (lo_.word.compare_exchange_weak(w, self, std::memory_order_acquire, std::memory_order_relaxed)) {
        if (prof_start != 0) detail::lockprof_contested(&lo_, prof_start, caller);
        return true;
      }
      continue;
    }
    if (!detail::owner_looks_runnable(w) || sleepers_.load(std::memory_order_relaxed) != 0 || !budget.pause()) break;
  }
  turn.give_up();

  // Sleep. A thread that takes the lock from this loop marks it contested
  // itself while others are still in the loop: they may be asleep, and its
  // unlock must see to a wake. A thread that arrives later sets the bit on the
  // word before it sleeps, so deciding from the count never loses a wake-up.
  // The count and the word are seq_cst so that a thread reading the count
  // after changing the word sees every sleeper that saw the word before.
  PANICSTOP_WITNESS_HOOK(witness_sleep(&lo_, "sleep on a contested mutex"));
  detail::WaitRecord wait(&lo_, detail::WaitMode::kExclusive);
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  detail::SpinBudget wake_budget(false);  // spins again only after a wake: the arrival spin came first
  for (;;) {
    uintptr_t w = lo_.word.load(std::memory_order_seq_cst);
    if (w == 0) {
      const uintptr_t mine = sleepers_.load(std::memory_order_seq_cst) > 1 ? (self | kLockContested) : self;
      if (lo_.word.compare_exchange_weak(w, mine, std::memory_order_seq_cst, std::memory_order_relaxed)) {
        sleepers_.fetch_sub(1, std::memory_order_seq_cst);
        if (prof_start != 0) detail::lockprof_contested(&lo_, prof_start, caller);
        return true;
      }
      continue;
    }
    if (detail::owner_looks_runnable(w) && wake_budget.pause()) continue;
    if (deadline_ns != detail::kNoDeadline && detail::steady_now_ns() >= deadline_ns) {
      // Giving up. This thread may be the one an unlock woke (and it has
      // cleared the wake mark); if others still wait, pass a wake on so that
      // it is not lost with us.
      if (sleepers_.fetch_sub(1, std::memory_order_seq_cst) > 1) detail::unpark(this, 1);
      return false;
    }
    // Sleep while the lock is held and marked contested, whoever holds it:
    // a change of owner does not matter, since every owner of a contested
    // word wakes one sleeper (or a woken one is on its way) when it unlocks.
    auto held_and_marked = [this] {
      uintptr_t held = lo_.word.load(std::memory_order_seq_cst);
      while (held != 0) {
        if ((held & kLockContested) != 0 ||
            lo_.word.compare_exchange_weak(held, held | kLockContested, std::memory_order_seq_cst,
                                           std::memory_order_relaxed))
          return true;
      }
      return false;
    };
    if (detail::park(this, detail::kWakeAny, deadline_ns, wait, held_and_marked) ==
        detail::ParkResult::kWoken) {
      // Woken: this thread has run, so unlocks may wake again.
      detail::designated_waker_ran(this);
      wake_budget = detail::SpinBudget(true);
    }
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
  // The contested bit goes with the owner: the woken thread (this one's, or
  // one still on its way) sets it again from the sleeper count when it takes
  // the lock or sleeps.
  const uintptr_t old = lo_.word.exchange(0, std::memory_order_seq_cst);
  if ((old & kLockContested) == 0) return;
  // Released: from here on touch only the parking layer's tables.
  detail::wake_one_designated(this);
}

void Mutex::assert_held() const noexcept {
  if (!owned() && !scheduler_stopped()) detail::lock_misuse(&lo_, "assert_held failed: not owned by this thread");
}

void Mutex::assert_not_held() const noexcept {
  if (owned() && !scheduler_stopped()) detail::lock_misuse(&lo_, "assert_not_held failed: owned by this thread");
}

}  // namespace panicstop
