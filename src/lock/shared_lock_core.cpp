// Hard paths of RwLock and SxLock (detail::SharedLockBase). Every rare case
// lives here so the inline fast paths stay one CAS each. As in mutex.cpp, the
// stopped-scheduler test comes first in every hard path and skips everything
// else, misuse checks included.
//
// Sleeping protocol: a waiter parks under the lock's address (lock/park.hpp)
// after checking, under the parking bucket's lock, that the word still keeps
// it out, and setting its waiter flag on the word with a CAS if it is not
// there; whoever holds the lock then, its release sees the flag, and it looks
// for sleepers under the same bucket lock after changing the word. (Sleeping
// on the word itself, a futex wait expecting exactly the flagged value,
// mostly returned at once on a busy lock: the owner or the reader count had
// changed before the thread reached the kernel.) A release that frees the
// lock replaces the word (by 0, or by its waiter flags alone while writers
// wait: reserved for them). Who it wakes depends on that:
//   reserved: ONE sleeper of the class kWakeWriters (a writer, or a reader
//     that already holds a shared lock, the only ones a reserved lock admits),
//     by the parking layer's designated waker (wake_one_designated): until
//     the woken one has run, the releases that follow wake nobody.
//     Meanwhile a writer that takes the lock without having slept takes it
//     with no flag at all when no reader sleeps (its unlock is then the fast
//     path), or else keeps every flag. The woken one, taking the lock, sets
//     kRwWriteWaiters again if other writers are counted (the flag a barging
//     writer dropped), and flags the word again if it parks again. Any
//     thread woken from a park reports that it ran (designated_waker_ran);
//     clearing the mark early costs at most one wake too many.
//   0 (no writer counted): every sleeper, readers and any writer that counted
//     itself after the release read writers_waiting_.
// Contenders spin (lock/wait.hpp: one at a time, bounded) before they sleep
// and again after each wake, whatever the flags say, but only on a write owner
// that is not asleep (worth_spinning_on): a writer that meets readers, and a
// reader that meets a waiting writer, park at once. So does a writer that
// arrives while other writers are counted in writers_waiting_: it would
// only be served after them.
// A woken waiter re-asserts its flag if it must wait again. The reservation
// cannot outlive the writers: a release keeps it only while writers_waiting_
// counts some, and the last writer to time out removes it and wakes everyone.
#include <cerrno>
#include <climits>

#include "lock/park.hpp"
#include "panicstop/lockprof.hpp"
#include "panicstop/rwlock.hpp"

