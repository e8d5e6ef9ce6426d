#include "control_client.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <iostream>
#include <sstream>

namespace panicstop::tool {

namespace {

// Field `index` (0 real, 1 effective, 2 saved, 3 file system) of the line
// `name` ("Uid:" or "Gid:") of /proc/PID/status.
bool status_id(pid_t pid, const std::string& name, int index, unsigned long* id) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0) continue;
    std::istringstream fields(line.substr(name.size()));
    for (int i = 0; i <= index; ++i)
      if (!(fields >> *id)) return false;
    return true;
  }
  return false;
}

// The effective uid: the uid the process made its socket directory with.
bool process_uid(pid_t pid, uid_t* uid) {
  unsigned long id = 0;
  if (!status_id(pid, "Uid:", 1, &id)) return false;
  *uid = uid_t(id);
  return true;
}

// PANICSTOP_KDB_SOCKET as the process saw it at start; false when unset or
// unreadable.
bool process_socket_setting(pid_t pid, std::string* value) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  static const std::string kName = "PANICSTOP_KDB_SOCKET=";
  for (std::string entry; std::getline(in, entry, '\0');) {
    if (entry.rfind(kName, 0) == 0) {
      *value = entry.substr(kName.size());
      return true;
    }
  }
  return false;
}

// /proc/PID/status's field `name` ("SigBlk:", ...) as a signal mask.
bool status_mask(const std::string& status_path, const std::string& name, uint64_t* mask) {
  std::ifstream in(status_path);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0) continue;
    *mask = std::stoull(line.substr(name.size()), nullptr, 16);
    return true;
  }
  return false;
}

// The state letter of /proc/PID/stat ('R', 'S', 'T', ...), or '?'.
char process_state(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() ? stat[close + 2] : '?';
}

// The descriptors open in the process and its RLIMIT_NOFILE soft limit;
// false when /proc does not tell (another user's process, no /proc).
bool descriptor_use(pid_t pid, uint64_t* open, uint64_t* limit) {
  std::string dir = "/proc/" + std::to_string(pid);
  std::ifstream in(dir + "/limits");
  bool found = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Max open files", 0) != 0) continue;
    std::istringstream fields(line.substr(14));
    found = static_cast<bool>(fields >> *limit);  // "unlimited" does not parse
  }
  if (!found) return false;
  std::error_code ec;
  *open = 0;
  for (std::filesystem::directory_iterator it(dir + "/fd", ec), end; !ec && it != end; it.increment(ec)) ++*open;
  return !ec;
}

// The mapped file of the library (libpanicstop.so or the preload library),
// or "" when none is mapped.
std::string mapped_library(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  for (std::string line; std::getline(in, line);) {
    size_t slash = line.rfind('/');
    if (slash != std::string::npos && line.compare(slash, 13, "/libpanicstop") == 0) return line.substr(line.find('/'));
  }
  return "";
}

// Does the program's executable carry the library (linked statically)? A
// message only the library prints stands for it, symbols or not. nullopt:
// the executable cannot be read.
std::optional<bool> executable_has_library(pid_t pid) {
  static const std::string kMarker = "panicstop: kdb control socket off";
  std::ifstream in("/proc/" + std::to_string(pid) + "/exe", std::ios::binary);
  if (!in) return std::nullopt;
  std::string window;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    window.append(buf, size_t(in.gcount()));
    if (window.find(kMarker) != std::string::npos) return true;
    if (window.size() > kMarker.size()) window.erase(0, window.size() - kMarker.size());
  }
  return false;
}

// A socket of this pid in another /tmp/panicstop-UID directory: the process
// made it before it changed its user (a server that drops root after fork).
std::string socket_elsewhere(pid_t pid, const std::string& looked_at) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/tmp", ec)) {
    if (entry.path().filename().string().rfind("panicstop-", 0) != 0) continue;
    std::string candidate = entry.path().string() + "/" + std::to_string(pid) + ".sock";
    struct stat st {};
    if (candidate != looked_at && lstat(candidate.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) return candidate;
  }
  return "";
}

// No socket at `path`: says which of the reasons it is.
std::string no_socket_message(pid_t pid, const std::string& path) {
  std::string p = "process " + std::to_string(pid);
  std::string elsewhere = socket_elsewhere(pid, path);
  if (!elsewhere.empty())
    return p + " has no socket at " + path + " but one at " + elsewhere +
           " (made before it changed its user); use --socket " + elsewhere;
  std::string reasons = ": its socket is off (PANICSTOP_KDB_SOCKET=0), in another directory (PANICSTOP_KDB_SOCKET "
                        "set after it started), or install() has not run yet; --socket PATH names it";
  std::string library = mapped_library(pid);
  if (!library.empty()) return p + " loaded panicstop (" + library + ") but has no socket at " + path + reasons;
  std::optional<bool> linked = executable_has_library(pid);
  if (linked == true)
    return p + " is built with panicstop (linked statically) but has no socket at " + path + reasons;
  std::string maps = "/proc/" + std::to_string(pid) + "/maps";
  if (linked == false)
    return p + " does not run panicstop: no libpanicstop in " + maps +
           ", none linked into its executable, and no socket at " + path;
  return p + " does not run panicstop: no libpanicstop in " + maps + " and no socket at " + path +
         " (or it links panicstop statically with its socket off: its executable cannot be read to tell)";
}

}  // namespace

