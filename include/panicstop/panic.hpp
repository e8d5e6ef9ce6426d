// Panic: one thread wins, every other thread freezes, the dump gets written.
//
// install() once, early in main(). From then on a fatal signal in any thread,
// an uncaught exception, or a call to panic() enters the panic path, in
// FreeBSD's order (kern_shutdown.c, vpanic):
//   1. block asynchronous signals in this thread;
//   2. elect the panicking thread with one CAS. A second thread that panics
//      parks for good, its message or signal kept for the dump; the panicking
//      thread panicking again is a nested panic (noted, no second dump);
//   3. stop every other thread of the process with the hard-stop signal; each
//      saves its registers and parks;
//   4. make scheduler_stopped() true for this thread only: panicstop locks stop
//      blocking for it;
//   5. capture the process once (the crash record every later step reads);
//      print "panic: MESSAGE" to stderr; run PreDump hooks; write the dumps,
//      one step per writer; run PostDump and Final hooks — each step under a
//      deadline, a fault in one recorded as a nested panic and the next step
//      still run;
//   6. end the process as the die policy says.
//
// Tunables, read from the environment by install(). A bad value makes install()
// print a message naming the variable and its accepted values, and exit(2).
//   PANICSTOP_STOP_ON_PANIC    1 (default) or 0: 0 neither stops threads nor
//                              bypasses locks, as before FreeBSD's 2011 change
//   PANICSTOP_DUMP_DIR         directory for dumps (default: current, then /tmp;
//                              a relative one is taken from the directory
//                              current at install, whatever chdir() follows)
//   PANICSTOP_DUMP             none, or a comma list of text, core, minidump
//                              (default text,core; minidump added when
//                              PANICSTOP_UPLOAD_URL is set), written in that
//                              order, each writer a step of its own
//   PANICSTOP_MINIDUMP_ENVIRON 0 (default) or 1: the environment in the .dmp
//   PANICSTOP_CORE             mini (default) | full
//   PANICSTOP_CORE_LIMIT       respect (default) | ignore: with respect, no
//                              core (only the text report) when RLIMIT_CORE
//                              is 0 or the process is not dumpable
//                              (PR_SET_DUMPABLE 0), both read at the panic; a
//                              nonzero RLIMIT_CORE is not enforced (a
//                              truncated core would not read back)
//   PANICSTOP_ON_PANIC         die (default) | exit | restart | halt
//   PANICSTOP_STOP_TIMEOUT_MS  how long the stop waits with no thread answering
//                              (default 1000); each answer starts it over, up
//                              to 10 times the value in all
//   PANICSTOP_TRACE_ON_PANIC   0 (default) or 1: print the panicking thread's
//                              stack on stderr right after the banner
//   PANICSTOP_DEBUGGER_ON_PANIC  0 (default) or 1: before the dumps, open kdb's
//                              console on the stopped process (the terminal,
//                              else one `panicstop kdb PID` connection) for up
//                              to PANICSTOP_KDB_IDLE_MS; `continue` goes on
//                              with the dumps and the die policy
//   PANICSTOP_WITNESS          1 (default), 0 (order checks off), -1 (off)
//   PANICSTOP_LOCKPROF         0 (default) or 1
//   PANICSTOP_STEP_TIMEOUT_MS  deadline of each hook and step (default 10000;
//                              the dump step gets six times as much)
//   PANICSTOP_KDB, PANICSTOP_KDB_OUTPUT, PANICSTOP_KDB_SIGNAL,
//   PANICSTOP_KDB_SOCKET, PANICSTOP_KDB_IDLE_MS   see kdb.hpp
//
// Deadlines: the panicking thread arms a POSIX timer aimed at itself
// (SIGEV_THREAD_ID, signal SIGRTMAX-4) before each step; an overrun or a fault
// inside the step jumps back to the step runner, is recorded as a nested panic,
// and the next step runs. A step asleep where only a fatal signal wakes it (a
// write to a hung NFS or FUSE mount, a hook waiting in vfork() or
// posix_spawn() for a child's exec) never takes that signal: one grace period
// after its deadline (the step timeout, at least 1 s) a second timer sends
// SIGKILL to the process, so a panic ends even then, without its remaining
// steps and with status SIGKILL. The library reserves SIGRTMAX-2 (hard stop),
// SIGRTMAX-3 (soft stop), SIGRTMAX-4 (step deadline) and SIGRTMAX-5 (kdb
// control socket, see kdb.hpp).
//
// Alternate signal stacks: install() gives one to every thread that exists at
// that moment; a thread created later takes one as it starts (the library
// interposes pthread_create, and std::thread goes through it). Only a thread
// made without pthread_create (a raw clone), or any thread of a sanitizer
// build, goes without: a stack overflow there ends the process with the
// kernel's default SIGSEGV action and no dump. install() interrupts every
// existing thread once with the hard-stop signal to do this: system calls that
// are restarted after a handler (SA_RESTART) are unaffected, the others (e.g.
// nanosleep, epoll_wait) may return EINTR once.
//
// Living beside the program's own signal handlers. The library (and the
// preload of `panicstop run`) interposes sigaction, signal, bsd_signal,
// sysv_signal, pthread_sigmask, sigprocmask, sigsuspend, sigwait,
// sigwaitinfo, sigtimedwait, signalfd, pselect, ppoll, epoll_pwait(2),
// pthread_attr_setsigmask_np, exit, _exit, _Exit and the long jumps. Once
// install() has run:
//   - panicstop's handler stays the one the kernel calls for the fatal
//     signals and the reserved ones. A program's sigaction() for them is
//     recorded, not installed, and reported back to it as it set it (a JVM
//     sees its own handler); what was installed before install() becomes the
//     program's recorded action.
//   - On a fatal signal the program's handler runs FIRST, with the kernel's
//     semantics (SA_SIGINFO, SA_RESETHAND, SA_NODEFER, sa_mask, the stack it
//     asked for: without SA_ONSTACK the interrupted one), the signal's own
//     siginfo and ucontext, which it may change to resume elsewhere. A runtime
//     that faults on purpose (JVM null checks and safepoints, WebAssembly
//     traps, a collector's write barrier) keeps its faults. A signal the
//     program ignores stays ignored, except a fault, which the kernel would
//     not ignore either, and a SIGABRT the process sent itself (abort(),
//     which then forces the default action and would end the process with
//     no panic).
//   - The panic runs when the program has no handler (SIG_DFL), or when its
//     handler gives up: it resets the action to SIG_DFL and raises the signal
//     again, calls abort(), exits from inside the handler, faults with the
//     signal blocked, or returns without changing anything so that the same
//     fault repeats at once with identical registers. A SIGABRT that the
//     thread sent itself (abort()) panics once the program's SIGABRT handler
//     returns: abort() cannot go on. The panic reports the first fault (the
//     one the program's handler was called for) and the process dies of it.
//     A crash handler runs before the world is stopped: what it does to other
//     threads (redis cancels its background threads) is done when the dump
//     is taken. panic() and std::terminate call no program handler.
//   - No mask the program sets blocks the reserved signals (SIGRTMAX-2..-5)
//     or, in the kernel, the synchronous faults (SIGSEGV, SIGBUS, SIGILL,
//     SIGFPE, SIGTRAP, SIGSYS): the program sees them blocked in its own view
//     (pthread_sigmask's old mask) and panicstop honours that in its
//     emulation, but a fault still reaches the panic path instead of the
//     kernel ending the process without a handler. The sigwait family and
//     signalfd never take the reserved signals off the queue. glibc treats
//     its own internal signals the same way.
//   - The program may use a reserved signal number itself (OpenJDK's libnio
//     and libnet interrupt blocked I/O with SIGRTMAX-2): its handler is called
//     for every such signal that panicstop did not send (panicstop marks its
//     own with a per-process value), with its SA_RESTART choice applied, so
//     an interrupted read still returns EINTR.
//   - With the kdb control socket on (the default), SIGIO is taken over too:
//     the kernel sends it in place of the socket's SIGRTMAX-5 when it cannot
//     queue that (the user's signal queue full, RLIMIT_SIGPENDING), and its
//     default action would end the process. panicstop serves its own
//     connection, then the program's action for SIGIO follows as the kernel
//     would take it: its handler, SIG_IGN, or the default, which still ends
//     the process for any SIGIO that was not panicstop's alone.
//   - A handler installed around the interposer (a raw rt_sigaction system
//     call, a statically linked C library) is found when a stop begins: the
//     stop signal's handler is put back, and the banner and the dump say so.
// A sanitizer build interposes none of this (the sanitizer runtime owns these
// functions): there, a handler installed after install() replaces panicstop's.
#pragma once

