// Serving the control socket (control_socket.hpp). Runs in a signal handler
// on whichever thread took kdb_request_signal(): raw system calls only.
#include "kdb/control_socket.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <ctime>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "kdb/console.hpp"
#include "kdb/session.hpp"
#include "kdb/kdb_options.hpp"
#include "sys/fd_reserve.hpp"
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
// Which socket g_control_listen_fd was when it was published.
uint64_t g_control_dev = 0, g_control_ino = 0;
std::atomic<bool> g_lost_said{false};

// The panic's debugger waits this long for the request line: its threads are
// stopped for good anyway.
inline constexpr int64_t kRequestTimeoutNs = 5'000'000'000;
// A connection that has not sent its line is never waited for: it waits in
// g_pending, and one still silent after this long is answered and closed.
inline constexpr int64_t kPendingDeadlineNs = 2'000'000'000;
// A client that stops reading must not keep the process stopped for good.
inline constexpr long kSendTimeoutSeconds = 10;
// The request line's room, its newline included.
inline constexpr size_t kMaxLine = 300;

struct PendingConnection {
  int fd;  // -1: free
  int64_t accepted_ns;
};
inline constexpr int kMaxPending = 8;
PendingConnection g_pending[kMaxPending] = {
    {-1, 0}, {-1, 0}, {-1, 0}, {-1, 0}, {-1, 0}, {-1, 0}, {-1, 0}, {-1, 0},
};
// Descriptors closed lately: a signal the kernel queued for one before it was
// closed may still arrive, and it is ours, not the program's.
inline constexpr int kRecentClosed = 16;
std::atomic<int> g_recent_closed[kRecentClosed];
std::atomic<unsigned> g_recent_next{0};
// Signals taken while another thread serves: that thread makes one more pass.
std::atomic<unsigned> g_serve_requests{0};

void close_connection(int fd) noexcept {
  g_recent_closed[g_recent_next.fetch_add(1, std::memory_order_relaxed) % kRecentClosed].store(
      fd + 1, std::memory_order_relaxed);
  sys::close(fd);
}

bool peer_allowed(int fd, unsigned* peer_uid) noexcept {
  struct ucred cred {};
  unsigned size = sizeof cred;
  if (sys::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &size) != 0) return false;
  *peer_uid = cred.uid;
  return cred.uid == 0 || long(cred.uid) == sys::raw_syscall(SYS_geteuid);
}

// recvfrom(), and the descriptor a requester may pass with the bytes
// (SCM_RIGHTS: `panicstop dump --dir` sends the directory it opened). The
// first one passed goes to *passed if that is still -1; any other is closed.
long receive(int fd, char* buf, size_t len, int flags, int* passed) noexcept {
  struct iovec iov = {buf, len};
  alignas(struct cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  long n = sys::raw_syscall(SYS_recvmsg, fd, &msg, flags | MSG_CMSG_CLOEXEC);
  if (n < 0) return n;
  // One sendmsg's descriptors arrive as one header; more than fit were
  // closed by the kernel (MSG_CTRUNC).
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (c != nullptr && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int got;
      __builtin_memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
      if (*passed < 0) *passed = got;
      else sys::close(got);
    }
  }
  return n;
}

enum class LineState { kComplete, kIncomplete, kTooLong, kGone };

// Takes the request line if all of it is in the socket now, and nothing
// after it: whatever follows (console commands) stays for the console.
LineState take_line_if_complete(int fd, char* buf, size_t cap, int* passed) noexcept {
  long n = sys::raw_syscall(SYS_recvfrom, fd, buf, cap, MSG_PEEK | MSG_DONTWAIT, nullptr, nullptr);
  if (n == -EAGAIN || n == -EINTR) return LineState::kIncomplete;
  if (n <= 0) return LineState::kGone;
  long end = 0;
  while (end < n && buf[end] != '\n') ++end;
  if (end == n) return size_t(n) >= cap ? LineState::kTooLong : LineState::kIncomplete;
  if (receive(fd, buf, size_t(end + 1), MSG_DONTWAIT, passed) != end + 1) return LineState::kGone;
  if (end > 0 && buf[end - 1] == '\r') --end;
  buf[end] = '\0';
  return LineState::kComplete;
}

