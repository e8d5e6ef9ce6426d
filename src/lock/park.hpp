// Parking: where a lock's waiters sleep (WebKit's ParkingLot, Rust's
// parking_lot_core).
//
// A thread that must wait for a lock does not sleep on the lock word. It
// queues a record of its own under the lock's address (the key) in a fixed
// table of buckets, and sleeps on a word in that record that only a wake
// changes. A futex wait on the lock word itself returns at once whenever the
// word differs from the value read before the call; with the owner in the
// word and threads outnumbering CPUs, the owner changes faster than a thread
// gets into the kernel, so would-be sleepers spun through failed system calls
// and kept re-flagging the word (a wake for every unlock). Here the condition
// to sleep is checked by the caller's validate() under the bucket's lock, and
// can be a predicate ("the lock is held and flagged") rather than one exact
// value; the lock's releases then look for sleepers under the same bucket
// lock, which is what makes the check and the sleep one step for them, as the
// kernel's futex hash bucket does for a futex.
//
// Guarantees:
//   - A thread that park() queued is dequeued by exactly one of: an unpark()
//     of its key (then it returns kWoken), or its own deadline (kTimedOut).
//     Spurious futex returns and signals (the stop handler) never end a park.
//   - Threads of one key wake in the order they parked, among those whose
//     tag the unpark accepts.
//   - A release calls unpark() with the lock's address after it has released
//     the lock word and may never touch the lock again: unpark reads no lock
//     memory, only the table and the parked threads' own records, so the next
//     owner may destroy the lock meanwhile.
//   - Memory: a fixed static table; records live on the parked threads'
//     stacks. Nothing is allocated, so the hard paths stay fit for the crash
//     path's rules.
//   - After a panic, and in kdb, the thread whose scheduler is stopped never
//     parks (the hard paths fake its acquisitions first). Its unpark() takes
//     a bucket only if it is free within a bounded spin, since a stopped
//     thread may hold it; otherwise the bucket owes the wake: whoever
//     releases it next (the holder, once resumed) wakes every thread queued
//     in it, and each re-checks its lock. So kdb's "continue" strands no one.
//   - A signal handler that waits for a panicstop lock, on a thread that was
//     interrupted inside a bucket's few-instruction critical section, waits
//     for itself if the two locks share that bucket (one chance in 1024).
//     Waiting for a lock in a signal handler is not async-signal-safe with
//     any lock, this one included.
//   - fork(): the child resets the table (park_after_fork), since the threads
//     queued in the parent do not exist there.
#pragma once

#include <cstdint>

#include "lock/wait.hpp"

namespace panicstop::detail {

// The tag that every unpark reaches, and the tags an unpark that reaches
// every parked thread passes.
inline constexpr uint32_t kWakeAny = 0xffffffffu;

enum class ParkResult {
  kInvalid,   // validate() returned false: the thread did not sleep
  kWoken,     // an unpark() chose this thread (even if the deadline passed meanwhile)
  kTimedOut,  // the deadline passed and no unpark() chose it
};

// Queues the calling thread under `key` and sleeps until an unpark() of that
// key whose tags intersect `tag` chooses it, or until deadline_ns (absolute
// CLOCK_MONOTONIC; negative: none). validate(ctx) runs first, with the key's
// bucket locked; if it returns false nothing is queued. It must be short and
// must not park, unpark or block. `wait` marks the thread parked while it
// sleeps (owner_looks_runnable).
ParkResult park(const void* key, uint32_t tag, int64_t deadline_ns, WaitRecord& wait, bool (*validate)(void*),
                void* ctx) noexcept;

template <class Validate>
inline ParkResult park(const void* key, uint32_t tag, int64_t deadline_ns, WaitRecord& wait,
                       Validate& validate) noexcept {
  return park(
      key, tag, deadline_ns, wait, [](void* f) -> bool { return (*static_cast<Validate*>(f))(); },
      static_cast<void*>(&validate));
}

// Wakes up to `count` threads parked under `key` whose tag intersects `tags`,
// oldest first; returns how many it woke.
int unpark(const void* key, int count, uint32_t tags = kWakeAny) noexcept;

// One woken sleeper at a time (abseil's "designated waker"). A release that
// must see to a wake-up calls wake_one_designated(): it wakes one thread
// parked under `key` (whose tag meets `tags`) and marks the key; until that
// thread has run and called designated_waker_ran(), further calls wake
// nobody, so a lock handed among running threads makes no system call while
// sleepers pile up. The marks are a fixed table indexed by the key, outside
// the lock (a release may not touch the lock after releasing it). So that no
// sleeper is stranded, the lock must make sure that the woken thread, once it
// runs, either takes the lock and flags it again while others sleep, or
// flags it and parks again; and any thread that returns kWoken from park()
// calls designated_waker_ran() (it may not be the one meant: clearing early
// costs at most one wake too many). A call whose wake found nobody parked
// clears the mark and tries once more, for a thread that parked while the
// mark stood. Two keys that share a slot only lose the suppression.
void wake_one_designated(const void* key, uint32_t tags = kWakeAny) noexcept;
// The first step of wake_one_designated(): marks `key` as having a woken
// thread on its way, without waking one. False if the key's slot holds
// another key's mark, or this key's already.
bool mark_designated_wake(const void* key) noexcept;
void designated_waker_ran(const void* key) noexcept;
// True while a thread woken for `key` has not run yet (a hint: it may run at
// any moment).
bool designated_wake_pending(const void* key) noexcept;

// Threads parked under `key` now (tests and diagnostics; a snapshot).
int parked_count(const void* key) noexcept;

// In the child of a fork(): empties every bucket and clears every wake mark,
// so that nothing of the parent's other threads, which the child does not
// have, stays queued or marked. Runs from the lock layer's fork handler
// (lock/wait.cpp), registered when the library loads. Async-signal-safe.
void park_after_fork() noexcept;

}  // namespace panicstop::detail
