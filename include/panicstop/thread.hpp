// Threads as panicstop sees them.
//
// Every thread that takes a panicstop lock, names itself, or is stopped gets a
// slot in memory reserved once per process (no allocation after that). The slot
// identifies the thread as a lock owner, records what it is blocked on, and holds
// the registers it saved when it was stopped, so a dump can show every thread.
#pragma once

#include <cstdint>

#include "panicstop/export.hpp"

namespace panicstop {

namespace detail {
struct ThreadSlot;
// The calling thread's slot, or nullptr before its first use of the library.
// Initial-exec TLS: one %fs-relative load, no __tls_get_addr call.
PANICSTOP_EXPORT extern __thread ThreadSlot* tls_slot __attribute__((tls_model("initial-exec")));
// True only on the thread that is running the panic path (or kdb).
PANICSTOP_EXPORT extern __thread bool tls_scheduler_stopped __attribute__((tls_model("initial-exec")));
// Out of line: claims a slot for the calling thread. Never returns nullptr; if
// the reserved slots are exhausted the thread shares an overflow slot, which is
// still a unique owner identity but carries no dump data.
PANICSTOP_EXPORT ThreadSlot* claim_current_slot() noexcept;

inline ThreadSlot* current_slot() noexcept {
  ThreadSlot* s = tls_slot;
  if (__builtin_expect(s == nullptr, 0)) s = claim_current_slot();
  return s;
}

// Spinlock sections (SpinMutex), soft-disabled the way PowerPC Linux
// soft-disables interrupts: entering one only counts, so the fast path makes
// no system call. panicstop's own asynchronous signals (the soft stop, the kdb
// request) that reach a thread whose count is non-zero are recorded in
// tls_spin_deferred by their handler, which returns at once; leaving the
// outermost section sends them again to the thread itself, so it stops just
// after the section, never inside. The hard stop (the panic's NMI) and fault
// signals are never deferred.
//
// The count is a plain per-thread variable: only this thread writes it, and a
// handler that interrupts the read-modify-write on the same thread leaves it
// as it found it (it enters and leaves its own sections in pairs). The
// deferred set is written by handlers, hence the atomic builtins.
PANICSTOP_EXPORT extern __thread uint32_t tls_spin_depth __attribute__((tls_model("initial-exec")));
PANICSTOP_EXPORT extern __thread uint64_t tls_spin_deferred __attribute__((tls_model("initial-exec")));
// Sends the deferred signals to the calling thread and clears the set.
PANICSTOP_EXPORT void spinlock_replay_deferred() noexcept;

inline void spinlock_enter() noexcept {
  ++tls_spin_depth;
  // The count is raised before the lock word is touched: the compiler may not
  // sink it below the acquiring CAS (an acquire lets earlier stores pass).
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

inline void spinlock_exit() noexcept {
  // The lock word is released before the count drops, and the deferred set is
  // read only after it dropped: a handler that ran before the drop deferred
  // and is seen here; one that runs after it acts by itself.
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  uint32_t depth = tls_spin_depth;
  if (__builtin_expect(depth == 0, 0)) return;  // unbalanced exit: ignore rather than wrap
  tls_spin_depth = depth - 1;
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  if (depth == 1 && __builtin_expect(__atomic_load_n(&tls_spin_deferred, __ATOMIC_RELAXED) != 0, 0))
    spinlock_replay_deferred();
}
}  // namespace detail

// True when the calling thread is the one running the panic path (FreeBSD's
// SCHEDULER_STOPPED()). While it is true, every panicstop lock, try-lock,
// unlock and wait called by this thread returns at once as if it succeeded,
// without writing the lock word. It is never true on any other thread: a thread
// that failed to stop must keep blocking normally. One memory read.
inline bool scheduler_stopped() noexcept { return __builtin_expect(detail::tls_scheduler_stopped, false); }

// Names the calling thread for dumps and debuggers (also sets the kernel's comm,
// which keeps the first 15 bytes). Async-signal-safe; never allocates.
PANICSTOP_EXPORT void set_thread_name(const char* name) noexcept;

// The kernel thread id of the calling thread.
PANICSTOP_EXPORT int current_tid() noexcept;

}  // namespace panicstop
