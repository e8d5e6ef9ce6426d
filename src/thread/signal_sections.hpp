// Spinlock and critical sections: the process analogues of FreeBSD's
// spinlock_enter() (interrupts off) and critical_enter() (no preemption).
//
// A spinlock section blocks every asynchronous signal in the calling thread
// except the hard-stop signal and the synchronous fault signals, so nothing can
// interrupt the holder of a SpinMutex except a panic. A critical section blocks
// only the soft-stop signal, so kdb and live dumps wait until the thread leaves
// it. Both nest, and they may interleave in any order: the mask is recomputed
// from the two depths on every transition, never pushed and popped.
#pragma once

#include <csignal>
#include <cstdint>

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

// The signals a spinlock section blocks: all but the synchronous faults and
// the hard stop. The panic path and kdb sessions block the same set.
uint64_t spin_section_mask() noexcept;
// The same set as a sigset_t, for a handler's sa_mask.
void spin_section_sigset(sigset_t* set) noexcept;

void spinlock_enter() noexcept;
void spinlock_exit() noexcept;
void critical_enter() noexcept;
void critical_exit() noexcept;
// Depths of the calling thread, for assertions and the stop handler.
uint32_t spinlock_depth() noexcept;
uint32_t critical_depth() noexcept;

}  // namespace panicstop::detail
