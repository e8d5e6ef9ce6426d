// The program's signal actions, kept beside panicstop's (Android's libsigchain
// and OpenJDK's libjsig solve the same problem for their runtimes).
//
// A library shares its process with runtimes, allocators and crash handlers
// that were there first and that call sigaction() and pthread_sigmask() as if
// they owned the process. panicstop interposes those calls so that, once
// install() has taken a signal over (take_over_signal()):
//   - the kernel keeps calling panicstop's handler for it. A program's
//     sigaction() for it is recorded, not installed, and sigaction() reports
//     the recorded action back, so the program sees what it set;
//   - the program's handler still runs, called by panicstop's handler with the
//     kernel's semantics (SA_SIGINFO, SA_RESETHAND, SA_NODEFER and sa_mask,
//     the same siginfo and ucontext, which it may change to resume elsewhere);
//   - no mask the program sets blocks panicstop's reserved signals, and none
//     blocks the synchronous fault signals in the kernel: a fault signal the
//     program believes blocked is blocked here, in the emulation, where a fault
//     still reaches panicstop (the kernel would kill the process with no dump).
//     glibc does the same for its own internal signals.
//
// The order on a fatal signal (deliver_fatal_to_program()): the program's
// handler first, so a runtime that faults on purpose (a JVM's null checks, a
// WebAssembly trap, a garbage collector's barrier) sees its faults and fixes
// them at the cost of one extra call; panicstop's panic when the program has no
// handler, or when its handler gives up: it resets the action to SIG_DFL and
// raises the signal again, calls abort(), exits from inside the handler, faults
// with the signal blocked, or returns without changing anything so that the
// same fault repeats at once with identical registers. The panic then reports
// the first fault, the one the program's handler was called for.
//
// Everything here is async-signal-safe: programs call sigaction() from inside
// their handlers (a crash handler resetting itself to SIG_DFL).
#pragma once

#include <csignal>
#include <cstdint>