namespace panicstop::detail {

__thread uint32_t tls_shared_holds __attribute__((tls_model("initial-exec"))) = 0;

namespace {

inline bool is_free(uintptr_t w) noexcept { return (w >> kRwReaderShift) == 0; }
inline bool is_write_locked(uintptr_t w) noexcept { return !is_free(w) && (w & kRwRead) == 0; }
inline uintptr_t with_reader(uintptr_t w) noexcept { return (w | kRwRead) + kRwOneReader; }
// The flags a thread that takes the lock without having slept keeps.
inline constexpr uintptr_t kRwKeptFlags = kRwWaiters;

// The parking key of a lock: its word's address. The parking layer never
// reads it, so a release may pass it after the next owner destroyed the lock.
inline const void* park_key(const LockObject& lo) noexcept { return &lo.word; }

// The word a writer that has not slept (it spun, or tried) writes when it
// takes the free word `w`. While a woken writer is on its way and no reader
// sleeps, the hold goes without flags: the woken writer restores
// kRwWriteWaiters for the writers still asleep, when it parks again
// (keeps_out_and_flagged) or takes the lock (slept_writer_word). So with
// writers piled up asleep, the running threads' unlocks take the one-CAS
// fast path instead of the slow one. Otherwise every flag stays: they may be
// other sleepers'.
inline uintptr_t barging_writer_word(const LockObject& lo, uintptr_t self, uintptr_t w) noexcept {
  if ((w & kRwKeptFlags) == 0) return self;
  // `w` may carry the flag of a woken writer that ran (it reported so) and
  // parked again: the report must be seen here, so that its flag stays.
  std::atomic_thread_fence(std::memory_order_acquire);
  return (w & kRwReadWaiters) == 0 && designated_wake_pending(park_key(lo)) ? self : self | (w & kRwKeptFlags);
}

// Classes of sleepers (park tags), by what lets them in.
inline constexpr uint32_t kWakeReaders = 1u << 0;      // a reader holding no shared lock: no writer, none waiting
inline constexpr uint32_t kWakeWriters = 1u << 1;      // a writer: a free lock
inline constexpr uint32_t kWakeHeldReaders = 1u << 2;  // a reader already holding one: no write owner
// A reader that already reads sleeps in both of its classes: a reserved lock
// admits it, so a release's one writer wake may go to it; it then takes a
// shared hold, and its own release passes the wake on to a writer.
inline constexpr uint32_t kHeldReaderSleeps = kWakeWriters | kWakeHeldReaders;

void wake_all(const LockObject& lo) noexcept { unpark(park_key(lo), INT_MAX, kWakeAny); }

// Wakes whom a release that replaced `old` by `now` lets in. Only a release
// that frees the lock or downgrades it calls this.
void wake_after_release(LockObject& lo, uintptr_t old, uintptr_t now) noexcept {
  if ((old & kRwWaiters) == 0) return;
  if ((now & kRwWriteWaiters) == 0) {
    wake_all(lo);  // no writer counted: readers all go, a racing writer re-asserts
  } else if ((now & kRwRead) == 0) {
    // Reserved for writers: hand it to one, unless one is on its way already.
    wake_one_designated(park_key(lo), kWakeWriters);
  } else if ((old & kRwReadWaiters) != 0) {
    // A downgrade while writers wait: only readers that already read may join.
    unpark(park_key(lo), INT_MAX, kWakeHeldReaders);
  }
}

// Is a contender that the word `w` keeps out better off spinning than
// parking? Only while one write owner that is not asleep holds it: that is
// one short section by a thread that is probably on a CPU. Readers inside
// (for a writer), or a writer waiting or woken (for a reader), is a wait on
// several threads, some of them perhaps preempted or not yet scheduled; the
// contender parks at once and the release that lets it in wakes it. A writer
// that spun on readers, marking the word so that new readers waited while
// those inside drained, kept both CPUs on the word's cache line: read-mostly
// sections took 64-68 ns at 4 to 64 threads against 32-58 ns without that
// spin (docs/BENCHMARKS.md, "RwLock: no spinning on readers").
inline bool worth_spinning_on(uintptr_t w) noexcept { return is_write_locked(w) && owner_looks_runnable(w); }

// May a thread that wants a shared hold take one now? `reading` says it holds
// a shared lock already, which lets it pass waiting writers.
inline bool shared_admits(uintptr_t w, bool reading) noexcept {
  if (is_write_locked(w)) return false;
  return (w & kRwWriteWaiters) == 0 || reading;
}

// Sets `flag` on the held word `w` unless it is there; returns the word to
// sleep on, or 0 if the word changed and the caller must look again.
inline uintptr_t announce_waiter(LockObject& lo, uintptr_t w, uintptr_t flag) noexcept {
  const uintptr_t mine = w | flag;
  if (mine == w) return w;
  // A release: a writer's count in writers_waiting_ comes before its flag
  // (slept_writer_word relies on it).
  return lo.word.compare_exchange_weak(w, mine, std::memory_order_release, std::memory_order_relaxed) ? mine : 0;
}

// The check a waiter parks on (under the parking bucket's lock): true if the
// lock still keeps it out (`reading`: for a shared hold by a thread that
// already reads; a writer passes false and `flag` kRwWriteWaiters) and the
// word carries its flag, set here if it did not; false if it may go in now.
bool keeps_out_and_flagged(LockObject& lo, uintptr_t flag, bool reading) noexcept {
  for (;;) {
    const uintptr_t w = lo.word.load(std::memory_order_relaxed);
    if (flag == kRwWriteWaiters ? is_free(w) : shared_admits(w, reading)) return false;
    if (announce_waiter(lo, w, flag) != 0) return true;
  }
}

}  // namespace

SharedLockBase::~SharedLockBase() {
  PANICSTOP_WITNESS_HOOK(witness_destroy(&lo_));
  if (__builtin_expect(!is_free(lo_.word.load(std::memory_order_relaxed)), 0) && !scheduler_stopped())
    lock_misuse(&lo_, "destroyed while held");
}

bool SharedLockBase::lock_hard(uintptr_t self, uintptr_t seen, int64_t deadline_ns) noexcept {
  if (__builtin_expect(scheduler_stopped(), 0)) return true;  // faked: the word is left alone
  if (shared_lock_owner(seen) == self) {
    if ((lo_.options & kRecursive) == 0) lock_misuse(&lo_, "recursed on a non-recursive lock");
    ++lo_.recurse;
    lo_.word.fetch_or(kRwRecursed, std::memory_order_relaxed);
    return true;
  }
  // Lock profiling measures the wait here only, never on the fast path.
  const int64_t prof_start = lockprof_active() ? lockprof_ticks() : 0;
  const void* const caller = __builtin_return_address(0);

  SpinTurn turn(spinner_);
  if (spin_for_write(self, /*slept=*/false,
                     /*allowed=*/turn.held() && writers_waiting_.load(std::memory_order_relaxed) == 0)) {
    if (prof_start != 0) lockprof_contested(&lo_, prof_start, caller);
    return true;
  }

  turn.give_up();
  PANICSTOP_WITNESS_HOOK(witness_sleep(&lo_, lo_.kind == LockKind::kSxLock ? "sx lock wait" : "rwlock wait"));
  WaitRecord wait(&lo_, WaitMode::kExclusive);
  writers_waiting_.fetch_add(1, std::memory_order_seq_cst);
  for (;;) {
    uintptr_t w = lo_.word.load(std::memory_order_relaxed);
    if (is_free(w)) {
      if (lo_.word.compare_exchange_weak(w, slept_writer_word(self, w), std::memory_order_acquire,
                                         std::memory_order_relaxed)) {
        writers_waiting_.fetch_sub(1, std::memory_order_seq_cst);
        if (prof_start != 0) lockprof_contested(&lo_, prof_start, caller);
        return true;
      }
      continue;
    }
    auto held_and_flagged = [this] { return keeps_out_and_flagged(lo_, kRwWriteWaiters, false); };
    const ParkResult parked = park(park_key(lo_), kWakeWriters, deadline_ns, wait, held_and_flagged);
    if (parked == ParkResult::kInvalid) continue;
    if (parked == ParkResult::kTimedOut) {
      leave_writer_wait();
      return false;
    }
    // Awake, perhaps as the designated waker: the releases may wake again.
    // Spin before flagging again: a short section usually ends within it.
    designated_waker_ran(park_key(lo_));
    if (spin_for_write(self, /*slept=*/true, /*allowed=*/true)) {
      writers_waiting_.fetch_sub(1, std::memory_order_seq_cst);
      if (prof_start != 0) lockprof_contested(&lo_, prof_start, caller);
      return true;
    }
  }
}

uintptr_t SharedLockBase::slept_writer_word(uintptr_t self, uintptr_t w) const noexcept {
  // Reader flags are kept: they may be other sleepers'. The writer flag is set from the count, not
  // the word, because a barging writer may have dropped it (see
  // barging_writer_word): every other writer in the sleeping part either
  // counted itself before flagging the word (so it is seen here: the flag's
  // CAS was a release, and this thread's CAS an acquire on a later value) or
  // has yet to flag a word, which it does before it sleeps.
  return self | (w & kRwReadWaiters) |
         (writers_waiting_.load(std::memory_order_seq_cst) > 1 ? kRwWriteWaiters : 0);
}

bool SharedLockBase::spin_for_write(uintptr_t self, bool slept, bool allowed) noexcept {
  SpinBudget budget(allowed);
  for (;;) {
    uintptr_t w = lo_.word.load(std::memory_order_relaxed);
    if (is_free(w)) {
      const uintptr_t mine = slept ? slept_writer_word(self, w) : barging_writer_word(lo_, self, w);
      if (lo_.word.compare_exchange_weak(w, mine, std::memory_order_acquire, std::memory_order_relaxed)) return true;
      continue;
    }
    if (!worth_spinning_on(w) || (!slept && writers_waiting_.load(std::memory_order_relaxed) != 0) ||
        !budget.pause())
      return false;
  }
}

void SharedLockBase::leave_writer_wait() noexcept {
  if (writers_waiting_.fetch_sub(1, std::memory_order_seq_cst) != 1) return;
  // The last waiting writer gave up: readers held back for writers may go.
  // A writer arriving meanwhile is woken by the wake below and re-asserts.
  // A free (reserved) word becomes 0: everyone wakes and re-announces.
  uintptr_t w = lo_.word.load(std::memory_order_relaxed);
  while ((w & kRwWriteWaiters) != 0) {
    if (lo_.word.compare_exchange_weak(w, is_free(w) ? 0 : w & ~kRwWriteWaiters,
                                       std::memory_order_relaxed, std::memory_order_relaxed)) {
      wake_all(lo_);
      return;
    }
  }
}

uintptr_t SharedLockBase::freed_word(uintptr_t old) const noexcept {
  // A reserved word keeps the reader flag: its release wakes one writer only,
  // so the readers still asleep must stay announced for the later releases.
  return (old & kRwWriteWaiters) != 0 && writers_waiting_.load(std::memory_order_seq_cst) != 0
             ? (old & kRwKeptFlags)
             : 0;
}

bool SharedLockBase::lock_shared_hard(int64_t deadline_ns) noexcept {
  if (__builtin_expect(scheduler_stopped(), 0)) {
    // Fake only over a write owner; anything else gets a real hold, so a
    // faked hold's unlock_shared always meets a write-locked word.
    for (;;) {
      uintptr_t w = lo_.word.load(std::memory_order_relaxed);
      if (is_write_locked(w)) return true;
      if (lo_.word.compare_exchange_weak(w, with_reader(w), std::memory_order_acquire, std::memory_order_relaxed)) {
        ++tls_shared_holds;
        return true;
      }
    }
  }
  const uintptr_t self = reinterpret_cast<uintptr_t>(current_slot());
  const bool reading = tls_shared_holds != 0;
  // The inline path only takes a free lock: join the readers here, before
  // anything counts this as contention.
  for (uintptr_t w = lo_.word.load(std::memory_order_relaxed); shared_admits(w, reading);)
    if (lo_.word.compare_exchange_weak(w, with_reader(w), std::memory_order_acquire, std::memory_order_relaxed)) {
      ++tls_shared_holds;
      return true;
    }
  const int64_t prof_start = lockprof_active() ? lockprof_ticks() : 0;
  const void* const caller = __builtin_return_address(0);

  SpinTurn turn(spinner_);
  if (spin_for_read(reading, turn.held())) {
    if (prof_start != 0) lockprof_contested(&lo_, prof_start, caller);
    return true;
  }
  turn.give_up();

  PANICSTOP_WITNESS_HOOK(witness_sleep(&lo_, lo_.kind == LockKind::kSxLock ? "sx lock wait" : "rwlock wait"));
  WaitRecord wait(&lo_, WaitMode::kShared);
  for (;;) {
    uintptr_t w = lo_.word.load(std::memory_order_relaxed);
    if (shared_admits(w, reading)) {
      if (lo_.word.compare_exchange_weak(w, with_reader(w), std::memory_order_acquire,
                                         std::memory_order_relaxed)) {
        ++tls_shared_holds;
        if (prof_start != 0) lockprof_contested(&lo_, prof_start, caller);
        return true;
      }
      continue;
    }
    if (shared_lock_owner(w) == self) lock_misuse(&lo_, "lock_shared by the thread that holds it exclusively");
    auto held_and_flagged = [this, reading] { return keeps_out_and_flagged(lo_, kRwReadWaiters, reading); };
    const ParkResult parked =
        park(park_key(lo_), reading ? kHeldReaderSleeps : kWakeReaders, deadline_ns, wait, held_and_flagged);
    if (parked == ParkResult::kInvalid) continue;
    if (parked == ParkResult::kTimedOut) return false;
    // As a woken writer does (lock_hard).
    designated_waker_ran(park_key(lo_));
    if (spin_for_read(reading, /*allowed=*/true)) {
      if (prof_start != 0) lockprof_contested(&lo_, prof_start, caller);
      return true;
    }
  }
}

bool SharedLockBase::spin_for_read(bool reading, bool allowed) noexcept {
  SpinBudget budget(allowed);
  for (;;) {
    uintptr_t w = lo_.word.load(std::memory_order_relaxed);
    if (shared_admits(w, reading)) {
      if (lo_.word.compare_exchange_weak(w, with_reader(w), std::memory_order_acquire,
                                         std::memory_order_relaxed)) {
        ++tls_shared_holds;
        return true;
      }
      continue;
    }
    if (!worth_spinning_on(w) || !budget.pause()) return false;
  }
}

bool SharedLockBase::try_lock_hard(uintptr_t self, uintptr_t seen) noexcept {
  if (__builtin_expect(scheduler_stopped(), 0)) return true;  // faked
  if (shared_lock_owner(seen) == self) {
    if ((lo_.options & kRecursive) == 0) lock_misuse(&lo_, "try_lock by its owner on a non-recursive lock");
    ++lo_.recurse;
    lo_.word.fetch_or(kRwRecursed, std::memory_order_relaxed);
    return true;
  }
  // Free but reserved for waiting writers: a writer may take it.
  while (is_free(seen))
    if (lo_.word.compare_exchange_weak(seen, barging_writer_word(lo_, self, seen), std::memory_order_acquire,
                                       std::memory_order_relaxed))
      return true;
  return false;
}

bool SharedLockBase::try_lock_shared_hard() noexcept {
  if (__builtin_expect(scheduler_stopped(), 0)) return lock_shared_hard(-1);  // never blocks when stopped
  const bool reading = tls_shared_holds != 0;
  for (;;) {
    uintptr_t w = lo_.word.load(std::memory_order_relaxed);
    if (!shared_admits(w, reading)) return false;
    if (lo_.word.compare_exchange_weak(w, with_reader(w), std::memory_order_acquire, std::memory_order_relaxed)) {
      ++tls_shared_holds;
      return true;
    }
  }
}

void SharedLockBase::unlock_hard(uintptr_t self) noexcept {
  uintptr_t w = lo_.word.load(std::memory_order_relaxed);
  if (shared_lock_owner(w) != self) {
    // A faked acquisition by the panicking thread: nothing was written, so
    // nothing is released.
    if (__builtin_expect(scheduler_stopped(), 0)) return;
    lock_misuse(&lo_, is_free(w)               ? "unlocked while not locked"
                      : (w & kRwRead) != 0     ? "unlock while read-locked (a shared hold needs unlock_shared)"
                                               : "unlocked by a thread that does not own it");
  }
  if ((w & kRwRecursed) != 0) {
    if (--lo_.recurse == 0) lo_.word.fetch_and(~kRwRecursed, std::memory_order_relaxed);
    return;
  }
  uintptr_t now;
  do {
    now = freed_word(w);
  } while (!lo_.word.compare_exchange_weak(w, now, std::memory_order_release, std::memory_order_relaxed));
  wake_after_release(lo_, w, now);
}

void SharedLockBase::unlock_shared_hard() noexcept {
  for (;;) {
    uintptr_t w = lo_.word.load(std::memory_order_relaxed);
    if ((w & kRwRead) == 0) {
      // A faked shared hold meets the write owner it was faked over.
      if (__builtin_expect(scheduler_stopped(), 0)) return;
      lock_misuse(&lo_, is_free(w) ? "unlock_shared while not locked" : "unlock_shared while write-locked");
    }
    if (tls_shared_holds == 0) {
      if (__builtin_expect(scheduler_stopped(), 0)) return;
      lock_misuse(&lo_, "unlock_shared by a thread that holds no shared lock");
    }
    const bool last = shared_lock_readers(w) == 1;
    uintptr_t now = last ? freed_word(w) : w - kRwOneReader;
    if (lo_.word.compare_exchange_weak(w, now, std::memory_order_release, std::memory_order_relaxed)) {
      --tls_shared_holds;
      if (last) wake_after_release(lo_, w, now);
      return;
    }
  }
}

bool SharedLockBase::try_upgrade_hard() noexcept {
  if (__builtin_expect(scheduler_stopped(), 0)) return true;  // faked: the shared hold stays as it is
  const uintptr_t self = reinterpret_cast<uintptr_t>(current_slot());
  for (;;) {
    uintptr_t w = lo_.word.load(std::memory_order_relaxed);
    if ((w & kRwRead) == 0) lock_misuse(&lo_, "try_upgrade while not read-locked");
    if (tls_shared_holds == 0) lock_misuse(&lo_, "try_upgrade by a thread that holds no shared lock");
    if ((w & ~kRwKeptFlags) != (kRwRead | kRwOneReader)) return false;
    if (lo_.word.compare_exchange_weak(w, self | (w & kRwKeptFlags), std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
      --tls_shared_holds;
      return true;
    }
  }
}

void SharedLockBase::downgrade_hard(uintptr_t self) noexcept {
  uintptr_t w = lo_.word.load(std::memory_order_relaxed);
  if (shared_lock_owner(w) != self) {
    if (__builtin_expect(scheduler_stopped(), 0)) return;  // faked exclusive: nothing to turn into a shared hold
    lock_misuse(&lo_, "downgrade by a thread that does not hold it exclusively");
  }
  if ((w & kRwRecursed) != 0) lock_misuse(&lo_, "downgrade of a recursed lock");
  // Waiting readers may now enter, unless writers still wait: then only
  // those that already read.
  uintptr_t now;
  do {
    now = kRwRead | kRwOneReader | freed_word(w);
  } while (!lo_.word.compare_exchange_weak(w, now, std::memory_order_release, std::memory_order_relaxed));
  ++tls_shared_holds;
  wake_after_release(lo_, w, now);
}

void SharedLockBase::assert_held() const noexcept {
  if (!owned() && !scheduler_stopped()) lock_misuse(&lo_, "assert_held failed: not held exclusively by this thread");
}

void SharedLockBase::assert_held_shared() const noexcept {
  if (owned() || scheduler_stopped()) return;
  if ((lo_.word.load(std::memory_order_relaxed) & kRwRead) == 0 || tls_shared_holds == 0)
    lock_misuse(&lo_, "assert_held_shared failed: not held by this thread");
}

void SharedLockBase::assert_not_held() const noexcept {
  if (owned() && !scheduler_stopped()) lock_misuse(&lo_, "assert_not_held failed: held exclusively by this thread");
}

}  // namespace panicstop::detail
