// Spinlock and critical sections: the process analogues of FreeBSD's
// spinlock_enter() (interrupts off) and critical_enter() (no preemption).
//
// A spinlock section (spinlock_enter()/spinlock_exit(), inline in
// panicstop/thread.hpp) only counts its nesting: panicstop's own asynchronous
// signals that arrive inside one are deferred by their handlers
// (defer_in_spin_section()) and sent again when the outermost section ends.
// The hard stop and the synchronous fault signals are never deferred, and the
// program's own signal handlers are not held off (see spin_mutex.hpp).
//
// A blocking section is the old, system-call form of the spinlock section, for
// SpinMutex's kBlockSignals option: it blocks every asynchronous signal except
// the hard stop and the synchronous faults with rt_sigprocmask. A critical
// section blocks only the soft-stop signal, so kdb and live dumps wait until
// the thread leaves it. Blocking and critical sections nest and interleave in
// any order: the mask is recomputed from the two depths on every transition,
// never pushed and popped.
#pragma once

#include <csignal>
#include <cstdint>

#include "panicstop/thread.hpp"

namespace panicstop::detail {

// Signal numbers the library reserves (real-time signals near SIGRTMAX, which
// glibc does not use).
int hard_stop_signal() noexcept;
int soft_stop_signal() noexcept;
// The step watchdog: a POSIX timer aimed at the panicking thread
// (SIGEV_THREAD_ID) delivers it when a step of the panic path overruns.
int step_deadline_signal() noexcept;
// Raised by the kernel when a connection reaches the kdb control socket.
int kdb_request_signal() noexcept;

// The signals a blocking section blocks: all but the synchronous faults and
// the hard stop. The panic path and kdb sessions block the same set.
uint64_t spin_section_mask() noexcept;
// The same set as a sigset_t, for a handler's sa_mask.
void spin_section_sigset(sigset_t* set) noexcept;

// For the handler of one of panicstop's own asynchronous signals (one it sent
// itself, or the kernel's kdb request), called first thing: true when the
// calling thread is inside a spinlock section. Then sig is recorded and the
// handler must return at once, doing nothing; spinlock_exit() of the outermost
// section sends sig again to the thread (as an own signal, send_own_signal()).
// Async-signal-safe. Never call it for the hard stop, the step watchdog or a
// fault: those must act inside the section.
bool defer_in_spin_section(int sig) noexcept;

// Exported: SpinMutex's inline lock and unlock call them for kBlockSignals
// locks (include/panicstop/spin_mutex.hpp declares them for the program).
PANICSTOP_EXPORT void blocking_section_enter() noexcept;
PANICSTOP_EXPORT void blocking_section_exit() noexcept;
void critical_enter() noexcept;
void critical_exit() noexcept;
// Depths of the calling thread, for assertions.
uint32_t spinlock_depth() noexcept;
uint32_t blocking_depth() noexcept;
uint32_t critical_depth() noexcept;

}  // namespace panicstop::detail
