// The client side of kdb's control socket (src/kdb/control_socket.hpp), shared
// by `panicstop dump PID` and `panicstop kdb PID`: finding a process's socket,
// connecting with one clear line per failure, and reading with a deadline.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "command.hpp"

namespace panicstop::tool {

// Where the socket of process `pid` is, as the process itself chose it at
// install: DIR/PID.sock, DIR being the PANICSTOP_KDB_SOCKET directory of the
// process's environment (/proc/PID/environ, readable by its owner) or else
// /tmp/panicstop-UID with the process's effective uid.
struct ControlTarget {
  pid_t pid = 0;
  uid_t uid = 0;
  std::string socket_path;
  // Not in the process's own user's directory: it made the socket as root
  // before it became another user (a server's workers), and root asks.
  // The connection then checks that the listener is the process.
  bool found_elsewhere = false;
};

// Finds the process and its socket. `socket_override` (--socket) replaces
// the path. Root also finds the socket a process made as root before it
// changed its user (in /tmp/panicstop-0, not in its new user's directory).
// On failure returns false with `error` set to one line:
//   no such process; belongs to another uid; socket turned off; no socket at
//   the path, and whether the process runs panicstop at all (libpanicstop in
//   its maps, or linked into its executable) or has a socket elsewhere.
bool locate_control_socket(pid_t pid, const std::string& socket_override, ControlTarget* target,
                           std::string* error);

// Connects to the target's socket and sends `request` (a line, '\n' added),
// with descriptor `pass_fd` (if not -1) passed along (SCM_RIGHTS): the
// directory of a live dump, opened here. Returns the connected descriptor,
// or -1 with `error` set (connection refused: stale socket; permission
// denied; ...).
int connect_control_socket(const ControlTarget& target, const std::string& request, std::string* error,
                           int pass_fd = -1);

// The command line both commands share: PID, --socket PATH, --timeout S,
// --help; each command's own valued options go to `own(option, value)`,
// which returns "" or the usage error's message.
struct ControlArgs {
  pid_t pid = 0;
  std::string socket_override;
  double timeout = 10;
  bool help_printed = false;  // --help: the help was printed, nothing else to do
};
// Returns kExitOk with *out filled, or kExitUsage after the usage error.
int parse_control_args(const Command& command, const std::vector<std::string>& args,
                       const std::vector<std::string>& own_options,
                       const std::function<std::string(const std::string&, const std::string&)>& own,
                       ControlArgs* out);

// locate_control_socket() then connect_control_socket(); on failure prints
// the one-line error on stderr and returns -1.
int open_control_connection(const ControlArgs& args, const std::string& request, int pass_fd = -1);

// The file-system uid and gid of process `pid` (/proc/PID/status): whom the
// files it creates belong to, and whose permissions it creates them with.
bool process_file_ids(pid_t pid, uid_t* uid, gid_t* gid);

// Parses PID (a positive decimal number); false otherwise.
bool parse_pid(const std::string& text, pid_t* pid);

// Parses a timeout in seconds (a positive number, fractions allowed).
bool parse_seconds(const std::string& text, double* seconds);

// "process PID did not answer within S s", with why when nothing came yet:
// the process is stopped, ignores or blocks (every thread) the connection
// signal, or has no handler for it.
std::string silence_message(pid_t pid, double seconds, bool answered_before);

// Waits up to `seconds` (< 0: without limit) for fd to be readable.
// Returns true when readable (data or end of stream), false on timeout.
bool wait_for_input(int fd, double seconds);

// Writes all of `text` to fd; false on error.
bool send_all(int fd, const std::string& text);

// send_all(), with descriptor `pass_fd` (if not -1) passed with the first
// byte (SCM_RIGHTS).
bool send_request(int fd, const std::string& text, int pass_fd);

}  // namespace panicstop::tool