namespace panicstop::detail {

using SignalHandler = void (*)(int, siginfo_t*, void*);

// Which of panicstop's rules a taken-over signal follows.
enum class SignalRole : uint8_t {
  kFatal,     // a fault or abort signal: panicstop's handler decides between program and panic
  kReserved,  // a signal panicstop sends itself: its handler forwards the program's uses
  kShared,    // a signal the kernel sends for panicstop and the program alike (SIGIO): the
              // handler takes its share, and every one reaches the program's action
};

// Installs handler for sig in the kernel and takes sig over from then on. The
// action the kernel had until now becomes the program's recorded action.
// flags should hold SA_SIGINFO and SA_ONSTACK; mask is the kernel mask while
// the handler runs when the program has no handler of its own (with a program
// handler, a fatal signal runs with the program's sa_mask and a reserved
// signal mirrors the program's SA_RESTART). Setup only. False if sigaction fails.
bool take_over_signal(int sig, SignalRole role, SignalHandler handler, int flags, const sigset_t& mask) noexcept;

// The program's recorded action for a taken-over signal (or the kernel's for
// any other). Async-signal-safe.
void program_action(int sig, struct sigaction* out) noexcept;

// The sigaction() of the C library, never the interposed one: panicstop's own
// setup installs its handlers with it. Setup only.
int libc_sigaction(int sig, const struct sigaction* act, struct sigaction* old) noexcept;

// What the fatal signal's delivery to the program came to.
enum class ProgramVerdict : uint8_t {
  kHandled,    // the program's handler returned (or the signal is ignored or held): resume
  kNoHandler,  // the program has none (SIG_DFL), or the kernel would end the process: panic
  kGaveUp,     // the program's handler gave up on *fault: panic with that fault
};

// The fault a program's handler was called for.
struct ProgramFault {
  int sig;
  siginfo_t* info;
  void* ucontext;
};

// Called by panicstop's fatal-signal handler before anything else (see the
// order above). On kGaveUp, *gave_up_on holds the first fault.
ProgramVerdict deliver_fatal_to_program(int sig, siginfo_t* info, void* ucontext, ProgramFault* gave_up_on) noexcept;

// A fault that the program's handler "handled" by resuming the thread
// somewhere other than the faulting instruction: it changed the saved pc. A
// runtime's implicit null check does that, and so does a runtime that handles
// a crash on the thread's own stack: Mono, on a fault in native code, returns
// from its handler into its crash reporter, which then calls abort(). The
// abort is then the panic, and this is what it was about.
// Trivial (no initializers): it lives in initial-exec TLS.
struct ResumedFault {
  int sig;  // 0: none
  int code;
  uintptr_t address;     // si_addr
  uintptr_t pc;          // the faulting instruction
  uintptr_t resumed_pc;  // where the handler sent the thread
  int64_t at_ns;         // CLOCK_MONOTONIC when the handler returned
};

// The calling thread's last such fault; false if it had none. Async-signal-safe.
bool last_resumed_fault(ResumedFault* out) noexcept;

// For a reserved signal that was not panicstop's own: calls the program's
// handler if it has one (SIG_DFL and SIG_IGN do nothing: the program's own
// signal must never end the process through panicstop's reservation).
void deliver_reserved_to_program(int sig, siginfo_t* info, void* ucontext) noexcept;

// Where a program handler that exits from inside itself is turned into a
// panic: the panic layer registers it at install. Called with the first fault.
using GaveUpFn = void (*)(const ProgramFault& fault);
void set_program_gave_up_handler(GaveUpFn fn) noexcept;

// True while the calling thread runs a program handler for a fatal signal.
bool in_program_fatal_handler() noexcept;

// Verifies that the kernel still calls panicstop's handler for a taken-over
// signal: a program may have bypassed the interposer (a raw system call, a
// static C library). If not, panicstop's handler is put back and the handler
// that had replaced it is returned (else nullptr). Async-signal-safe.
const void* reclaim_signal(int sig) noexcept;

// For a kShared signal (in its handler): the program's action, as the kernel
// would have taken it. A handler is called, SIG_IGN does nothing, and
// SIG_DFL takes the default action, which for SIGIO ends the process, unless
// default_applies is false (the signal was panicstop's share alone).
void deliver_shared_to_program(int sig, siginfo_t* info, void* uc, bool default_applies) noexcept;

// Marks a signal panicstop sends to its own threads (stop requests), so that
// its handler can tell it from the program's use of the same signal number.
// tid 0: to the process. When the user's signal queue is full, a signal to
// the process or to the calling thread itself still goes, unmarked (see
// below); to another thread it fails with -EAGAIN.
long send_own_signal(int tid, int sig) noexcept;
bool is_own_signal(const siginfo_t* info) noexcept;

// For a full signal queue (RLIMIT_SIGPENDING counts every queued real-time
// signal of the user's processes): a marked send to another thread then
// fails with EAGAIN, but kill() of the own process still delivers the
// signal, to some thread that does not block it, with its siginfo dropped
// when there is no room for it (SI_USER, sender pid 0); so does an SI_USER
// signal a thread sends itself. Such a signal carries no mark: only a
// handler that knows it may be expecting one (a stop in progress, a control
// request waiting) takes one that may_be_own_process_signal() accepts
// (SI_USER from this process, or with the sender lost) as its own.
long send_own_signal_to_process(int sig) noexcept;
bool may_be_own_process_signal(const siginfo_t* info) noexcept;

// tgkill() to the calling thread, unmarked; with the signal queue full, the
// SI_USER signal to itself that the kernel still delivers.
long signal_self(int sig) noexcept;

// True in the child of vfork() (or of a clone() with CLONE_VM but its own
// signal actions) before its execve: a process that runs on its parent's
// memory. Such a child must write none of panicstop's state there: its
// sigaction() goes to its own kernel table, not to the parent's records of
// the program's actions (CPython's subprocess resets every handler in its
// vfork child), and a crash or panic in it dies of its signal instead of
// taking the parent's panic state. False in the process panicstop was set up
// in and in fork()'s children (one getpid() to tell). Any other process
// reads a word its parent's memory holds and the kernel empties in a copy
// (MADV_WIPEONFORK): emptied, it is a process of its own (a raw clone()
// without CLONE_VM), which then takes the records over as a fork() child
// does. Where the kernel refused that advice, it asks the kernel (kcmp),
// and counts as sharing the memory when the kernel cannot say (Docker's
// default seccomp profile refuses kcmp). A child that shares its parent's
// signal actions as well (CLONE_SIGHAND) is treated as its parent, as before.
// Async-signal-safe.
bool in_vfork_child() noexcept;

// The signals no program mask may block: panicstop's reserved ones and the
// synchronous faults. Raw 64-bit kernel masks.
uint64_t unblockable_signals() noexcept;
uint64_t reserved_signals() noexcept;

}  // namespace panicstop::detail