bool process_file_ids(pid_t pid, uid_t* uid, gid_t* gid) {
  unsigned long u = 0, g = 0;
  if (!status_id(pid, "Uid:", 3, &u) || !status_id(pid, "Gid:", 3, &g)) return false;
  *uid = uid_t(u);
  *gid = gid_t(g);
  return true;
}

bool parse_pid(const std::string& text, pid_t* pid) {
  if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != std::string::npos) return false;
  long value = std::stol(text);
  if (value <= 0) return false;
  *pid = pid_t(value);
  return true;
}

bool parse_seconds(const std::string& text, double* seconds) {
  char* end = nullptr;
  errno = 0;
  double value = strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno != 0 || !std::isfinite(value) || value <= 0) return false;
  *seconds = value;
  return true;
}

bool locate_control_socket(pid_t pid, const std::string& socket_override, ControlTarget* target,
                           std::string* error) {
  target->pid = pid;
  if (kill(pid, 0) != 0 && errno == ESRCH) {
    *error = "no process with pid " + std::to_string(pid);
    return false;
  }
  if (!process_uid(pid, &target->uid)) {
    *error = "no process with pid " + std::to_string(pid) + " (cannot read /proc/" + std::to_string(pid) + "/status)";
    return false;
  }
  uid_t self = geteuid();
  if (self != 0 && self != target->uid) {
    *error = "process " + std::to_string(pid) + " belongs to uid " + std::to_string(target->uid) +
             "; run as that user or root";
    return false;
  }
  if (!socket_override.empty()) {
    target->socket_path = socket_override;
    return true;
  }
  std::string dir = "/tmp/panicstop-" + std::to_string(target->uid);
  std::string setting;
  if (process_socket_setting(pid, &setting) && !setting.empty() && setting != "1") {
    if (setting == "0") {
      *error = "process " + std::to_string(pid) + " turned its control socket off (PANICSTOP_KDB_SOCKET=0)";
      return false;
    }
    dir = setting;
  }
  target->socket_path = dir + "/" + std::to_string(pid) + ".sock";
  struct stat st {};
  if (lstat(target->socket_path.c_str(), &st) != 0) {
    if (errno == EACCES) {
      *error = "permission denied: cannot look into " + dir;
      return false;
    }
    // A server that made its socket as root and then became another user
    // (nginx's workers, `user www-data`): root may use that one.
    std::string elsewhere = self == 0 ? socket_elsewhere(pid, target->socket_path) : "";
    if (elsewhere.empty()) {
      *error = no_socket_message(pid, target->socket_path);
      return false;
    }
    target->socket_path = elsewhere;
    target->found_elsewhere = true;
    return true;
  }
  if (!S_ISSOCK(st.st_mode)) {
    *error = target->socket_path + " is not a socket";
    return false;
  }
  return true;
}

int connect_control_socket(const ControlTarget& target, const std::string& request, std::string* error,
                           int pass_fd) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (target.socket_path.size() >= sizeof addr.sun_path) {
    *error = "socket path too long: " + target.socket_path;
    return -1;
  }
  std::memcpy(addr.sun_path, target.socket_path.c_str(), target.socket_path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + strerror(errno);
    return -1;
  }
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    close(fd);
    std::string where = "cannot connect to " + target.socket_path + ": ";
    if (e == ECONNREFUSED)
      *error = where + "connection refused (a stale socket: nobody listens on it; process " +
               std::to_string(target.pid) + " did not make it, or closed it: a file left by an earlier process " +
               "with this pid, or by a forked child that then ran another program)";
    else if (e == EACCES || e == EPERM)
      *error = where + "permission denied (the socket belongs to another user)";
    else if (e == ENOENT)
      *error = no_socket_message(target.pid, target.socket_path);
    else
      *error = where + strerror(e);
    return -1;
  }
  // A socket found by its name's pid in another user's directory must be
  // the process's own (a file left by an earlier process with this pid has
  // nobody listening; one whose listener lives on in a forked child is not
  // this process's).
  ucred peer{};
  socklen_t size = sizeof peer;
  if (target.found_elsewhere &&
      (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &size) != 0 || peer.pid != target.pid)) {
    *error = target.socket_path + " is not the socket of process " + std::to_string(target.pid) +
             " (its listener is process " + std::to_string(peer.pid) + ")";
    close(fd);
    return -1;
  }
  if (!send_request(fd, request + "\n", pass_fd)) {
    *error = "cannot send the request to " + target.socket_path + ": " + strerror(errno);
    close(fd);
    return -1;
  }
  return fd;
}

