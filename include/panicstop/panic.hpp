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
//   5. print "panic: MESSAGE" to stderr; run PreDump hooks; write the dumps;
//      run PostDump and Final hooks — each step under a deadline, a fault in one
//      recorded as a nested panic and the next step still run;
//   6. end the process as the die policy says.
//
// Tunables, read from the environment by install(). A bad value makes install()
// print a message naming the variable and its accepted values, and exit(2).
//   PANICSTOP_STOP_ON_PANIC    1 (default) or 0: 0 neither stops threads nor
//                              bypasses locks, as before FreeBSD's 2011 change
//   PANICSTOP_DUMP_DIR         directory for dumps (default: current, then /tmp)
//   PANICSTOP_DUMP             text,core (default) | text | core | none
//   PANICSTOP_CORE             mini (default) | full
//   PANICSTOP_CORE_LIMIT       respect (default) | ignore: with respect, no
//                              core (only the text report) when RLIMIT_CORE
//                              is 0 or the process is not dumpable
//                              (PR_SET_DUMPABLE 0), both read at the panic; a
//                              nonzero RLIMIT_CORE is not enforced (a
//                              truncated core would not read back)
//   PANICSTOP_ON_PANIC         die (default) | exit | restart | halt
//   PANICSTOP_STOP_TIMEOUT_MS  how long to wait for threads to stop (default 1000)
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
// and the next step runs. The library reserves SIGRTMAX-2 (hard stop),
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
// Chaining: a handler that was installed before install() for the signal that
// caused the panic is called once, after the hooks and dumps and only under
// the `die` policy, with the fault's siginfo and ucontext; if it returns, the
// default action ends the process. Previous handlers of other signals, and a
// previous SIGABRT handler after panic() or std::terminate, are not called.
#pragma once

#include <cstdarg>

namespace panicstop {

// Installs the fatal-signal handlers (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT,
// SIGTRAP, SIGSYS), the std::terminate handler and the stop handlers, and
// reserves all memory the crash path will need. Idempotent. Returns false (with
// a message on stderr) only if reservation or sigaction fails. A bad tunable
// ends the process with exit status 2. panic() works before install() too, but
// then neither stops other threads nor enforces deadlines.
bool install() noexcept;

// Enters the panic path with a printf-style message (formatted by the library's
// signal-safe formatter: %s %c %d %i %u %x %X %p %% with l/ll/z/j/t, width and
// precision; no floating point). Never returns. Safe to call from any thread,
// from a signal handler, and while holding any locks.
[[noreturn]] void panic(const char* fmt, ...) noexcept __attribute__((format(printf, 1, 2)));
[[noreturn]] void vpanic(const char* fmt, va_list ap) noexcept;

// True once some thread has won the panic election.
bool panicking() noexcept;
// The first panic's message, or nullptr before any panic. Static storage.
const char* panic_message() noexcept;

enum class Stage {
  PreDump,   // before the dumps are written (e.g. flush a log under its lock)
  PostDump,  // after the dumps (e.g. notify a supervisor)
  Final,     // last, just before the die policy
};
// Registers fn(arg) to run on the panicking thread at `stage`. Hooks run in
// registration order, each under the step deadline; a fault inside one is a
// nested panic and the next hook still runs. At most 32 hooks per stage;
// returns false when full. Not async-signal-safe; call during setup.
bool on_panic(Stage stage, void (*fn)(void*), void* arg) noexcept;

}  // namespace panicstop

// Panics with "assertion failed: COND (FILE:LINE): MESSAGE" unless cond holds.
#define PANICSTOP_ASSERT(cond, ...)                                                           \
  do {                                                                                        \
    if (__builtin_expect(!(cond), 0))                                                         \
      ::panicstop::detail::assert_failed(#cond, __FILE__, __LINE__, "" __VA_ARGS__);          \
  } while (0)

namespace panicstop::detail {
[[noreturn]] void assert_failed(const char* cond, const char* file, int line, const char* fmt, ...) noexcept;
}  // namespace panicstop::detail
