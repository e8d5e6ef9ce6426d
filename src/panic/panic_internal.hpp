// Shared between the panic path (panic.cpp) and its setup (panic_setup.cpp,
// tunables_setup.cpp). Not a contract for other layers.
#pragma once

#include <csignal>

#include "panic/panic_state.hpp"
#include "panic/tunables.hpp"

namespace panicstop::detail {

// The values install() parsed; tunables() returns the same object.
Tunables& tunables_storage() noexcept;

void fatal_signal_handler(int sig, siginfo_t* info, void* ucontext);
void step_deadline_handler(int sig, siginfo_t* info, void* ucontext);


// Makes a program handler that exits from inside itself a panic (setup).
void install_program_gave_up_handler() noexcept;

// Makes std::terminate a panic that names the uncaught exception's type and
// what(), in the program's own C++ runtime (terminate_setup.cpp). Setup.
void install_terminate_handler() noexcept;

// The program's argv for the restart policy, read from /proc/self/cmdline at
// install into memory that lives for the whole process. argv is NULL-terminated.
void set_restart_argv(char** argv) noexcept;

// Called by install_panic() once the handlers are in place: from then on the
// panic path arms its step watchdog. Makes the kill timer (panic.cpp).
void mark_panic_installed() noexcept;

// In the child of fork() (async-signal-safe): timers are not inherited, so
// the child makes its own kill timer; the id the parent's had may name a
// timer the child's program makes.
void panic_after_fork() noexcept;

// Sets up the panic layer: tunables (exits 2 on a bad value), reserved memory,
// handlers, alternate stacks. Idempotent. install() calls it.
bool install_panic() noexcept;

}  // namespace panicstop::detail
