// Shared machinery of the lock hard paths: the bounded adaptive spin, and the
// record of what a thread sleeps on (so a dump can say who waits for what).
#pragma once

#include <cstdint>

#include "panicstop/lock_object.hpp"
#include "thread/slot.hpp"

namespace panicstop::detail {

// How a contender waits for a lock a running thread holds before it sleeps
// (Mutex, RwLock, SxLock): it spins, but
//   - at most one thread spins on a lock at a time (SpinTurn): the others
//     sleep at once, since a second spinner on few CPUs mostly takes a CPU
//     from the owner;
//   - it reads the lock word only every kSpinReadIntervalNs, pausing
//     between reads: each read takes the word's cache line from the owner,
//     and on 2 CPUs a waiter that read every pause took the lock at almost
//     every release, so the line crossed between the CPUs on every critical
//     section. Reading seldom lets the owner run a string of short sections
//     with the line in its own cache, and the waiter still comes in within
//     one interval of a release it sees;
//   - it gives up after kSpinReads reads (about 7 us), on arrival and again
//     after each wake (a woken thread spins without taking the turn: wakes
//     go to one thread at a time);
//   - a thread arriving at a lock that others sleep on (Mutex: a sleeper
//     counted; RwLock, SxLock: a writer counted, for a writer) does not spin
//     at all: its turn comes after theirs, and its spin only took the line
//     and a CPU from the owner. With it, Mutex, RwLock and SxLock went from
//     0.7x-0.9x to 1.05x-1.22x of absl::Mutex at 16 and 64 threads
//     (docs/BENCHMARKS.md, "No spin while threads sleep on the lock").
// Against the earlier spin (20 pauses, one read each, by every contender),
// contended Mutex went from 0.85x to about 2.5x absl::Mutex at 2 threads
// and stayed ahead from 4 to 64 (docs/BENCHMARKS.md, "Spinning: one
// spinner, seldom reads"). Build with -DPANICSTOP_SPIN_READ_INTERVAL_NS=N or
// -DPANICSTOP_SPIN_READS=N to try other bounds.
#ifndef PANICSTOP_SPIN_READ_INTERVAL_NS
#define PANICSTOP_SPIN_READ_INTERVAL_NS 700
#endif
#ifndef PANICSTOP_SPIN_READS
#define PANICSTOP_SPIN_READS 10
#endif
inline constexpr int64_t kSpinReadIntervalNs = PANICSTOP_SPIN_READ_INTERVAL_NS;
inline constexpr int kSpinReads = PANICSTOP_SPIN_READS;

// The number of cpu_relax() calls that take about kSpinReadIntervalNs on
// this CPU (a pause takes from a few to over a hundred cycles, by CPU
// model): timed once, by the first thread that spins, and at least 1.
uint32_t relaxes_per_spin_read() noexcept;

// The value a spin turn's holder writes into the lock's flag: this process's
// fork generation (1 to 255, never 0, which means free). A fork()'s child
// starts a new generation (spin_turns_after_fork), so a flag that a thread of
// the parent held at the fork, a thread the child does not have, reads as
// free there instead of keeping that lock from spinning for good.
extern std::atomic<uint8_t> g_spin_turn_generation;
// In the child of a fork(): the next generation (after 255, 1 again).
void spin_turns_after_fork() noexcept;

// The right to spin on one lock. At most one thread holds it; a thread that
// does not get it sleeps without spinning. `spinner` is the lock's own flag.
// A turn never given back (its holder left the spin by a longjmp out of a
// signal handler) only keeps that lock from spinning: its contenders sleep at
// once, which is slower, never wrong. A turn a parent's thread held at a
// fork() is free in the child, unless 255 forks, each the child of the last,
// separate the two.
class SpinTurn {
 public:
  explicit SpinTurn(std::atomic<uint8_t>& spinner) noexcept : spinner_(claim(spinner) ? &spinner : nullptr) {}
  ~SpinTurn() { give_up(); }
  SpinTurn(const SpinTurn&) = delete;
  SpinTurn& operator=(const SpinTurn&) = delete;

  bool held() const noexcept { return spinner_ != nullptr; }
  // Lets another thread spin: called before the holder sleeps.
  void give_up() noexcept {
    if (spinner_ == nullptr) return;
    spinner_->store(0, std::memory_order_release);
    spinner_ = nullptr;
  }

 private:
  static bool claim(std::atomic<uint8_t>& spinner) noexcept {
    const uint8_t mine = g_spin_turn_generation.load(std::memory_order_relaxed);
    uint8_t seen = spinner.load(std::memory_order_relaxed);
    return seen != mine &&
           spinner.compare_exchange_strong(seen, mine, std::memory_order_acquire, std::memory_order_relaxed);
  }

  std::atomic<uint8_t>* spinner_;
};

// One bounded spin: pause() waits one read interval and returns true, or
// returns false once kSpinReads intervals have passed (at once if the spin
// was not allowed).
class SpinBudget {
 public:
  explicit SpinBudget(bool allowed) noexcept : reads_left_(allowed ? kSpinReads : 0) {}
  bool pause() noexcept {
    if (reads_left_ <= 0) return false;
    --reads_left_;
    for (uint32_t i = relaxes_per_spin_read(); i != 0; --i) cpu_relax();
    return true;
  }

 private:
  int reads_left_;
};

// Is it worth spinning on a lock whose word reads `word`? Only if it has an
// owner and that owner is not itself asleep in a panicstop wait.
inline bool owner_looks_runnable(uintptr_t word) noexcept {
  auto* owner = reinterpret_cast<const ThreadSlot*>(word & ~kLockFlagMask);
  return owner != nullptr && !owner->parked.load(std::memory_order_relaxed);
}

// Marks the calling thread as blocked on `lo` for as long as it lives.
class WaitRecord {
 public:
  WaitRecord(const LockObject* lo, WaitMode mode) noexcept : slot_(current_slot()) {
    slot_->wait_mode.store(mode, std::memory_order_relaxed);
    slot_->waiting_on.store(lo, std::memory_order_release);
  }
  ~WaitRecord() {
    slot_->waiting_on.store(nullptr, std::memory_order_relaxed);
    slot_->wait_mode.store(WaitMode::kNone, std::memory_order_relaxed);
  }
  WaitRecord(const WaitRecord&) = delete;
  WaitRecord& operator=(const WaitRecord&) = delete;

  // Sleeps on the 32-bit futex at addr while it holds `expected`, marking the
  // thread parked meanwhile. deadline_ns < 0 waits without a deadline.
  // Returns the futex result (0, -EAGAIN, -EINTR, -ETIMEDOUT); 0 means a wake
  // reached it, even if the deadline passed meanwhile.
  long sleep(const void* addr, uint32_t expected, int64_t deadline_ns = -1) noexcept;

 private:
  ThreadSlot* slot_;
};

// The address of a lock word's low 32 bits, where a futex on the word (CondVar's) waits.
inline const void* futex_address(const std::atomic<uintptr_t>& word) noexcept {
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "futex address assumes the low half comes first");
  return &word;
}

}  // namespace panicstop::detail