std::string silence_message(pid_t pid, double seconds, bool answered_before) {
  std::ostringstream out;
  out << "process " << pid << " did not answer within " << seconds << " s";
  if (answered_before) return out.str();
  std::string status = "/proc/" + std::to_string(pid) + "/status";
  uint64_t bit = uint64_t(1) << (SIGRTMAX - 5 - 1), ignored = 0, caught = 0;
  char state = process_state(pid);
  bool all_block = true, any_thread = false;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    uint64_t blocked = 0;
    if (!status_mask(task.path().string() + "/status", "SigBlk:", &blocked)) continue;
    any_thread = true;
    all_block = all_block && (blocked & bit) != 0;
  }
  if (state == 'T' || state == 't')
    out << ": it is stopped (state " << state << ": job control or a debugger); resume it with kill -CONT " << pid;
  else if (status_mask(status, "SigIgn:", &ignored) && (ignored & bit) != 0)
    out << ": it ignores SIGRTMAX-5, the signal that announces a connection";
  else if (status_mask(status, "SigCgt:", &caught) && (caught & bit) == 0)
    out << ": nothing in it handles SIGRTMAX-5, the signal that announces a connection (is the socket panicstop's?)";
  else if (any_thread && all_block)
    out << ": every thread blocks SIGRTMAX-5, the signal that announces a connection; one must leave it unblocked";
  else if (uint64_t open = 0, limit = 0; descriptor_use(pid, &open, &limit) && open >= limit)
    out << ": it has no descriptor left to accept the connection with (" << open
        << " open, RLIMIT_NOFILE " << limit << "), and the ones panicstop holds back for live dumps are gone (the "
        << "program closed them, or a request still holds them); a crash still writes its dumps, from descriptors "
        << "panicstop holds back for it";
  else
    out << ": the thread that took the connection signal has not served it (a panic or a long session in progress?)";
  return out.str();
}

bool wait_for_input(int fd, double seconds) {
  pollfd p{fd, POLLIN, 0};
  int timeout_ms = seconds < 0 ? -1 : int(std::ceil(seconds * 1000));
  for (;;) {
    int r = poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    return r != 0;  // an error: let the read report it
  }
}

bool send_request(int fd, const std::string& text, int pass_fd) {
  if (pass_fd < 0) return send_all(fd, text);
  // The descriptor travels with the whole line, in one message: a reader
  // that peeks (the process's control socket) sees no further than the end
  // of a message that carries descriptors.
  iovec iov{const_cast<char*>(text.data()), text.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &pass_fd, sizeof pass_fd);
  ssize_t n;
  do n = sendmsg(fd, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n > 0 && send_all(fd, text.substr(size_t(n)));
}

bool send_all(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = send(fd, text.data() + done, text.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += size_t(n);
  }
  return true;
}

int parse_control_args(const Command& command, const std::vector<std::string>& args,
                       const std::vector<std::string>& own_options,
                       const std::function<std::string(const std::string&, const std::string&)>& own,
                       ControlArgs* out) {
  const std::string name(command.name);
  std::string pid_text;
  auto is_own = [&](const std::string& a) {
    for (const auto& o : own_options)
      if (a == o) return true;
    return false;
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::cout << "Usage: " << command.usage << "\n\n" << command.help;
      out->help_printed = true;
      return kExitOk;
    }
    if (a == "--socket" || a == "--timeout" || is_own(a)) {
      if (i + 1 >= args.size()) return usage_error(name, name + ": " + a + " needs a value");
      const std::string& value = args[++i];
      if (a == "--socket") {
        out->socket_override = value;
      } else if (a == "--timeout") {
        if (!parse_seconds(value, &out->timeout))
          return usage_error(name, name + ": --timeout takes a positive number of seconds, not '" + value + "'");
      } else if (std::string error = own(a, value); !error.empty()) {
        return usage_error(name, name + ": " + error);
      }
    } else if (a.size() > 1 && a[0] == '-') {
      return usage_error(name, name + ": unknown option '" + a + "'");
    } else if (pid_text.empty()) {
      pid_text = a;
    } else {
      return usage_error(name, name + ": takes one PID, got '" + pid_text + "' and '" + a + "'");
    }
  }
  if (pid_text.empty()) return usage_error(name, name + ": missing PID");
  if (!parse_pid(pid_text, &out->pid))
    return usage_error(name, name + ": PID must be a process id, not '" + pid_text + "'");
  return kExitOk;
}

int open_control_connection(const ControlArgs& args, const std::string& request, int pass_fd) {
  ControlTarget target;
  std::string error;
  int fd = -1;
  if (locate_control_socket(args.pid, args.socket_override, &target, &error))
    fd = connect_control_socket(target, request, &error, pass_fd);
  if (fd < 0) std::cerr << "panicstop: " << error << "\n";
  return fd;
}

}  // namespace panicstop::tool
