// Shared machinery of the lock hard paths: the bounded adaptive spin, and the
// record of what a thread sleeps on (so a dump can say who waits for what).
#pragma once

#include <cstdint>

#include "panicstop/lock_object.hpp"
#include "thread/slot.hpp"

namespace panicstop::detail {

// Rounds of cpu_relax() a contender spends waiting for a runnable owner before
// it sleeps. Bounded: userspace cannot see whether the owner is on a CPU, only
// whether it is parked in one of our own waits. 20 rounds (a few hundred ns,
// about one short critical section) measured as good as or better than 0 and
// 200 in bench/locks_bench on 2 CPUs, where a longer spin mostly moves the
// lock's cache line between the CPUs (docs/BENCHMARKS.md). Build with
// -DPANICSTOP_SPIN_ROUNDS=N to try another bound.
#ifndef PANICSTOP_SPIN_ROUNDS
#define PANICSTOP_SPIN_ROUNDS 20
#endif
inline constexpr int kAdaptiveSpinRounds = PANICSTOP_SPIN_ROUNDS;
// RwLock and SxLock contenders spin as long, whatever the waiter flags say,
// but only on a running write owner, never on readers
// (src/lock/shared_lock_core.cpp, worth_spinning_on). They spun 200 rounds while
// their sleepers woke on the lock word; once sleepers parked and one woken
// writer at a time ran, 20 rounds took contended RwLock from 112 to 31 ns a
// section at 16 threads (docs/BENCHMARKS.md, "Mutex and RwLock: parking"): on
// few CPUs, a lock handed between two spinning CPUs costs more than one
// thread running its sections alone while the others sleep.
inline constexpr int kSharedLockSpinRounds = kAdaptiveSpinRounds;

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
