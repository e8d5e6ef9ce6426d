// The stack panicstop's signal handlers run on.
//
// Every handler the library installs (the fatal-signal handler, the step
// watchdog, the stop signals, kdb's signal and control-socket handlers) is
// installed through handler_entry<>, which guarantees:
//   - the handler body runs on a panicstop stack of kAltStackSize (guard page
//     below), whatever stack the kernel delivered the signal on: the thread's
//     pool stack when the thread owns one (checked by tid: a thread made by a
//     raw clone shares its creator's TLS), else a pool stack claimed for the
//     handler and given back when it returns, else one of a few emergency
//     stacks reserved at install, one thread at a time each. Only when all of
//     those are in use does the body run where it was delivered;
//   - on a stack that is not panicstop's (a program's own small sigaltstack,
//     a thread's main stack) the entry uses at most kForeignStackBytes below
//     the kernel's signal frame: the frame of the entry and of the switch, no
//     locals of the handler. A program's stack of 4 KiB holds the kernel's
//     frame (up to about 3.5 KiB with AVX-512 state) and this; MINSIGSTKSZ
//     (2048) is less than the kernel's frame alone on such machines;
//   - when the signal arrives on a panicstop stack (the common case: the
//     thread's own stack is registered as its sigaltstack) the entry checks
//     the stack pointer against the pool's bounds and calls the handler: no
//     system call is added.
//     Leaving a foreign stack costs seven (and those of claiming a stack when
//     the thread has none of its own): the tid, and registering the
//     panicstop stack as the sigaltstack for as long as the handler runs (so a
//     nested signal, a fault in the panic path or a hard stop during a soft
//     one, lands below the handler instead of over the interrupted frame at
//     the top of the foreign stack), with every signal blocked around the
//     moments when the registration and the stack pointer disagree;
//   - the handler may return (the foreign registration is restored and a
//     claimed stack given back) or siglongjmp to a frame on the same panicstop
//     stack. A jump or an unwind out of the handler leaves the panicstop
//     stack registered in place of the foreign one and a claimed one held
//     until the thread exits (an emergency stack for good): the panic path
//     does not come back, and a program's SA_ONSTACK handler left that way
//     (an exception, SBCL's non-local exit) finds the thread with a whole
//     panicstop stack for its next signal. A thread that had no sigaltstack
//     at all keeps the panicstop stack it was given, as ensure_altstack()
//     would have given it one;
//   - the switch keeps the CFA in a frame pointer: unwinders (libgcc's and
//     the snapshot's) walk from the handler through it to the foreign stack,
//     the kernel's signal frame and the interrupted code.
#pragma once

#include <csignal>
#include <cstddef>

namespace panicstop::detail {

using SignalHandler = void (*)(int, siginfo_t*, void*);

// The budget tests/thread/handler_stack_test.cpp holds the entry to: it fills
// a small stack, lets a stop or kdb's signal be handled on it and counts what
// was touched beyond what a handler that does nothing touches. 152 bytes on
// x86_64 with gcc 12, RelWithDebInfo, with or without -fno-inline in
// CXXFLAGS (src/CMakeLists.txt turns inlining back on for the entry): the
// entry's saved registers and spills, and the switch's return address and
// frame pointer.
inline constexpr size_t kForeignStackBytes = 512;

// Runs fn on a panicstop stack as described above.
void run_on_handler_stack(int sig, siginfo_t* info, void* ucontext, SignalHandler fn) noexcept;

// What sigaction gets instead of Fn. No frame of its own (a tail call).
template <SignalHandler Fn>
__attribute__((no_stack_protector)) void handler_entry(int sig, siginfo_t* info, void* ucontext) noexcept {
  run_on_handler_stack(sig, info, ucontext, Fn);
}

// The same for a handler known only at run time, read from *Slot.
template <const SignalHandler* Slot>
__attribute__((no_stack_protector)) void handler_entry_via(int sig, siginfo_t* info, void* ucontext) noexcept {
  run_on_handler_stack(sig, info, ucontext, *Slot);
}

}  // namespace panicstop::detail

// The return address of the switch's call into a handler: an
// unwinder that meets it moves from the panicstop stack to the one the signal
// arrived on, which may lie below it.
extern "C" char panicstop_call_on_stack_return[];
