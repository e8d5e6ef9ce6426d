// panicstop::RwLock — a reader/writer lock (FreeBSD's rwlock(9)).
//
// One word holds the whole state, as in FreeBSD's rw_lock:
//   unlocked      0
//   read-locked   kRwRead | readers << kRwReaderShift | waiter flags
//   write-locked  owner's thread slot address | waiter flags | kRwRecursed
// A write-locked word reads like a Mutex word (owner | flags, kRwRead clear),
// so dumps find the owner the same way; shared_lock_readers() and
// shared_lock_owner() below decode a word for dumps. The waiter flags say
// "someone may be parked under this lock: the release must go slow and
// wake". They are only set on a held word by a waiter about to park, checked
// under the parking layer's lock, and every release that frees the lock
// replaces the word. A free lock's word is 0, or its waiter flags alone
// (kRwWriteWaiters among them) while writers wait: the lock is then reserved
// for them (see the fairness policy), and the release wakes ONE writer: until
// that writer has run, further releases wake nobody (abseil's designated
// waker; the mark lives in the parking layer, src/lock/park.hpp, not in the
// word). Waiters sleep on words of their own, not on the lock word. Meanwhile a writer that takes the
// lock without having slept holds it with no flag at all (unless a reader
// sleeps), so its unlock is the one-CAS fast path; the woken writer sets
// kRwWriteWaiters again when it looks, for the writers still asleep. So a
// word without flags does not mean that nobody sleeps: dumps learn who waits
// from the threads' wait records, not from the word. A release that leaves 0
// wakes every sleeper. So no wake-up is lost and no herd of writers wakes for
// one to win (src/lock/shared_lock_core.cpp).
//
// Fast paths, inline: lock / try_lock / unlock / downgrade / lock_shared /
// try_lock_shared / unlock_shared are one compare-and-swap (the shared ones
// for a free lock and a sole reader; a lock other readers hold takes one more
// CAS out of line); try_upgrade is a load and one compare-and-swap. Everything rare — contention, waiter
// wake-ups, recursion, misuse, the stopped-scheduler bypass — is out of line in
// src/lock/shared_lock_core.cpp. SxLock shares this whole mechanism.
//
// Fairness policy: writer preference, FreeBSD's. While a writer waits, a
// thread that holds no shared lock waits too instead of joining the readers,
// and when the last holder leaves, the lock stays reserved for the waiting
// writers (the word keeps kRwWriteWaiters with no owner), so a stream of
// readers can never keep a writer out. A thread that already holds a shared
// lock (of any RwLock or SxLock: the count is per thread, FreeBSD's
// td_rw_rlocks) always gets a further shared hold, so recursive readers never
// deadlock behind a waiting writer. Among waiting writers there is no FIFO
// order, and a steady stream of writers can keep readers out (the price of
// writer preference).
//
// Contention: one contender at a time spins (bounded, as Mutex's does, in
// src/lock/wait.hpp) while a write owner that is not itself asleep in a
// panicstop wait holds the lock, whatever the waiter flags say, then parks
// (src/lock/park.hpp); a woken waiter spins again before it sleeps again. A
// writer that arrives while other writers wait parks at once, behind them.
// A writer that meets readers, and a reader that meets a
// waiting writer, park at once: they wait for several threads, not one short
// section, and spinning there kept the CPUs on the word's cache line. A
// writer that parks behind readers flags the word, so new readers wait and
// the last reader out wakes it. An RwLock holder should not block for long
// (FreeBSD's rule: use SxLock for that).
//
// After a panic (scheduler_stopped() on the calling thread): nothing blocks.
// lock / try_lock / try_upgrade on a lock held by anyone return as if they
// succeeded without writing the word (a faked acquisition); unlock / downgrade
// of a lock the caller does not own in the word return without writing.
// lock_shared fakes only when the word is write-locked; otherwise (free, or
// read-locked even with a writer waiting) the panicking thread takes a real
// shared hold, ignoring writer preference. So unlock_shared's fast path, which
// cannot check the flag, always sees a write-locked word for a faked hold and
// goes to the hard path, which returns without writing. A faked hold is also
// not counted in tls_shared_holds, and the fast path requires that count to be
// non-zero. Residual case: the write owner at the faked lock_shared releases
// the lock afterwards (a thread that failed to stop), readers take it, and the
// panicking thread also holds a real shared lock somewhere (its count is
// non-zero): then the faked hold's unlock_shared looks like a real one and
// decrements the other readers' count.
//
// Usable with std::lock_guard, std::unique_lock, std::scoped_lock,
// std::shared_lock, and with panicstop::CondVar (exclusive side).
#pragma once

