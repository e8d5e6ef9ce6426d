#include "kdb_command.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <iostream>
#include <string>
#include <vector>

#include "control_client.hpp"

namespace panicstop::tool {

namespace {

constexpr std::string_view kKdbHelp = R"(Opens kdb's console in a running process: every other thread of the process
stops (registers saved, nothing else touched) while you look, and restarts
exactly as it was after `continue`. No ptrace: this works where gdb -p is
refused (containers, Yama).

Console commands (the process's `help` lists them too):
  threads           every thread: tid, name, [state], kernel state, and the
                    panicstop lock it waits for with that lock's owner
  bt TID | bt all   a thread's stack as the text report prints it
  locks             locks threads wait for, owners and waiters; with WITNESS,
                    the locks each thread holds
  witness           WITNESS's mode, report count, held locks
  lockprof          the lock-profiling table (PANICSTOP_LOCKPROF=1)
  dump [DIR]        write the .txt and .core dumps (DIR absolute)
  panic [MESSAGE]   end the process through its panic path ("kdb: MESSAGE")
  continue          restart the threads and leave
A unique prefix of a command works (th, bt, lo...), except for panic.

Without -c the session is interactive: lines typed go to the process, its
answers come back; end of input (Ctrl-D) sends `continue`; Ctrl-C hangs up,
which also continues the process. With -c, each CMD is sent in turn, then
`continue`, and the transcript is printed (for scripts). A console that stays
quiet for the process's PANICSTOP_KDB_IDLE_MS (default 60 s) continues by
itself.

Which processes: only those that called panicstop::install() (or run under
`panicstop run`) with their control socket on, and that belong to you (root
reaches every process). Children they fork without exec (a daemon, prefork
workers) listen on sockets of their own: give the child's pid. Anything else
gets a one-line error that says why.

Where the socket is: DIR/PID.sock, where DIR is the process's
PANICSTOP_KDB_SOCKET directory when its environment sets one, else
/tmp/panicstop-UID (UID: the process's user). A process that made its
socket as root and then became another user (a server's workers) has it
in /tmp/panicstop-0, where root finds it. PANICSTOP_KDB_SOCKET=0 in the
process turns the socket off.

Options:
  -c CMD          run CMD (repeatable), then continue
  --socket PATH   connect to this socket instead of looking for it
  --timeout S     give up when an answer is due and the process has been
                  silent for S seconds (default 30; interactively, only the
                  wait for the console's first line)

Exit status:
  0  the console ran and the connection ended
  1  failure: no such process, another user's process, no control socket,
     a stale socket (connection refused), permission denied, the process is
     busy (another session or a panic), or no answer in time
  2  usage error

Examples:
  panicstop kdb 4242                          look around, then continue
  panicstop kdb 4242 -c threads -c locks      who waits for whom
  panicstop kdb 4242 -c 'bt all'              every stack
)";

constexpr std::string_view kPrompt = "kdb> ";

// Copies the console's output to stdout. With a script, each prompt is
// printed with the command that answers it, so the transcript reads like a
// terminal session.
class Transcript {
 public:
  explicit Transcript(const std::vector<std::string>* script) : script_(script) {}

  // False when the console refused the session (its first line is "error ...").
  bool add(const char* data, size_t n) {
    pending_.append(data, n);
    if (!first_line_seen_) {
      size_t nl = pending_.find('\n');
      if (nl == std::string::npos) return true;
      first_line_seen_ = true;
      if (pending_.rfind("error", 0) == 0) {
        refusal_ = pending_.substr(0, nl);
        return false;
      }
    }
    size_t i = 0;
    while (i < pending_.size()) {
      if (script_ != nullptr && at_line_start_) {
        size_t avail = pending_.size() - i;
        if (avail < kPrompt.size() && kPrompt.compare(0, avail, std::string_view(pending_).substr(i)) == 0) break;
        if (std::string_view(pending_).substr(i, kPrompt.size()) == kPrompt) {
          std::cout << kPrompt << (next_ < script_->size() ? (*script_)[next_] : std::string()) << "\n";
          ++next_;
          i += kPrompt.size();
          continue;
        }
      }
      char c = pending_[i++];
      std::cout << c;
      at_line_start_ = c == '\n';
    }
    pending_.erase(0, i);
    std::cout << std::flush;
    return true;
  }

  void finish() {
    std::cout << pending_ << std::flush;
    pending_.clear();
  }
  bool started() const { return first_line_seen_; }
  const std::string& refusal() const { return refusal_; }

 private:
  const std::vector<std::string>* script_;
  std::string pending_;
  std::string refusal_;
  bool first_line_seen_ = false;
  bool at_line_start_ = true;
  size_t next_ = 0;
};

// Relays stdin to the socket (interactive) and the socket to stdout until the
// process closes the connection.
int converse(int fd, pid_t pid, const std::vector<std::string>* script, double timeout) {
  Transcript transcript(script);
  bool stdin_open = script == nullptr;
  char buf[8192];
  for (;;) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {0, POLLIN, 0}};
    // A silent process is given up on while an answer is due: always with a
    // script, interactively only until the console's first line.
    bool answer_due = script != nullptr || !transcript.started();
    int timeout_ms = answer_due ? int(timeout * 1000) : -1;
    int r = poll(fds, stdin_open ? 2 : 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) {
      std::cerr << "\npanicstop: " << silence_message(pid, timeout, transcript.started()) << "\n";
      return kExitFailure;
    }
    if (stdin_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      ssize_t n = read(0, buf, sizeof buf);
      if (n > 0) {
        send_all(fd, std::string(buf, size_t(n)));
      } else if (n == 0 || errno != EINTR) {
        stdin_open = false;
        send_all(fd, "continue\n");
      }
    }
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      if (!transcript.add(buf, size_t(n))) {
        std::string refusal = transcript.refusal();
        std::cerr << "panicstop: process " << pid << ": " << refusal.substr(refusal.rfind("error ", 0) == 0 ? 6 : 0)
                  << "\n";
        return kExitFailure;
      }
    }
  }
  transcript.finish();
  if (!transcript.started()) {
    std::cerr << "panicstop: process " << pid << " closed the connection without opening the console\n";
    return kExitFailure;
  }
  return kExitOk;
}

int run_kdb(const std::vector<std::string>& args) {
  std::vector<std::string> script;
  bool scripted = false;
  ControlArgs control;
  control.timeout = 30;
  int parsed = parse_control_args(kKdbCommand, args, {"-c"},
                                  [&](const std::string&, const std::string& value) {
                                    if (value.find('\n') != std::string::npos) return std::string("-c takes one command per -c");
                                    script.push_back(value);
                                    scripted = true;
                                    return std::string();
                                  },
                                  &control);
  if (parsed != kExitOk || control.help_printed) return parsed;
  pid_t pid = control.pid;
  double timeout = control.timeout;
  std::string request = "kdb";
  if (scripted) {
    script.push_back("continue");
    for (const std::string& command : script) request += "\n" + command;
  }
  int fd = open_control_connection(control, request);
  if (fd < 0) return kExitFailure;
  int status = converse(fd, pid, scripted ? &script : nullptr, timeout);
  close(fd);
  return status;
}

}  // namespace

const Command kKdbCommand = {
    "kdb",
    "stop a running process, look at its threads and locks, let it go on",
    "panicstop kdb PID [-c CMD]... [--socket PATH] [--timeout S]",
    kKdbHelp,
    run_kdb,
};

}  // namespace panicstop::tool
