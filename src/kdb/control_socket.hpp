// kdb's control socket (include/panicstop/kdb.hpp): where `panicstop dump PID`
// and `panicstop kdb PID` reach a process.
//
// Protocol: the client connects to DIR/PID.sock and sends one request line.
//   "dump" or "dump DIR"  live dump (DIR absolute; none: the dump directory).
//                         The reply copies the announcement lines
//                         ("panicstop: wrote PATH", ...) and ends with
//                         "ok N" (N files written) or "error MESSAGE".
//                         The message of the line may carry one descriptor
//                         (SCM_RIGHTS): DIR as the client opened it. The
//                         files are then created relative to it, and DIR
//                         only names them; anything but a directory gets
//                         "error the descriptor passed ...". Send the line
//                         in that one message: a peek ends at it.
//   "kdb"                 a console session on the connection (console.hpp);
//                         it ends with "continuing" or when the client hangs up.
//   anything else         "error unknown request ..."; a line longer than
//                         299 bytes "error request line too long ...", one
//                         not sent within 2 s "error no request line ...".
// A busy process (another session or a panic) answers "error busy: ...". A
// peer whose user id is neither the process's nor root gets "error
// permission denied". The server closes the connection after the reply.
#pragma once

#include <cstdint>

namespace panicstop::detail {

struct KdbSession;

// Setup (install time): creates the socket and arranges for the kernel to
// signal the process on a connection. Prints one line and returns false if
// the socket cannot be made (the process goes on without it).
bool install_control_socket() noexcept;

// Makes fd the listening socket the handler serves, remembering which socket
// it is (setup, and a forked child's new socket).
void publish_control_socket(int fd) noexcept;

// Is the published descriptor still the socket it was? A program may close
// every descriptor it did not open (daemons do, at start; under `panicstop
// run` that comes after install()) and get the number back for a file of its
// own. If so, the socket is forgotten without touching the number, which is
// the program's now; unless `in_forked_child` (which makes a socket of its
// own next), the socket's file is removed and stderr says so, once.
// Async-signal-safe.
bool control_socket_intact(bool in_forked_child) noexcept;

// The path this process listens on, or "" when it has no control socket.
const char* control_socket_path() noexcept;

// The handler of kdb_request_signal(): accepts every new connection and
// serves each one whose request line has fully arrived. It never waits for a
// client: a connection still without its line is kept (a few at most) and
// served when the kernel signals its data; one silent for 2 s, or whose line
// is longer than the maximum, is answered "error ..." and closed at the next
// run. Async-signal-safe.
void serve_control_requests() noexcept;

// Is a connection, or a request on a kept connection, waiting to be served?
// For SIGIO, which carries no descriptor: the kernel sends it in place of
// kdb_request_signal() when it cannot queue that (the user's signal queue
// full). Async-signal-safe.
bool control_requests_waiting() noexcept;

// Is fd the listening socket or a connection the handler keeps (or kept
// lately)? The kernel's signals for it are the handler's, not the program's.
bool is_control_connection(int fd) noexcept;

// In a forked child: closes the connections inherited from the parent's
// table, which are the parent's to serve.
void forget_control_connections_after_fork() noexcept;

// Called by end_session(): a request whose signal arrived while the session
// ran was left queued; serve it now.
void serve_deferred_requests() noexcept;

// The panic's debugger (PANICSTOP_DEBUGGER_ON_PANIC): waits up to timeout_ns
// for one connection and serves it on the given session, which the panic
// path made (its threads are stopped for good); "kdb" gets the console,
// "dump" the dumps. Returns false if there is no socket or nobody came.
bool serve_one_connection(KdbSession* session, int64_t timeout_ns) noexcept;

}  // namespace panicstop::detail
