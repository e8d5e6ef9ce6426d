// Threads as panicstop sees them.
//
// Every thread that takes a panicstop lock, names itself, or is stopped gets a
// slot in memory reserved once per process (no allocation after that). The slot
// identifies the thread as a lock owner, records what it is blocked on, and holds
// the registers it saved when it was stopped, so a dump can show every thread.
#pragma once

#include <cstdint>

namespace panicstop {

namespace detail {
struct ThreadSlot;
// The calling thread's slot, or nullptr before its first use of the library.
// Initial-exec TLS: one %fs-relative load, no __tls_get_addr call.
extern __thread ThreadSlot* tls_slot __attribute__((tls_model("initial-exec")));
// True only on the thread that is running the panic path (or kdb).
extern __thread bool tls_scheduler_stopped __attribute__((tls_model("initial-exec")));
// Out of line: claims a slot for the calling thread. Never returns nullptr; if
// the reserved slots are exhausted the thread shares an overflow slot, which is
// still a unique owner identity but carries no dump data.
ThreadSlot* claim_current_slot() noexcept;

inline ThreadSlot* current_slot() noexcept {
  ThreadSlot* s = tls_slot;
  if (__builtin_expect(s == nullptr, 0)) s = claim_current_slot();
  return s;
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
void set_thread_name(const char* name) noexcept;

// The kernel thread id of the calling thread.
int current_tid() noexcept;

}  // namespace panicstop
