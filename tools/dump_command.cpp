#include "dump_command.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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
/tmp/panicstop-UID (UID: the process's user). A process that made its
socket as root and then became another user (a server's workers) has it
in /tmp/panicstop-0, where root finds it. PANICSTOP_KDB_SOCKET=0 in the
process turns the socket off.

Options:
  --dir DIR        where the files go (made absolute here; default: the
                   process's PANICSTOP_DUMP_DIR or its current directory,
                   falling back to /tmp). This command opens DIR and hands the
                   open directory to the process, so the files land in this
                   DIR even when the process cannot reach the path (it runs
                   chrooted, or it changed its user and DIR is under /root).
                   The process creates them with its own user's rights: DIR
                   must be writable by that user, except when root asks for
                   a process of another user (a server's workers that dropped
                   root, nginx's `user www-data`): then the process writes
                   into a directory of its own inside DIR, made here for it,
                   and this command moves each file into DIR and gives it to
                   root: only regular files under a dump's name
                   (panicstop-*), never over a file DIR has (the next free
                   number instead). Should the process still not manage, it
                   falls back to its /tmp and the line says so.
  --socket PATH    connect to this socket instead of looking for it
  --timeout S      give up when the process has not answered for S seconds
                   (default 10)

Output: one line "panicstop: wrote PATH" per file, as the process writes it.

Exit status:
  0  at least one file was written
  1  failure: DIR cannot be opened, no such process, another user's
     process, no control socket, a stale socket (connection refused),
     permission denied, no answer in time, or the process wrote no file
     (its error line is printed)
  2  usage error

Examples:
  panicstop dump 4242
  panicstop dump 4242 --dir /var/crash
  panicstop show /var/crash/panicstop-server-4242-1764000000.txt
)";

// Where a live dump's files are created: DIR itself, or, when root asks for
// a process of another user, a directory inside DIR made for that user, out
// of which each file is moved into DIR. Either way the process gets the
// directory as a descriptor (it may not reach DIR's path).
class DumpDestination {
 public:
  ~DumpDestination() { finish(); }

  // Opens DIR (and makes the staging directory when needed); false with a
  // message on stderr.
  bool open(const std::string& dir, pid_t pid) {
    dir_ = dir;
    dir_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd_ < 0) {
      std::cerr << "panicstop: cannot open the dump directory " << dir << ": " << strerror(errno) << "\n";
      return false;
    }
    uid_t uid = 0;
    gid_t gid = 0;
    if (geteuid() != 0 || !process_file_ids(pid, &uid, &gid) || uid == 0) return true;
    std::string pattern = dir + (dir == "/" ? "" : "/") + ".panicstop-dump-" + std::to_string(pid) + "-XXXXXX";
    std::vector<char> name(pattern.begin(), pattern.end());
    name.push_back('\0');
    if (mkdtemp(name.data()) == nullptr) {
      std::cerr << "panicstop: cannot make a directory for process " << pid << "'s files in " << dir << ": "
                << strerror(errno) << "\n";
      return false;
    }
    staging_ = name.data();
    staging_fd_ = ::open(staging_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (staging_fd_ < 0 || fchown(staging_fd_, uid, gid) != 0) {
      std::cerr << "panicstop: cannot give " << staging_ << " to uid " << uid << ": " << strerror(errno) << "\n";
      return false;
    }
    return true;
  }

  // What the process is told: the path it names its files by (DIR, also
  // when they are created in the staging directory: the lines it writes on
  // its own stderr name where the files end up), and the descriptor it
  // creates them in.
  std::string request_dir() const { return dir_; }
  int request_fd() const { return staging_fd_ >= 0 ? staging_fd_ : dir_fd_; }

  // One line from the process, as the user should read it: a file written
  // into the staging directory is moved into DIR first.
  std::string take_line(const std::string& line) {
    if (staging_.empty()) return line;
    static const std::string kWrote = "panicstop: wrote ";
    std::string prefix = kWrote + dir_ + (dir_ == "/" ? "" : "/");
    if (line.rfind(prefix, 0) != 0) return line;
    std::string name = line.substr(prefix.size());
    struct stat st {};
    if (name.find('/') != std::string::npos ||
        fstatat(staging_fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      // Not in the staging directory: a process that predates the passed
      // descriptor wrote it by the path itself.
      return line;
    }
    // The process chooses the name and root moves the file: only a file it
    // made itself (not a link it may have put there in its place), under a
    // dump's name, and never over a file DIR has (its own earlier dump of
    // the same second gets the next free number, as the process would give).
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1)
      return line + " (left in " + staging_ + ": not a file of its own)";
    if (name.rfind("panicstop-", 0) != 0) return line + " (left in " + staging_ + ": not a dump's name)";
    std::string target = name;
    int moved = renameat2(staging_fd_, name.c_str(), dir_fd_, target.c_str(), RENAME_NOREPLACE);
    for (int n = 2; moved != 0 && errno == EEXIST && n < 100; ++n) {
      size_t dot = name.find('.', name.rfind('-'));
      target = name.substr(0, dot) + "-" + std::to_string(n) + (dot == std::string::npos ? "" : name.substr(dot));
      moved = renameat2(staging_fd_, name.c_str(), dir_fd_, target.c_str(), RENAME_NOREPLACE);
    }
    if (moved != 0)
      return line + " (still in " + staging_ + ": could not move it into " + dir_ + ": " + strerror(errno) + ")";
    // The one who asked owns the dump, as with a core root writes.
    fchownat(dir_fd_, target.c_str(), geteuid(), getegid(), AT_SYMLINK_NOFOLLOW);
    return target == name ? line : prefix + target;
  }

 private:
  // Removes the staging directory with what an interrupted writer left in
  // it (a hidden .tmp file); a file that could not be moved keeps it.
  void finish() {
    if (staging_fd_ >= 0) {
      std::error_code ec;
      for (const auto& entry : std::filesystem::directory_iterator(staging_, ec)) {
        std::string name = entry.path().filename().string();
        if (name.size() > 4 && name[0] == '.' && name.compare(name.size() - 4, 4, ".tmp") == 0)
          unlinkat(staging_fd_, name.c_str(), 0);
      }
      close(staging_fd_);
      if (rmdir(staging_.c_str()) != 0 && errno == ENOTEMPTY)
        std::cerr << "panicstop: " << staging_ << " keeps the files that could not be moved\n";
    } else if (!staging_.empty()) {
      rmdir(staging_.c_str());
    }
    if (dir_fd_ >= 0) close(dir_fd_);
    staging_fd_ = dir_fd_ = -1;
  }

  std::string dir_, staging_;
  int dir_fd_ = -1, staging_fd_ = -1;
};

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
  DumpDestination destination;
  if (!dir.empty() && !destination.open(dir, pid)) return kExitFailure;
  std::string request = dir.empty() ? "dump" : "dump " + destination.request_dir();
  int fd = open_control_connection(control, request, dir.empty() ? -1 : destination.request_fd());
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
        std::cout << destination.take_line(line) << "\n" << std::flush;
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
    std::cerr << "panicstop: process " << pid << ": "
              << destination.take_line(last.substr(last.rfind("error ", 0) == 0 ? 6 : 0)) << "\n";
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
