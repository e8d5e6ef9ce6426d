// The per-thread slot: FreeBSD's struct thread and stoppcbs[cpu] in one record,
// in memory reserved for the whole process. Lock words hold a slot's address as
// the owner's identity.
#pragma once

#include <atomic>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <ucontext.h>

#include "panicstop/thread.hpp"

namespace panicstop::detail {

struct LockObject;

// Why a thread is blocked, as recorded by the lock and condvar hard paths.
enum class WaitMode : uint8_t { kNone = 0, kExclusive, kShared, kCondVar };

// Where a thread stands with respect to a stop request.
enum class StopState : uint32_t {
  kRunning = 0,
  kStopped = 1,  // acknowledged; context below is valid; parked in the handler
  kPanicking = 2,  // this is the thread running the panic path
};

// Registers, FP state and signal information saved by a thread for itself, in
// the stop-signal handler or when it enters the panic path. The panicking thread
// saves the context of the fault (never of its own handler frame).
struct SavedContext {
  bool valid = false;
  siginfo_t siginfo;       // the fault or stop signal that interrupted the thread
  ucontext_t ucontext;     // uc_mcontext holds the general registers
  // The FP/vector state that ucontext's fpregs pointed at (x86_64: XSAVE area,
  // starting with the 512-byte FXSAVE legacy area). Copied because the original
  // lives on the signal frame.
  uint32_t fpstate_size = 0;
  alignas(64) unsigned char fpstate[4096];
  // The thread's TLS base (x86_64 fs_base, aarch64 tpidr_el0), which is not in
  // a ucontext: debuggers find the thread's struct pthread through it.
  uintptr_t tls_base = 0;
  uintptr_t stack_pointer = 0;
  uintptr_t stack_lo = 0;  // the thread's stack mapping, if known
  uintptr_t stack_hi = 0;
};

// One lock the thread holds, as WITNESS records it (src/witness). Written only
// by the owning thread; a dump reads it once the thread is stopped.
struct HeldLock {
  const LockObject* lock;      // nullptr: entry being written (skip it)
  const char* file;            // acquisition site from a PANICSTOP_ lock macro, or nullptr
  uintptr_t return_address;    // otherwise: the code that called lock() (its return address)
  int64_t acquired_ticks;      // lock profiling's hold-time start; 0 when not measured
  uint32_t line;               // with file
  uint16_t recursion;          // holds beyond the first (recursive or repeated shared)
  uint16_t class_index;        // the lock's WITNESS class (LockObject::class_index)
  uint8_t shared;              // 1: held shared; 0: exclusive
};
inline constexpr size_t kMaxHeldLocks = 32;

inline constexpr size_t kThreadNameMax = 32;
inline constexpr size_t kSlotMessageMax = 256;

// ThreadSlot::in_use of a slot whose thread stayed behind in the parent of a
// fork(): never claimed again in this process (adopt_slots_after_fork).
inline constexpr uint32_t kSlotRetired = 2;

struct alignas(64) ThreadSlot {
  // 0 = free; 1 = live; kSlotRetired. Claimed with a CAS so claiming is
  // async-signal-safe.
  std::atomic<uint32_t> in_use{0};
  // Claimed by the stop handler for a thread that never used the library; freed
  // again when the thread is restarted.
  bool claimed_by_stop = false;
  std::atomic<int32_t> tid{0};
  // The registry's claim count when the slot was last released (0: never).
  // A claim skips a slot released too few claims ago (see claim order below).
  std::atomic<uint64_t> released_at{0};
  char name[kThreadNameMax] = {};

  // What the thread is blocked on; written by the hard paths, read by dumps.
  std::atomic<const LockObject*> waiting_on{nullptr};
  std::atomic<WaitMode> wait_mode{WaitMode::kNone};
  // True while the thread sleeps in a panicstop futex wait: the adaptive spin of
  // a contender stops as soon as it sees the owner park.
  std::atomic<bool> parked{false};

  // Stop protocol (src/stop).
  std::atomic<StopState> stop_state{StopState::kRunning};
  std::atomic<uint32_t> stop_generation{0};
  // A thread that entered the panic path after losing the election records why.
  int panic_signal = 0;
  char panic_message[kSlotMessageMax] = {};

  SavedContext context;

