// Faults made on purpose, for crash tests:
//
// A fault that the program's own handler resumes elsewhere, as Mono enters
// its crash reporter and Go its sigpanic (docs/DESIGN.md, invariant 13):
// the handler runs on an alternate stack, points the saved pc at another
// function and returns, so that function runs on the thread's own stack as
// if called from the faulting instruction.
//
// A stack overflow: a recursion whose every call keeps a frame, until the
// thread's stack ends.
#pragma once

#include <csignal>

// A load that faults at its function's first instruction (as a JIT's null
// check may): looked up as a return address, the pc would be named after
// the function before it.
extern "C" long panicstop_test_load_at_entry(const long* p);

namespace panicstop::testing {

// Where resume_elsewhere sends the faulting thread.
extern void (*resume_at)();
// True (the default): entered as if called from the fault, which stays on
// the stack as a return address. False: with the faulting frame gone from
// the stack, as after an exception a runtime raised for the fault.
extern bool resume_as_called_from_the_fault;

// A SIGSEGV handler (install it with SA_SIGINFO | SA_ONSTACK) that sets the
// interrupted context to enter resume_at on a fresh frame below the
// interrupted one, and returns.
void resume_elsewhere(int, siginfo_t*, void* ucontext);

// Calls itself with a 512-byte frame until the stack ends (never returns
// normally). The name is what a test looks for among a dump's frames.
int overflow_the_stack(int depth);

}  // namespace panicstop::testing
