// Serving the control socket (control_socket.hpp). Runs in a signal handler
// on whichever thread took kdb_request_signal(): raw system calls only.
#include "kdb/control_socket.hpp"

#include <atomic>
#include <csignal>
#include <ctime>
#include <sys/socket.h>

#include "kdb/console.hpp"
#include "kdb/session.hpp"
#include "panic/tunables.hpp"
#include "sys/format.hpp"
#include "sys/syscall.hpp"
#include "thread/program_signals.hpp"
#include "thread/signal_sections.hpp"

namespace panicstop::detail {

// Set by the setup (control_socket_setup.cpp) before the signal is armed.
int g_control_listen_fd = -1;
char g_control_path[256];

namespace {

std::atomic<bool> g_deferred{false};

inline constexpr int64_t kRequestTimeoutNs = 5'000'000'000;
// A client that stops reading must not keep the process stopped for good.
inline constexpr long kSendTimeoutSeconds = 10;

bool peer_allowed(int fd, unsigned* peer_uid) noexcept {
  struct ucred cred {};
  unsigned size = sizeof cred;
  if (sys::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &size) != 0) return false;
  *peer_uid = cred.uid;
  return cred.uid == 0 || long(cred.uid) == sys::raw_syscall(SYS_geteuid);
}

// One line, byte by byte: whatever follows it (console commands) stays in
// the socket for the console. Returns its length, or -1 on timeout, end of
// input or a line too long.
long read_line(int fd, char* buf, size_t cap) noexcept {
  int64_t deadline = sys::monotonic_ns() + kRequestTimeoutNs;
  size_t n = 0;
  for (;;) {
    int64_t left = deadline - sys::monotonic_ns();
    if (left <= 0 || sys::wait_readable(fd, left) != 1) return -1;
    char c;
    if (sys::read(fd, &c, 1) != 1) return -1;
    if (c == '\n') break;
    if (n + 1 >= cap) return -1;
    if (c != '\r') buf[n++] = c;
  }
  buf[n] = '\0';
  return long(n);
}

const char* busy_message() noexcept {
  return "error busy: another kdb session, live dump or a panic is in progress";
}

// Both serve on `given` (the panic's session) when it is not null, else in a
// session of their own.
void serve_dump(int fd, const char* dir, KdbSession* given) noexcept {
  if (dir[0] != '\0' && dir[0] != '/') {
    sys::write_line(fd, "error the dump directory must be an absolute path, not '%s'", dir);
    return;
  }
  if (given != nullptr) {
    sys::write_line(fd, "ok %d", session_write_dumps(given, dir, fd));
    return;
  }
  KdbSession session;
  SessionStart start = begin_session(&session, "live dump: requested by panicstop dump");
  if (start != SessionStart::kStarted) {
    sys::write_line(fd, "%s", start == SessionStart::kBusy ? busy_message() : "error panicstop is not installed");
    return;
  }
  int written = session_write_dumps(&session, dir, fd);
  end_session(&session);
  sys::write_line(fd, "ok %d", written);
}

void serve_console(int fd, KdbSession* given) noexcept {
  int64_t idle_ns = int64_t(tunables().kdb_idle_ms) * 1000000;
  if (given != nullptr) {
    run_console(given, fd, fd, idle_ns);
    return;
  }
  KdbSession session;
  SessionStart start = begin_session(&session, "kdb: requested by panicstop kdb");
  if (start != SessionStart::kStarted) {
    sys::write_line(fd, "%s", start == SessionStart::kBusy ? busy_message() : "error panicstop is not installed");
    return;
  }
  run_console(&session, fd, fd, idle_ns);
  end_session(&session);
}

// Everything written to the connection while serving it (console output,
// reports) must not end the process if the client goes away: SIGPIPE stays
// blocked meanwhile, and one raised here is consumed before the mask is
// restored. A SIGPIPE the thread already had pending is left alone.
class SigpipeGuard {
 public:
  SigpipeGuard() noexcept {
    uint64_t pipe = bit();
    sys::rt_sigprocmask(SIG_BLOCK, &pipe, &old_mask_);
    uint64_t pending = 0;
    sys::raw_syscall(SYS_rt_sigpending, &pending, 8);
    was_pending_ = (pending & pipe) != 0;
  }
  ~SigpipeGuard() {
    if (!was_pending_) {
      uint64_t pipe = bit();
      struct timespec zero = {0, 0};
      sys::raw_syscall(SYS_rt_sigtimedwait, &pipe, nullptr, &zero, 8);
    }
    sys::rt_sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  static uint64_t bit() noexcept { return uint64_t(1) << (SIGPIPE - 1); }
  uint64_t old_mask_ = 0;
  bool was_pending_ = false;
};

void serve_connection(int fd, KdbSession* given) noexcept {
  SigpipeGuard no_sigpipe;
  struct timeval send_timeout = {kSendTimeoutSeconds, 0};
  sys::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
  unsigned uid = 0;
  if (!peer_allowed(fd, &uid)) {
    sys::write_line(fd, "error permission denied: uid %u does not own process %d", uid, sys::getpid());
    return;
  }
  char line[300];
  if (read_line(fd, line, sizeof line) < 0) {
    sys::write_line(fd, "error no request line within %lld s", static_cast<long long>(kRequestTimeoutNs / 1000000000));
    return;
  }
  if (sys::equals(line, "dump")) {
    serve_dump(fd, "", given);
  } else if (sys::starts_with(line, "dump ")) {
    serve_dump(fd, line + 5, given);
  } else if (sys::equals(line, "kdb")) {
    serve_console(fd, given);
  } else {
    sys::write_line(fd, "error unknown request '%s'; expected 'dump [DIR]' or 'kdb'", line);
  }
}

}  // namespace

const char* control_socket_path() noexcept { return g_control_listen_fd >= 0 ? g_control_path : ""; }

void serve_control_requests() noexcept {
  if (g_control_listen_fd < 0) return;
  // Another thread's session is running: this thread is one it could not
  // stop. Leave the connection queued; end_session() serves it.
  if (session_active()) {
    g_deferred.store(true, std::memory_order_release);
    return;
  }
  for (;;) {
    long fd = sys::accept4(g_control_listen_fd, SOCK_CLOEXEC);
    if (fd < 0) break;  // EAGAIN: nothing more is waiting
    serve_connection(int(fd), nullptr);
    sys::close(int(fd));
  }
}

bool serve_one_connection(KdbSession* session, int64_t timeout_ns) noexcept {
  if (g_control_listen_fd < 0 || sys::wait_readable(g_control_listen_fd, timeout_ns) != 1) return false;
  long fd = sys::accept4(g_control_listen_fd, SOCK_CLOEXEC);
  if (fd < 0) return false;
  serve_connection(int(fd), session);
  sys::close(int(fd));
  return true;
}

void serve_deferred_requests() noexcept {
  if (g_deferred.exchange(false, std::memory_order_acq_rel)) send_own_signal(0, kdb_request_signal());
}

}  // namespace panicstop::detail
