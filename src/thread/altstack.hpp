// Alternate signal stacks for the fatal-signal and stop handlers.
//
// A thread whose stack overflowed can only run a SIGSEGV handler on an
// alternate stack, and glibc gives new threads none (clone with CLONE_VM clears
// it). panicstop hands out stacks from one reserved pool:
//   - install() gives one to the calling thread and, through the stop signal's
//     handler, to every thread that exists at that moment;
//   - a thread gets one the first time it claims a slot (first lock, name, ...)
//     and the first time one of the library's handlers runs in it while it has
//     no alternate stack (a stop signal, for one);
//   - a thread created through pthread_create (std::thread included) takes one
//     before its start routine runs (thread_start_setup.cpp interposes it).
// A thread made some other way (a raw clone) that has not yet taken one of the
// library's signals has none, and neither has a thread in a sanitizer build
// (the sanitizer owns pthread_create there) until it does: a stack overflow in
// it ends the process with the kernel's default action and no dump.
//
// A thread that sets an alternate stack of its own keeps it: the handlers leave
// it for a panicstop stack first (thread/handler_stack.hpp), so it only has to
// hold the kernel's signal frame and a few hundred bytes.
#pragma once

#include <csignal>
#include <cstddef>

namespace panicstop::detail {

inline constexpr size_t kAltStackSize = 128 * 1024;  // the panic path and dump writers run here

// Reserves the pool (idempotent; setup). Until it is called, ensure_altstack()
// does nothing. Address space only: a stack is committed when a thread takes it
// and given back when it exits (altstack_pool.hpp). One entry per thread the
// registry can tell apart, or, under a finite RLIMIT_AS (which counts reserved
// address space too), as many as fit in a sixteenth of the limit; at most an
// eighth of vm.max_map_count (read at install; 65530 when /proc cannot say),
// so that the pool's mappings leave room for the threads' own; halved until
// the reservation fits. False only when even a pool of a few stacks cannot be
// reserved. A thread that finds every entry taken has no alternate stack (a
// stack overflow in it ends the process without a dump); the handlers then
// run on an emergency stack (handler_stack.hpp).
bool reserve_altstacks() noexcept;
// Gives the calling thread a stack from the pool unless it already has an
// alternate stack (its own or ours). Async-signal-safe: a few system calls on
// the first call in a thread, one (gettid) afterwards. Inside a signal handler
// pass the handler's ucontext: rt_sigreturn restores the alternate stack
// recorded in it, which would silently undo the new one, so it is patched too.
void ensure_altstack(void* interrupted_ucontext = nullptr) noexcept;
// Returns the calling thread's pool stacks (its own, and the second of
// other_altstack()), if it has them, and disables its alternate stack: their
// pages go back to the system and they become inaccessible again. Called when
// the thread exits (a pthread key destructor, set for every thread that starts
// through pthread_create or claims a slot). Stacks of threads that exit
// without it (a raw clone) are taken back when a claim finds the owner gone.
void release_altstack() noexcept;
// For a handler that runs off the alternate stack while panicstop's frames of
// its signal stay live on it (a program handler run on the interrupted
// stack, thread/program_signals.cpp): the other of the calling thread's two
// pool stacks, to register meanwhile, so that a nested signal lands on a
// whole stack and the live frames stay untouched. The second is taken from
// the pool at the first such call and kept until the thread exits
// (release_altstack()). current: the registration now, one of the two.
// False when current is neither (a program's own stack, an emergency one),
// the thread has no pool stack of its own, or the pool has none to spare.
// Async-signal-safe: one gettid, and the claim's system calls once.
bool other_altstack(const stack_t& current, stack_t* other) noexcept;
// Live threads that asked for a pool stack (at start, at their first claim,
// in a handler) and found every entry in use; each counted once until it
// exits (release_altstack()). A stack overflow in one of them ends the
// process without a dump. Async-signal-safe.
size_t threads_without_altstack() noexcept;
// Entries in the pool (0 before reserve_altstacks()): at most one per
// registry slot, an eighth of vm.max_map_count (each stack handed out costs
// two mappings, and the threads' own stacks need theirs), and what a finite
// RLIMIT_AS allows.
size_t altstack_pool_entries() noexcept;
// In the child of fork(): the forking thread's pool stacks (the kernel keeps
// its sigaltstack) are recorded under the child's tid, so that no thread of
// the child takes it as the stack of a thread that is gone. Async-signal-safe.
void adopt_altstack_after_fork() noexcept;
// True when new threads take their stack as they start (pthread_create is
// interposed and the next one was found). install() calls it, which also keeps
// the interposer linked into static programs.
bool thread_start_hook_active() noexcept;
// Whether a thread started through the interposed pthread_create also takes
// its registry slot as it starts (with its pool stack; the exit key returns
// both). Off by default: claiming takes never-used slots first, so thread churn
// would commit the whole slot array. install() turns it on when it found no
// procfs, where the registry is the only way the stop finds threads: then a
// thread that never calls the library is still stopped and listed. Threads
// started before that, or not through pthread_create, are not covered.
void set_claim_slot_at_thread_start(bool on) noexcept;

}  // namespace panicstop::detail