#include <cstdint>

#include "panicstop/lock_object.hpp"
#include "panicstop/thread.hpp"
#include "panicstop/thread_annotations.hpp"
#include "panicstop/witness.hpp"

namespace panicstop {

namespace detail {

// Word layout of RwLock and SxLock (see above).
inline constexpr uintptr_t kRwRead = 1u << 0;          // read mode; readers counted above
inline constexpr uintptr_t kRwReadWaiters = 1u << 1;   // a reader may sleep
inline constexpr uintptr_t kRwWriteWaiters = 1u << 2;  // a writer may sleep: new readers wait
inline constexpr uintptr_t kRwRecursed = 1u << 3;      // write-locked recursively (lo_.recurse)
inline constexpr uintptr_t kRwWaiters = kRwReadWaiters | kRwWriteWaiters;
inline constexpr unsigned kRwReaderShift = 6;
inline constexpr uintptr_t kRwOneReader = uintptr_t(1) << kRwReaderShift;

// Number of shared holds a lock word records (0 unless read-locked).
inline uint32_t shared_lock_readers(uintptr_t word) noexcept {
  return (word & kRwRead) != 0 ? uint32_t(word >> kRwReaderShift) : 0;
}
// The write owner's slot address a lock word records (0 unless write-locked).
inline uintptr_t shared_lock_owner(uintptr_t word) noexcept {
  return (word & kRwRead) != 0 ? 0 : word & ~kLockFlagMask;
}

// Shared holds of RwLocks and SxLocks by the calling thread, all locks
// together. Lets a thread that already reads pass a waiting writer.
PANICSTOP_EXPORT extern __thread uint32_t tls_shared_holds __attribute__((tls_model("initial-exec")));

// The mechanism of RwLock and SxLock; use those. deadline_ns arguments are
// absolute CLOCK_MONOTONIC (std::chrono::steady_clock) nanoseconds, or -1 for
// no deadline.
class PANICSTOP_CAPABILITY("shared lock") PANICSTOP_EXPORT SharedLockBase {
 public:
  SharedLockBase(const SharedLockBase&) = delete;
  SharedLockBase& operator=(const SharedLockBase&) = delete;

  // Blocks until the caller holds the lock exclusively. Locking a lock the
  // caller already holds exclusively panics unless it was made kRecursive.
  // Locking it exclusively while holding it shared deadlocks (use try_upgrade).
  PANICSTOP_WITNESS_INLINE void lock() noexcept PANICSTOP_ACQUIRE() { acquire(-1); }
  // Takes the lock exclusively if it is free (or recursively, if kRecursive
  // and owned by the caller) and returns true; otherwise false at once.
  PANICSTOP_WITNESS_INLINE bool try_lock() noexcept PANICSTOP_TRY_ACQUIRE(true) {
    uintptr_t self = reinterpret_cast<uintptr_t>(current_slot());
    uintptr_t seen = 0;
    if (__builtin_expect(lo_.word.compare_exchange_strong(seen, self, std::memory_order_acquire,
                                                          std::memory_order_relaxed),
                         1)) {
      PANICSTOP_WITNESS_HOOK(witness_trylock(&lo_, 0));
      return true;
    }
    bool taken = try_lock_hard(self, seen);
    if (taken) PANICSTOP_WITNESS_HOOK(witness_trylock(&lo_, 0));
    return taken;
  }
  // Releases one level of exclusive ownership. Panics if the caller does not
  // hold the lock exclusively.
  PANICSTOP_WITNESS_INLINE void unlock() noexcept PANICSTOP_RELEASE() {
    PANICSTOP_WITNESS_HOOK(witness_unlock(&lo_, 0));
    uintptr_t self = reinterpret_cast<uintptr_t>(current_slot());
    uintptr_t expected = self;
    if (__builtin_expect(
            lo_.word.compare_exchange_strong(expected, 0, std::memory_order_release, std::memory_order_relaxed), 1))
      return;
    unlock_hard(self);
  }