#include <cstdarg>

#include "panicstop/export.hpp"

namespace panicstop {

// Installs the fatal-signal handlers (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT,
// SIGTRAP, SIGSYS), the std::terminate handler and the stop handlers, and
// reserves all memory the crash path will need. Idempotent. Returns false (with
// a message on stderr) only if reservation or sigaction fails. A bad tunable
// ends the process with exit status 2. panic() works before install() too, but
// then neither stops other threads nor enforces deadlines.
PANICSTOP_EXPORT bool install() noexcept;

// Enters the panic path with a printf-style message (formatted by the library's
// signal-safe formatter: %s %c %d %i %u %x %X %p %% with l/ll/z/j/t, width and
// precision; no floating point). Never returns. Safe to call from any thread,
// from a signal handler, and while holding any locks.
[[noreturn]] PANICSTOP_EXPORT void panic(const char* fmt, ...) noexcept __attribute__((format(printf, 1, 2)));
[[noreturn]] PANICSTOP_EXPORT void vpanic(const char* fmt, va_list ap) noexcept;

// True once some thread has won the panic election.
PANICSTOP_EXPORT bool panicking() noexcept;
// The first panic's message, or nullptr before any panic. Static storage.
PANICSTOP_EXPORT const char* panic_message() noexcept;

// Stage's enumerators keep the names of the first public API (every later
// enum uses kName): programs compile against them, and a rename would break
// them for a matter of style.
enum class Stage {
  PreDump,   // before the dumps are written (e.g. flush a log under its lock)
  PostDump,  // after the dumps (e.g. notify a supervisor)
  Final,     // last, just before the die policy
};
// Registers fn(arg) to run on the panicking thread at `stage`. Hooks run in
// registration order, each under the step deadline; a fault inside one is a
// nested panic and the next hook still runs. At most 32 hooks per stage;
// returns false when full. Thread-safe: threads may register at the same
// time, and a hook registered before a panic's hook stage starts runs in it.
// Not async-signal-safe (do not call it from a signal handler).
PANICSTOP_EXPORT bool on_panic(Stage stage, void (*fn)(void*), void* arg) noexcept;

}  // namespace panicstop

// Panics with "assertion failed: COND (FILE:LINE): MESSAGE" unless cond holds.
// The message is optional: PANICSTOP_ASSERT(n > 0) or
// PANICSTOP_ASSERT(n > 0, "n=%d", n). Its format is checked at compile time as
// panic()'s is (-Wformat), since a bad one would misbehave in the middle of a
// crash.
#define PANICSTOP_ASSERT(cond, ...)                                                           \
  do {                                                                                        \
    if (__builtin_expect(!(cond), 0))                                                         \
      ::panicstop::detail::assert_failed(#cond, __FILE__, __LINE__ __VA_OPT__(, ) __VA_ARGS__); \
  } while (0)

namespace panicstop::detail {
[[noreturn]] PANICSTOP_EXPORT void assert_failed(const char* cond, const char* file, int line) noexcept;
[[noreturn]] PANICSTOP_EXPORT void assert_failed(const char* cond, const char* file, int line, const char* fmt, ...) noexcept
    __attribute__((format(printf, 4, 5)));
}  // namespace panicstop::detail