  // WITNESS's list of the locks this thread holds, oldest first; maintained
  // only when witness is built in and on (PANICSTOP_WITNESS >= 0). While the
  // thread blocks in lock(), the lock it waits for is already the newest entry
  // (the order check runs before blocking): an entry whose lock equals
  // waiting_on is not held yet. held_dropped counts acquisitions past
  // kMaxHeldLocks that went unrecorded. Valid only while held_tid equals tid:
  // witness resets the list and sets held_tid at the thread's first lock
  // operation (a reused slot may still hold its previous thread's list).
  int32_t held_tid = 0;
  uint32_t held_count = 0;
  uint32_t held_dropped = 0;
  HeldLock held[kMaxHeldLocks];
};

// Slots are reserved in one mapping: the low 32 bits of a slot's address are
// unique, which the lock words' futex waits rely on (they compare the low half).
inline constexpr size_t kMaxThreads = 16384;

// The registry. Iteration visits every slot that is in use; it is safe while
// threads claim and release slots (a visit may see a slot being reused).
//
// Claim order. A slot's address is its thread's identity in lock words and
// dumps, so a released slot is not handed out again at once: a lock its
// thread never unlocked (a killed thread, a program bug) would otherwise
// seem to be held by the next thread. A claim takes a never-used slot while
// the slots handed out number fewer than 2 * P + R + 64 (P: the most slots
// ever live at once, R: slots retired by fork()); beyond that it recycles a
// free slot, scanning round-robin from where the previous recycling claim
// stopped, and skips any slot released fewer than P + 16 claims ago (claims
// counted from every thread). Only when no free slot qualifies does it take a
// never-used one again. So a process that starts and ends threads without end
// touches O(P + R) slots, not kMaxThreads, and a released slot waits at least
// P + 16 claims, typically a whole cycle of the pool, before it is reused
// (unless all kMaxThreads slots have been handed out and only recently
// released ones are free: one of them is then preferred to the overflow slot
// that every thread beyond kMaxThreads shares).
// Claiming and releasing are lock-free and async-signal-safe.
ThreadSlot* slot_array() noexcept;  // nullptr until the first claim or install
// Slots handed out at least once: the upper bound of every registry scan
// (the indices of all live and retired slots are below it). Grows with the
// peak number of live threads (as above), not with the number of threads
// that ever lived; never decreases.
size_t slot_count() noexcept;
// Slots claimed and not yet released, counting the stop handler's temporary
// claims; reset to the forking thread's own slot in the child of a fork().
// A snapshot: other threads may claim or release concurrently.
size_t live_slot_count() noexcept;
// Claims begun so far, failed ones included (a diagnostic: a thread that
// shares the overflow slot must not claim on every current_slot()).
uint64_t slot_claims() noexcept;
ThreadSlot* find_slot_by_tid(int tid) noexcept;

// Threads beyond kMaxThreads. A thread that claims a slot (claim_current_slot)
// when every slot is live shares the overflow slot, which saves no registers
// and is no lock owner identity of its own. Its tid is kept in a table of
// kOverflowTids entries reserved with the slots, until it exits or a later
// claim gets it a slot: without /proc that table is how a stop still finds
// it. A thread that finds the table full is only counted. Threads that only
// the stop handler gave the overflow slot are not listed here (the stop found
// them by /proc, and they hold it only while stopped).
inline constexpr size_t kOverflowTids = 65536;
// Calls fn(tid, arg) for each listed thread. Async-signal-safe, lock-free; a
// thread may come or go during the visit. Some listed tids may have exited
// without the exit key running (callers check with tgkill).
void for_each_overflow_thread(void (*fn)(int tid, void* arg) noexcept, void* arg) noexcept;
// Live threads sharing the overflow slot that the table could not hold.
uint32_t overflow_threads_untracked() noexcept;
// The overflow slot itself. Its context and tid are written only by the
// thread that saves its own context while it has no slot of its own (the
// panicking thread, or a live dump's), never by the stop handler: so the
// panicking thread's registers are kept even beyond kMaxThreads. Its other
// fields are shared by every overflow thread and mean nothing.
ThreadSlot* overflow_slot() noexcept;
// Reserves the slot memory (idempotent). Called by install() and the first claim.
bool reserve_slots() noexcept;
// Claims a slot for the calling thread from a signal handler: no TLS destructor
// is registered; the caller releases it with release_slot() if it resumes.
// It checks that the slot TLS names carries the caller's tid: a thread made by
// a raw clone() without CLONE_SETTLS shares its creator's TLS, and gets the
// slot registered under its own tid (claimed if need be, TLS left alone).
//
// Out of scope: such a thread taking panicstop locks. The lock fast paths
// (current_slot()) trust TLS without a system call, so the clone would take
// and release locks under its creator's identity.
ThreadSlot* claim_slot_in_signal_handler() noexcept;
// Frees slot s (one claim_slot_in_signal_handler() returned); TLS is cleared
// only if it names s.
void release_slot(ThreadSlot* s) noexcept;
void release_current_slot() noexcept;
// Makes the calling thread's exit release its slot and its alternate stack
// even if it never claims a slot (a thread given only a stack as it starts).
// Not async-signal-safe (pthread_setspecific may allocate): thread start only.
void release_at_thread_exit() noexcept;

// In the child of fork() (the registry registers it with pthread_atfork when
// the library loads, install() or not, so it runs before install()'s own
// handler): the forking thread's slot takes the child's tid and every other
// slot is retired. Async-signal-safe (the child of a multithreaded parent may
// call nothing else).
void adopt_slots_after_fork() noexcept;

// Does slot s belong to a thread of the parent of a fork(), one this process
// does not have? s must be a slot address (a lock's recorded owner).
inline bool slot_retired(const ThreadSlot* s) noexcept {
  return s->in_use.load(std::memory_order_relaxed) == kSlotRetired;
}

// Is p the address of some slot (a lock word's owner)?
bool is_slot_address(const void* p) noexcept;
// The tid of the thread owning slot address p, or 0.
int tid_of_owner(uintptr_t owner) noexcept;

// Test hook until the panic path sets it: make the calling thread behave as the
// panicking thread for locks. Only tests and src/panic call this.
void set_scheduler_stopped(bool stopped) noexcept;

}  // namespace panicstop::detail