  // Blocks until the caller holds a shared hold (see the fairness policy).
  // Panics if the caller holds the lock exclusively.
  PANICSTOP_WITNESS_INLINE void lock_shared() noexcept PANICSTOP_ACQUIRE_SHARED() {
    PANICSTOP_WITNESS_HOOK(witness_lock(&lo_, kWitnessShared));
    if (__builtin_expect(!take_shared_fast(), 0)) lock_shared_hard(-1);
  }
  // Takes a shared hold if that needs no wait; otherwise returns false at once.
  PANICSTOP_WITNESS_INLINE bool try_lock_shared() noexcept PANICSTOP_TRY_ACQUIRE_SHARED(true) {
    bool taken = __builtin_expect(take_shared_fast(), 1) || try_lock_shared_hard();
    if (taken) PANICSTOP_WITNESS_HOOK(witness_trylock(&lo_, kWitnessShared));
    return taken;
  }
  // Releases one shared hold. Panics if the lock is not read-locked or the
  // caller holds no shared lock.
  PANICSTOP_WITNESS_INLINE void unlock_shared() noexcept PANICSTOP_RELEASE_SHARED() {
    PANICSTOP_WITNESS_HOOK(witness_unlock(&lo_, kWitnessShared));
    // Guesses that the caller is the only reader and nobody waits (see
    // take_shared_fast for why there is no load first); any other word, a
    // last reader that must wake sleepers among them, goes out of line.
    uintptr_t w = kRwRead | kRwOneReader;
    if (__builtin_expect(tls_shared_holds != 0, 1) &&
        __builtin_expect(
            lo_.word.compare_exchange_strong(w, 0, std::memory_order_release, std::memory_order_relaxed), 1)) {
      --tls_shared_holds;
      return;
    }
    unlock_shared_hard();
  }

  // The caller holds the lock shared. If it is the only reader, turns that
  // hold into exclusive ownership and returns true; otherwise keeps the shared
  // hold and returns false at once. Never blocks. Clang's analysis cannot
  // express "shared becomes exclusive on true", so this carries no annotation:
  // code that writes after an upgrade goes in a function marked
  // PANICSTOP_NO_THREAD_SAFETY_ANALYSIS (and PANICSTOP_REQUIRES_SHARED).
  bool try_upgrade() noexcept {
    uintptr_t w = lo_.word.load(std::memory_order_relaxed);
    if (__builtin_expect(tls_shared_holds != 0 && (w & ~kRwWaiters) == (kRwRead | kRwOneReader), 1) &&
        __builtin_expect(lo_.word.compare_exchange_strong(w, reinterpret_cast<uintptr_t>(current_slot()) |
                                                                 (w & kRwWaiters),
                                                          std::memory_order_acquire, std::memory_order_relaxed),
                         1)) {
      --tls_shared_holds;
      PANICSTOP_WITNESS_HOOK(witness_upgrade(&lo_));
      return true;
    }
    bool upgraded = try_upgrade_hard();
    if (upgraded) PANICSTOP_WITNESS_HOOK(witness_upgrade(&lo_));
    return upgraded;
  }
  // The caller holds the lock exclusively (not recursed); turns that into a
  // shared hold without letting a writer in between. Waiting readers wake.
  void downgrade() noexcept PANICSTOP_RELEASE() PANICSTOP_ACQUIRE_SHARED() {
    PANICSTOP_WITNESS_HOOK(witness_downgrade(&lo_));
    uintptr_t self = reinterpret_cast<uintptr_t>(current_slot());
    uintptr_t expected = self;
    if (__builtin_expect(lo_.word.compare_exchange_strong(expected, kRwRead | kRwOneReader, std::memory_order_release,
                                                          std::memory_order_relaxed),
                         1)) {
      ++tls_shared_holds;
      return;
    }
    downgrade_hard(self);
  }

  // True if the calling thread holds the lock exclusively.
  bool owned() const noexcept {
    uintptr_t self = reinterpret_cast<uintptr_t>(tls_slot);
    return self != 0 && shared_lock_owner(lo_.word.load(std::memory_order_relaxed)) == self;
  }
  // Panics unless the caller holds the lock exclusively (or the scheduler is stopped).
  void assert_held() const noexcept PANICSTOP_ASSERT_CAPABILITY(this);
  // Panics unless the lock is held in some mode and the caller holds it
  // exclusively or holds some shared lock (shared holders are not recorded per
  // lock, so a shared hold by another thread can satisfy it).
  void assert_held_shared() const noexcept PANICSTOP_ASSERT_SHARED_CAPABILITY(this);
  // Panics if the caller holds the lock exclusively.
  void assert_not_held() const noexcept;
  const char* name() const noexcept { return lo_.name; }
  const LockObject& lock_object() const noexcept { return lo_; }

