#include "dump_command.hpp"

#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "control_client.hpp"

namespace panicstop::tool {

namespace {

constexpr std::string_view kDumpHelp = R"(Writes the dumps of a running process without ending it: the same text
report (*.txt) and ELF core (*.core) a panic writes, named
panicstop-COMM-PID-SECONDS.{txt,core}, and a minidump (*.dmp, marked as a
requested dump, not a crash) when the process's PANICSTOP_DUMP has minidump. The process stops every thread while
the snapshot is taken and the files are written, then goes on. No ptrace:
this works where gdb -p and gcore are refused (containers, Yama).
`panicstop show FILE` reads the dumps; the core opens in gdb with every thread.

Which processes: only those that called panicstop::install() (or run under
`panicstop run`) with their control socket on, and that belong to you (root
reaches every process). Children they fork without exec (a daemon, prefork
workers) listen on sockets of their own: give the child's pid. Anything else
gets a one-line error that says why.

Where the socket is: DIR/PID.sock, where DIR is the process's
PANICSTOP_KDB_SOCKET directory when its environment sets one, else
/tmp/panicstop-UID (UID: the process's user). PANICSTOP_KDB_SOCKET=0 in the
process turns the socket off.

Options:
  --dir DIR        where the process writes the files (made absolute here;
                   default: the process's PANICSTOP_DUMP_DIR or its current
                   directory, falling back to /tmp). The process writes them,
                   so DIR must be writable by its user.
  --socket PATH    connect to this socket instead of looking for it
  --timeout S      give up when the process has not answered for S seconds
                   (default 10)

Output: one line "panicstop: wrote PATH" per file, as the process writes it.

Exit status:
  0  at least one file was written
  1  failure: no such process, another user's process, no control socket,
     a stale socket (connection refused), permission denied, no answer in
     time, or the process wrote no file (its error line is printed)
  2  usage error

Examples:
  panicstop dump 4242
  panicstop dump 4242 --dir /var/crash
  panicstop show /var/crash/panicstop-server-4242-1764000000.txt
)";

int run_dump(const std::vector<std::string>& args) {
  std::string dir;
  ControlArgs control;
  int status = parse_control_args(kDumpCommand, args, {"--dir"},
                                  [&](const std::string&, const std::string& value) {
                                    dir = value;
                                    return std::string();
                                  },
                                  &control);
  if (status != kExitOk || control.help_printed) return status;
  if (!dir.empty()) dir = std::filesystem::absolute(dir).lexically_normal().string();
  if (dir.find('\n') != std::string::npos) return usage_error("dump", "dump: DIR contains a newline");
  pid_t pid = control.pid;
  double timeout = control.timeout;
  int fd = open_control_connection(control, dir.empty() ? "dump" : "dump " + dir);
  if (fd < 0) return kExitFailure;
  // Lines as they come; the last one is "ok N" or "error MESSAGE".
  std::string pending, last;
  bool answered = false;
  char buf[4096];
  for (;;) {
    if (!wait_for_input(fd, timeout)) {
      close(fd);
      std::cerr << "panicstop: " << silence_message(pid, timeout, answered) << "\n";
      return kExitFailure;
    }
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    answered = true;
    pending.append(buf, size_t(n));
    for (size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      if (line.rfind("ok ", 0) == 0 || line.rfind("error", 0) == 0) {
        last = line;
      } else {
        std::cout << line << "\n" << std::flush;
      }
    }
  }
  close(fd);
  if (last.rfind("ok ", 0) == 0) {
    long written = std::strtol(last.c_str() + 3, nullptr, 10);
    if (written > 0) return kExitOk;
    std::cerr << "panicstop: process " << pid << " wrote no dump file (is PANICSTOP_DUMP=none?)\n";
    return kExitFailure;
  }
  if (!last.empty()) {
    std::cerr << "panicstop: process " << pid << ": " << last.substr(last.rfind("error ", 0) == 0 ? 6 : 0) << "\n";
  } else {
    std::cerr << "panicstop: process " << pid << " closed the connection without an answer\n";
  }
  return kExitFailure;
}

}  // namespace

const Command kDumpCommand = {
    "dump",
    "write a live dump (.txt, .core) of a running process; it goes on",
    "panicstop dump PID [--dir DIR] [--socket PATH] [--timeout S]",
    kDumpHelp,
    run_dump,
};

}  // namespace panicstop::tool
