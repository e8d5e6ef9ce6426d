// Setting up kdb's triggers at install: the control socket and the
// PANICSTOP_KDB_SIGNAL handler. Setup (may allocate, uses libc), except what
// the child of fork() runs (kdb_after_fork), which keeps to async-signal-safe
// calls.
#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "kdb/control_socket.hpp"
#include "kdb/kdb_setup.hpp"
#include "panic/panic_state.hpp"
#include "kdb/kdb_options.hpp"
#include "sys/format.hpp"
#include "sys/private_dir.hpp"
#include "sys/signal_names.hpp"
#include "sys/syscall.hpp"
#include "thread/program_signals.hpp"
#include "thread/handler_stack.hpp"
#include "thread/signal_sections.hpp"

namespace panicstop::detail {

extern int g_control_listen_fd;
extern char g_control_path[256];
void kdb_signal_handler(int sig, siginfo_t* info, void* ucontext);
void run_panic_debugger(bool trace, bool debugger) noexcept;
void reset_session_after_fork() noexcept;

namespace {

int g_socket_owner_pid = 0;

void request_handler(int sig, siginfo_t* info, void* uc) {
  int saved_errno = errno;
  // A connection or a client's request (the kernel's signal for the sockets) or a deferred request
  // (our own, unmarked if it was sent past a full signal queue); anything else is the program's use
  // of the signal number.
  bool ours = is_own_signal(info) || (info->si_code > 0 && is_control_connection(info->si_fd)) ||
              (may_be_own_process_signal(info) && control_requests_waiting());
  // Serving may begin a session that stops every other thread: never from
  // inside a spinlock section (it is sent again when the section ends).
  if (ours) {
    if (!defer_in_spin_section(sig)) serve_control_requests();
  } else {
    deliver_reserved_to_program(sig, info, uc);
  }
  errno = saved_errno;
}

// SIGIO, from the kernel (SI_KERNEL, no descriptor), is what a connection or
// a request brings when the request signal cannot be queued (the user's
// signal queue full, RLIMIT_SIGPENDING): its default action would end the
// process that was only being asked for a dump. Whatever it was, the
// program's own action for SIGIO follows, its default too unless the signal
// was only ours.
void sigio_handler(int sig, siginfo_t* info, void* uc) {
  int saved_errno = errno;
  bool ours = info->si_code == SI_KERNEL && control_requests_waiting();
  if (ours && !defer_in_spin_section(kdb_request_signal())) serve_control_requests();
  deliver_shared_to_program(sig, info, uc, /*default_applies=*/!ours);
  errno = saved_errno;
}

constexpr int kHandlerFlags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;

// fn: handler_entry<...>, so that the handler runs on a panicstop stack.
bool set_handler(int sig, void (*fn)(int, siginfo_t*, void*)) {
  struct sigaction sa {};
  sa.sa_sigaction = fn;
  sa.sa_flags = kHandlerFlags;
  // A spinlock section's mask: a panic elsewhere must still be able to stop
  // this thread, and a fault here must reach the panic path.
  spin_section_sigset(&sa.sa_mask);
  return libc_sigaction(sig, &sa, nullptr) == 0;
}

bool take_over_request_signal() {
  sigset_t mask;
  spin_section_sigset(&mask);
  return take_over_signal(kdb_request_signal(), SignalRole::kReserved, handler_entry<request_handler>, kHandlerFlags,
                          mask) &&
         take_over_signal(SIGIO, SignalRole::kShared, handler_entry<sigio_handler>, kHandlerFlags, mask);
}

void remove_socket_at_exit() {
  // A forked child inherits the atexit list; its own socket (made by
  // kdb_after_fork) is the one it removes, never the parent's.
  if (getpid() == g_socket_owner_pid) unlink(g_control_path);
}

// Sockets of processes that no longer exist (they crashed, or were killed),
// at most once a minute (sys::sweep_due): each costs a kill() per socket.
void remove_stale_sockets(const char* dir) {
  DIR* d = sys::open_for_sweep(dir);
  if (d == nullptr) return;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = strtol(e->d_name, &end, 10);
    if (pid <= 0 || end == e->d_name || strcmp(end, ".sock") != 0) continue;
    if (kill(pid_t(pid), 0) != 0 && errno == ESRCH) unlinkat(dirfd(d), e->d_name, 0);
  }
  closedir(d);
}

// Everything from here to install_control_socket() also runs in the child of
// fork() (kdb_after_fork), where a multithreaded parent's child may only make
// async-signal-safe calls: system calls through libc's thin wrappers, no
// allocation, no stdio, no strerror.

void socket_directory(char* dir, size_t cap) noexcept {
  const KdbOptions& t = kdb_options();
  if (t.socket_dir[0] != '\0') sys::copy_string(dir, cap, t.socket_dir);
  else sys::private_directory_path(dir, cap);
}

// The directory must be ours and private: otherwise another user could put
// a socket of their own where `panicstop kdb` looks for ours.
int private_directory_problem(const char* dir) noexcept { return sys::make_private_directory(dir); }

struct SocketFailure {
  const char* what = "";  // the step that failed, for the message
  int error = 0;          // its errno; 0: none
};

// Listens on DIR/PID.sock (its path goes to `path` in any case), with the
// connection signal aimed at pid but not armed yet: the caller publishes the
// descriptor first, so that the first signal finds it. Returns the
// descriptor, or -1 with *failure set.
int listen_on(const char* dir, int pid, char* path, size_t cap, SocketFailure* failure) noexcept {
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  size_t n = sys::format(addr.sun_path, sizeof addr.sun_path, "%s/%d.sock", dir, pid);
  sys::copy_string(path, cap, addr.sun_path);
  if (n + 1 >= sizeof addr.sun_path || n + 1 >= cap) {
    *failure = {"the path is too long for a Unix socket", 0};
    return -1;
  }
  unlink(addr.sun_path);  // a process with our pid that ended without removing it
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    *failure = {"socket", errno};
    return -1;
  }
  mode_t old_umask = umask(0177);  // created 0600: never visible with a wider mode
  int bound = bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  umask(old_umask);
  if (bound != 0 || listen(fd, 16) != 0) {
    *failure = {"cannot listen", errno};
    if (bound == 0) unlink(addr.sun_path);
    close(fd);
    return -1;
  }
  if (fcntl(fd, F_SETOWN, pid) != 0 || fcntl(fd, F_SETSIG, kdb_request_signal()) != 0) {
    *failure = {"cannot arrange the connection signal", errno};
    unlink(addr.sun_path);
    close(fd);
    return -1;
  }
  return fd;
}

