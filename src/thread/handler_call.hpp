// Calling a program's signal handler from inside panicstop's as the kernel
// would have called it, for an unwinder.
//
// A runtime may leave its handler by unwinding: GNAT raises Storage_Error
// and Constraint_Error out of SIGSEGV and SIGFPE handlers through the DWARF
// unwinder, and C++ code built with -fnon-call-exceptions throws from them.
// The unwinder walks from the handler to its caller. Called by the kernel,
// that caller is the sigreturn trampoline, whose CFI hands over to the
// interrupted code; called by panicstop, it would be panicstop's own frames
// (noexcept: std::terminate), or a stack switch the walk cannot cross.
//
// call_program_handler() guarantees:
//   - the handler gets (sig, info, uc), in the registers the kernel uses (a
//     handler without SA_SIGINFO ignores the last two);
//   - the frame an unwinder finds above the handler is a signal frame whose
//     registers, stack pointer and return address are those saved in *uc:
//     the next frame is the interrupted code, looked up at its exact pc. An
//     exception raised in the handler is caught where the code that faulted
//     catches it, and the handler's frames and panicstop's are left, as
//     they would be natively (program_signals.cpp then finds the handler
//     gone: see forget_abandoned_handlers());
//   - a handler that returns returns here, as a plain call.
// x86_64 and aarch64; crash path: no calls, no stack of its own beyond one
// saved register.
#pragma once

#include <csignal>

extern "C" void panicstop_call_program_handler(const void* handler, int sig, siginfo_t* info, void* uc);

namespace panicstop::detail {

// act's handler (sa_sigaction or sa_handler: the same field) for sig.
inline void call_program_handler(const struct sigaction& act, int sig, siginfo_t* info, void* uc) {
  panicstop_call_program_handler(reinterpret_cast<const void*>(act.sa_sigaction), sig, info, uc);
}

}  // namespace panicstop::detail