 protected:
  constexpr SharedLockBase(const char* name, LockKind kind, unsigned options) noexcept : lo_(name, kind, options) {}
  // Destroying a held lock is a misuse and panics.
  ~SharedLockBase();

  // The fast path of lock(): one CAS; the hard path returns false only when
  // deadline_ns passed first.
  PANICSTOP_WITNESS_INLINE bool acquire(int64_t deadline_ns) noexcept PANICSTOP_NO_THREAD_SAFETY_ANALYSIS {
    PANICSTOP_WITNESS_HOOK(witness_lock(&lo_, 0));
    uintptr_t self = reinterpret_cast<uintptr_t>(current_slot());
    uintptr_t seen = 0;
    if (__builtin_expect(lo_.word.compare_exchange_strong(seen, self, std::memory_order_acquire,
                                                          std::memory_order_relaxed),
                         1))
      return true;
    bool taken = lock_hard(self, seen, deadline_ns);
    if (!taken) PANICSTOP_WITNESS_HOOK(witness_lock_failed(&lo_));
    return taken;
  }
  // The fast path of lock_shared(): takes a shared hold of a free lock with
  // one CAS, and returns false for any other word. There is no load before
  // the CAS: on a lock that readers on other CPUs take, the load fetched the
  // cache line shared and the CAS fetched it again to write, and those two
  // misses were most of a shared section's cost (docs/BENCHMARKS.md, "Mutex
  // and RwLock: parking"). A CAS that fails leaves the line in this CPU's cache, so
  // the out-of-line retry on the word it returned is cheap.
  bool take_shared_fast() noexcept PANICSTOP_NO_THREAD_SAFETY_ANALYSIS {
    uintptr_t w = 0;
    if (lo_.word.compare_exchange_strong(w, kRwRead | kRwOneReader, std::memory_order_acquire,
                                         std::memory_order_relaxed)) {
      ++tls_shared_holds;
      return true;
    }
    return false;
  }

  // Return false only when deadline_ns passed first.
  bool lock_hard(uintptr_t self, uintptr_t seen, int64_t deadline_ns) noexcept;
  bool lock_shared_hard(int64_t deadline_ns) noexcept;
  bool try_lock_hard(uintptr_t self, uintptr_t seen) noexcept;
  bool try_lock_shared_hard() noexcept;
  void unlock_hard(uintptr_t self) noexcept;
  void unlock_shared_hard() noexcept;
  bool try_upgrade_hard() noexcept;
  void downgrade_hard(uintptr_t self) noexcept;
  // The bounded spins on a running write owner before (and after) a sleep:
  // true once the caller holds the lock. `slept`: the caller is counted in
  // writers_waiting_. `allowed`: false spins not at all (the caller did not
  // get the lock's SpinTurn).
  PANICSTOP_NO_EXPORT bool spin_for_write(uintptr_t self, bool slept, bool allowed) noexcept;
  PANICSTOP_NO_EXPORT bool spin_for_read(bool reading, bool allowed) noexcept;
  // The word a writer counted in writers_waiting_ writes when it takes the
  // free word `w`.
  PANICSTOP_NO_EXPORT uintptr_t slept_writer_word(uintptr_t self, uintptr_t w) const noexcept;
  // The word a release that frees the lock leaves behind, given the old one.
  PANICSTOP_NO_EXPORT uintptr_t freed_word(uintptr_t old) const noexcept;
  PANICSTOP_NO_EXPORT void leave_writer_wait() noexcept;

  LockObject lo_;  // first: the lock's address is its LockObject's
  // Writers in the sleeping part of lock_hard: a release keeps the lock
  // reserved for writers only while there are some, and the last writer to
  // time out drops the reservation.
  std::atomic<uint32_t> writers_waiting_{0};
  // Set while a contender spins on the lock (lock/wait.hpp, SpinTurn): the
  // others sleep without spinning. In what was padding: sizeof is unchanged.
  std::atomic<uint8_t> spinner_{0};
};

}  // namespace detail

class PANICSTOP_CAPABILITY("rwlock") PANICSTOP_EXPORT RwLock : public detail::SharedLockBase {
 public:
  // `name` must outlive the lock (normally a string literal). Options:
  // kRecursive (exclusive side only; shared holds always nest), kDupOk,
  // kNoWitness, kNoProfile.
  explicit constexpr RwLock(const char* name, LockOption options = kNoOptions) noexcept
      : SharedLockBase(name, detail::LockKind::kRwLock, options) {}
};

}  // namespace panicstop
