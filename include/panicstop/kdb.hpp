// kdb: stop the process, look at it, let it go on (FreeBSD's kdb_enter()), and
// live dumps (FreeBSD's livedump): the same dumps a panic writes, without
// ending the process. No ptrace, no second process: it works where `gdb -p`
// and `gcore` are refused (containers, Yama).
//
// A session, whatever started it:
//   1. one session at a time: a trigger that arrives while another session or a
//      panic is in progress gets no second session (the call returns kBusy);
//   2. the calling thread blocks asynchronous signals (they stay pending and
//      are delivered after the session, as before it);
//   3. every other thread is soft-stopped: it saves its registers and parks. A
//      thread inside a SpinMutex or a critical section parks when it leaves
//      it; threads created or exiting during the stop are found by rescanning
//      /proc/self/task. Threads still silent PANICSTOP_STOP_TIMEOUT_MS after
//      the last one answered (10 times it at most) are listed as "not
//      stopped" and keep running;
//   4. scheduler_stopped() is true for the calling thread only, so panicstop
//      locks held by stopped threads do not block the session;
//   5. the backend runs (see below), or the live dump is written;
//   6. exactly the threads this session stopped are restarted, and the calling
//      thread's signal mask is restored. Nothing else about the process
//      changes: signal handlers and masks of the stopped threads are as before.
// A panic during a session (a fault in the session, the console's `panic`
// command, or another thread's panic) takes the panic path once: threads the
// session already stopped stay stopped (no second stop) and are never
// restarted.
//
// Backends of kdb_enter() (PANICSTOP_KDB):
//   report   (default) write the text report (all threads with backtraces,
//            locks held and waited for) to PANICSTOP_KDB_OUTPUT, else stderr,
//            and continue;
//   console  read commands from the controlling terminal (/dev/tty); without
//            one, fall back to report. Sessions opened with `panicstop kdb PID`
//            always get the console, on the connection.
// Console commands: threads, bt TID, bt all, locks, witness, lockprof,
// dump [DIR], panic [MESSAGE], continue, help. A console that stays quiet for
// PANICSTOP_KDB_IDLE_MS continues the process by itself.
//
// Triggers: the functions below; a signal chosen with PANICSTOP_KDB_SIGNAL
// (off by default; e.g. SIGUSR2 or a number) whose arrival runs kdb_enter()
// in the thread that takes it; and the command line, `panicstop dump PID` and
// `panicstop kdb PID`, which connect to the process's control socket.
//
// The control socket (PANICSTOP_KDB_SOCKET: 1 = default, 0 = none, or a
// directory): install() listens on DIR/PID.sock, where DIR defaults to
// /tmp/panicstop-UID (created with mode 0700; the socket has mode 0600). No
// thread waits on it: the kernel signals the process when a connection
// arrives (SIGRTMAX-5, reserved by the library), and the thread that takes
// the signal serves it. Only a peer with the process's user id (or root) is
// served. The socket file is removed at exit, and install() removes files
// of processes that no longer exist. A child of fork() (a daemon, a prefork
// worker) closes the socket it inherits and listens on DIR/CHILDPID.sock.
#pragma once

#include "panicstop/export.hpp"

namespace panicstop {

enum class KdbResult {
  kDone = 0,   // the session ran and the process continued
  kBusy,       // another session or a panic is in progress; nothing was done
  kFailed,     // install() has not run, or memory could not be reserved
};

// Enters the debugger as described above, with the backend of PANICSTOP_KDB.
// `why` (may be nullptr) heads the report and the console's banner. Returns
// when the session ends; the process then continues. Safe to call from any
// thread and from a signal handler; allocation-free.
PANICSTOP_EXPORT KdbResult kdb_enter(const char* why) noexcept;

// Writes the enabled dumps (PANICSTOP_DUMP: text report and ELF core, as a
// panic would) of the running process into `dir` (nullptr or "": the dump
// directory of PANICSTOP_DUMP_DIR, falling back to /tmp), stopping every
// other thread only while the snapshot is taken and the files are written.
// Each file is announced on stderr ("panicstop: wrote PATH"). Returns the
// number of files written, or -1 if no session could start (busy, not
// installed). Safe from any thread and from a signal handler; allocation-free.
PANICSTOP_EXPORT int live_dump(const char* dir) noexcept;

// True while a kdb session or a live dump is in progress in this process.
PANICSTOP_EXPORT bool kdb_active() noexcept;

}  // namespace panicstop