// Publishes fd as this process's socket and arms the connection signal.
bool publish_and_arm(int fd, int pid, SocketFailure* failure) noexcept {
  publish_control_socket(fd);
  g_socket_owner_pid = pid;
  if (fcntl(fd, F_SETFL, O_NONBLOCK | O_ASYNC) == 0) return true;
  *failure = {"cannot arrange the connection signal", errno};
  unlink(g_control_path);
  g_control_listen_fd = -1;
  g_socket_owner_pid = 0;
  close(fd);
  return false;
}

}  // namespace

bool install_control_socket() noexcept {
  if (!kdb_options().socket || g_control_listen_fd >= 0) return true;
  char dir[256];
  socket_directory(dir, sizeof dir);
  if (int problem = private_directory_problem(dir); problem != 0) {
    if (problem > 0)
      sys::write_line(2, "panicstop: kdb control socket off: cannot create %s: %s", dir, strerror(problem));
    else
      sys::write_line(2, "panicstop: kdb control socket off: %s is not a directory private to uid %u (mode 0700)",
                      dir, unsigned(geteuid()));
    return false;
  }
  remove_stale_sockets(dir);
  sys::copy_string(g_control_path, sizeof g_control_path, dir);  // for a message before listen_on
  SocketFailure failure{"cannot arrange the connection signal", 0};
  bool ok = take_over_request_signal();
  if (!ok) failure.error = errno;
  int pid = int(getpid());
  int fd = ok ? listen_on(dir, pid, g_control_path, sizeof g_control_path, &failure) : -1;
  if (fd >= 0 && publish_and_arm(fd, pid, &failure)) {
    atexit(remove_socket_at_exit);
    return true;
  }
  if (failure.error == 0)
    sys::write_line(2, "panicstop: kdb control socket off: %s: %s", failure.what, g_control_path);
  else
    sys::write_line(2, "panicstop: kdb control socket off: %s on %s: %s", failure.what, g_control_path,
                    strerror(failure.error));
  return false;
}

void kdb_after_fork() noexcept {
  int saved_errno = errno;
  reset_session_after_fork();
  forget_control_connections_after_fork();
  int inherited = g_control_listen_fd;
  if (inherited >= 0) {
    // The inherited descriptor shares its open file description with the
    // parent's: F_SETOWN on it would aim the parent's connection signals at
    // the child, and accepting on it would answer the parent's clients. It
    // is only closed here, and the parent's file stays where it is; unless
    // the number is no longer the socket (the program closed it and reused
    // the number): then it is left alone.
    const bool intact = control_socket_intact(true);
    g_control_listen_fd = -1;
    g_socket_owner_pid = 0;
    if (intact) close(inherited);
    char dir[256];
    socket_directory(dir, sizeof dir);
    int pid = int(getpid());
    sys::copy_string(g_control_path, sizeof g_control_path, dir);  // for a message before listen_on
    SocketFailure failure;
    int problem = private_directory_problem(dir);
    if (problem > 0) failure = {"cannot create the directory", problem};
    else if (problem < 0) failure = {"not a directory private to this uid (mode 0700)", 0};
    int fd = problem != 0 ? -1 : listen_on(dir, pid, g_control_path, sizeof g_control_path, &failure);
    if (fd < 0 || !publish_and_arm(fd, pid, &failure)) {
      sys::write_line(2, "panicstop: kdb control socket off in forked process %d: %s: %s (errno %d)", pid,
                      failure.what, g_control_path, failure.error);
    }
  }
  errno = saved_errno;
}

bool install_kdb() noexcept {
  install_kdb_options();
  const KdbOptions& t = kdb_options();
  bool ok = true;
  if (t.signal != 0 && !set_handler(t.signal, handler_entry<kdb_signal_handler>)) {
    sys::write_line(2, "panicstop: cannot install the kdb signal handler for signal %d: %s", t.signal,
                    strerror(errno));
    ok = false;
  }
  install_control_socket();  // optional: says why when it cannot be made
  set_debugger_step(run_panic_debugger, int64_t(t.idle_ms) * 1000000);
  return ok;
}

}  // namespace panicstop::detail