// The panic's debugger: one line, waited for, byte by byte (a peek would see
// a partial line as readable over and over). -1: timeout or hang-up, -2: too
// long.
long read_line(int fd, char* buf, size_t cap, int* passed) noexcept {
  int64_t deadline = sys::monotonic_ns() + kRequestTimeoutNs;
  size_t n = 0;
  for (;;) {
    int64_t left = deadline - sys::monotonic_ns();
    if (left <= 0 || sys::wait_readable(fd, left) != 1) return -1;
    char c;
    if (receive(fd, &c, 1, 0, passed) != 1) return -1;
    if (c == '\n') break;
    if (n + 1 >= cap) return -2;
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
// dir_fd: the directory as the requester opened it, or -1 (see receive()).
void serve_dump(int fd, const char* dir, KdbSession* given, int dir_fd) noexcept {
  if (dir[0] != '\0' && dir[0] != '/') {
    sys::write_line(fd, "error the dump directory must be an absolute path, not '%s'", dir);
    return;
  }
  struct stat st {};
  if (dir_fd >= 0 && (dir[0] == '\0' || sys::raw_syscall(SYS_fstat, dir_fd, &st) != 0 || !S_ISDIR(st.st_mode))) {
    sys::write_line(fd, "error the descriptor passed with the request is not the directory '%s'", dir);
    return;
  }
  if (given != nullptr) {
    sys::write_line(fd, "ok %d", session_write_dumps(given, dir, fd, dir_fd));
    return;
  }
  KdbSession session;
  SessionStart start = begin_session(&session, "live dump: requested by panicstop dump");
  if (start != SessionStart::kStarted) {
    sys::write_line(fd, "%s", start == SessionStart::kBusy ? busy_message() : "error panicstop is not installed");
    return;
  }
  int written = session_write_dumps(&session, dir, fd, dir_fd);
  end_session(&session);
  sys::write_line(fd, "ok %d", written);
}

void serve_console(int fd, KdbSession* given) noexcept {
  int64_t idle_ns = int64_t(kdb_options().idle_ms) * 1000000;
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

void prepare_reply(int fd) noexcept {
  struct timeval send_timeout = {kSendTimeoutSeconds, 0};
  sys::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
}

bool refuse_stranger(int fd) noexcept {
  unsigned uid = 0;
  if (peer_allowed(fd, &uid)) return false;
  sys::write_line(fd, "error permission denied: uid %u does not own process %d", uid, sys::getpid());
  return true;
}

// passed: a descriptor that came with the line, or -1; closed here.
void serve_request(int fd, const char* line, KdbSession* given, int passed) noexcept {
  if (sys::equals(line, "dump")) {
    serve_dump(fd, "", given, passed);
  } else if (sys::starts_with(line, "dump ")) {
    serve_dump(fd, line + 5, given, passed);
  } else if (sys::equals(line, "kdb")) {
    serve_console(fd, given);
  } else {
    sys::write_line(fd, "error unknown request '%s'; expected 'dump [DIR]' or 'kdb'", line);
  }
  if (passed >= 0) sys::close(passed);
}

void too_long(int fd) noexcept {
  sys::write_line(fd, "error request line too long (at most %zu bytes)", kMaxLine - 1);
}

// The panic's debugger: its session's threads are stopped for good, so the
// request line is waited for here.
void serve_connection(int fd, KdbSession* given) noexcept {
  SigpipeGuard no_sigpipe;
  prepare_reply(fd);
  if (refuse_stranger(fd)) return;
  char line[kMaxLine];
  int passed = -1;
  long n = read_line(fd, line, sizeof line, &passed);
  if (n == -2) too_long(fd);
  else if (n < 0)
    sys::write_line(fd, "error no request line within %lld s", static_cast<long long>(kRequestTimeoutNs / 1000000000));
  else {
    serve_request(fd, line, given, passed);
    return;
  }
  if (passed >= 0) sys::close(passed);
}

// From here on the kernel signals the process whenever the client writes:
// the handler comes back for the line instead of waiting for it.
bool arm_connection(int fd) noexcept {
  return sys::raw_syscall(SYS_fcntl, fd, F_SETOWN, sys::getpid()) == 0 &&
         sys::raw_syscall(SYS_fcntl, fd, F_SETSIG, kdb_request_signal()) == 0 &&
         sys::raw_syscall(SYS_fcntl, fd, F_SETFL, O_NONBLOCK | O_ASYNC) == 0;
}

// Serves and closes a pending connection whose line has come, or that is
// gone, too long or past its deadline. Returns whether the slot is free.
bool try_pending(PendingConnection* p, int64_t now) noexcept {
  char line[kMaxLine];
  int passed = -1;
  LineState state = take_line_if_complete(p->fd, line, sizeof line, &passed);
  if (state == LineState::kIncomplete && now - p->accepted_ns < kPendingDeadlineNs) return false;
  int fd = p->fd;
  p->fd = -1;
  SigpipeGuard no_sigpipe;
  if (state == LineState::kComplete) {
    // The console reads and writes blocking; signals for its input are not wanted.
    sys::raw_syscall(SYS_fcntl, fd, F_SETFL, 0);
    serve_request(fd, line, nullptr, passed);
    passed = -1;
  } else if (state == LineState::kTooLong) {
    too_long(fd);
  } else if (state == LineState::kIncomplete) {
    sys::write_line(fd, "error no request line within %lld s",
                    static_cast<long long>(kPendingDeadlineNs / 1000000000));
  }
  if (passed >= 0) sys::close(passed);
  close_connection(fd);
  return true;
}

PendingConnection* free_slot() noexcept {
  for (auto& p : g_pending)
    if (p.fd < 0) return &p;
  return nullptr;
}

// At the descriptor limit the live dump's reserve makes room for the
// connection and a descriptor passed with its line (sys/fd_reserve.hpp).
long accept_request(int flags) noexcept {
  long fd = sys::accept4(g_control_listen_fd, flags);
  if ((fd == -EMFILE || fd == -ENFILE) && sys::release_live_fds(2) > 0) fd = sys::accept4(g_control_listen_fd, flags);
  return fd;
}

bool any_pending() noexcept {
  for (const auto& p : g_pending)
    if (p.fd >= 0) return true;
  return false;
}

// One pass: every pending connection, then every new one.
void serve_pass() noexcept {
  for (auto& p : g_pending)
    if (p.fd >= 0) try_pending(&p, sys::monotonic_ns());
  for (;;) {
    long accepted = accept_request(SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (accepted < 0) break;  // EAGAIN: nothing more is waiting
    int fd = int(accepted);
    PendingConnection* slot = free_slot();
    {
      SigpipeGuard no_sigpipe;
      prepare_reply(fd);
      if (refuse_stranger(fd) || slot == nullptr || !arm_connection(fd)) {
        if (slot == nullptr) sys::write_line(fd, "%s", "error busy: too many connections waiting for their request");
        close_connection(fd);
        continue;
      }
    }
    *slot = {fd, sys::monotonic_ns()};
    // Armed after the client may have written: look now, not at a signal.
    try_pending(slot, slot->accepted_ns);
  }
  // What the connections used goes back to the reserve once they are closed.
  if (!any_pending()) sys::retake_live_fds();
}

}  // namespace

void publish_control_socket(int fd) noexcept {
  struct stat st {};
  sys::raw_syscall(SYS_fstat, fd, &st);
  g_control_dev = uint64_t(st.st_dev);
  g_control_ino = uint64_t(st.st_ino);
  g_control_listen_fd = fd;
}

bool control_socket_intact(bool in_forked_child) noexcept {
  const int fd = g_control_listen_fd;
  if (fd < 0) return false;
  struct stat st {};
  if (sys::raw_syscall(SYS_fstat, fd, &st) == 0 && S_ISSOCK(st.st_mode) && uint64_t(st.st_dev) == g_control_dev &&
      uint64_t(st.st_ino) == g_control_ino)
    return true;
  g_control_listen_fd = -1;
  if (in_forked_child) return false;
  sys::unlinkat(AT_FDCWD, g_control_path, 0);
  if (!g_lost_said.exchange(true, std::memory_order_relaxed))
    sys::write_line(2,
                    "panicstop: kdb control socket off: the program closed its descriptor %d; panicstop dump and "
                    "panicstop kdb cannot reach process %d",
                    fd, sys::getpid());
  return false;
}

const char* control_socket_path() noexcept { return g_control_listen_fd >= 0 ? g_control_path : ""; }

bool control_requests_waiting() noexcept {
  if (!control_socket_intact(false)) return false;
  if (sys::wait_readable(g_control_listen_fd, 0) == 1) return true;
  for (const auto& p : g_pending)
    if (p.fd >= 0 && sys::wait_readable(p.fd, 0) == 1) return true;
  return false;
}

bool is_control_connection(int fd) noexcept {
  if (fd < 0) return false;
  if (fd == g_control_listen_fd) return control_socket_intact(false);
  for (const auto& p : g_pending)
    if (p.fd == fd) return true;
  for (const auto& closed : g_recent_closed)
    if (closed.load(std::memory_order_relaxed) == fd + 1) return true;
  return false;
}

void serve_control_requests() noexcept {
  if (!control_socket_intact(false)) return;
  // Another thread's session is running: this thread is one it could not
  // stop. Leave the connection queued; end_session() serves it.
  if (session_active()) {
    g_deferred.store(true, std::memory_order_release);
    return;
  }
  // Handlers on several threads at once: the first serves, and makes one
  // more pass for each signal the others took meanwhile.
  if (g_serve_requests.fetch_add(1, std::memory_order_acq_rel) != 0) return;
  for (unsigned seen = 1;;) {
    serve_pass();
    if (g_serve_requests.compare_exchange_strong(seen, 0, std::memory_order_acq_rel)) break;
  }
}

bool serve_one_connection(KdbSession* session, int64_t timeout_ns) noexcept {
  if (!control_socket_intact(false) || sys::wait_readable(g_control_listen_fd, timeout_ns) != 1) return false;
  long fd = accept_request(SOCK_CLOEXEC);
  if (fd < 0) return false;
  serve_connection(int(fd), session);
  sys::close(int(fd));
  return true;
}

void forget_control_connections_after_fork() noexcept {
  // The child's copies share their open files with the parent's: serving one
  // here would answer the parent's client.
  for (auto& p : g_pending) {
    if (p.fd >= 0) sys::close(p.fd);
    p.fd = -1;
  }
  g_serve_requests.store(0, std::memory_order_relaxed);
}

void serve_deferred_requests() noexcept {
  if (g_deferred.exchange(false, std::memory_order_acq_rel)) send_own_signal(0, kdb_request_signal());
}

}  // namespace panicstop::detail
