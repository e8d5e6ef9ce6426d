// Setting up kdb's triggers at install: the control socket and the
// PANICSTOP_KDB_SIGNAL handler. Setup only (may allocate, uses libc).
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
#include "panic/tunables.hpp"
#include "sys/format.hpp"
#include "sys/signal_names.hpp"
#include "sys/syscall.hpp"
#include "thread/handler_stack.hpp"
#include "thread/signal_sections.hpp"

namespace panicstop::detail {

extern int g_control_listen_fd;
extern char g_control_path[256];
void kdb_signal_handler(int sig, siginfo_t* info, void* ucontext);
void run_panic_debugger(bool trace, bool debugger) noexcept;

namespace {

int g_socket_owner_pid = 0;

void request_handler(int, siginfo_t*, void*) {
  int saved_errno = errno;
  serve_control_requests();
  errno = saved_errno;
}

// fn: handler_entry<...>, so that the handler runs on a panicstop stack.
bool set_handler(int sig, void (*fn)(int, siginfo_t*, void*)) {
  struct sigaction sa {};
  sa.sa_sigaction = fn;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  // A spinlock section's mask: a panic elsewhere must still be able to stop
  // this thread, and a fault here must reach the panic path.
  spin_section_sigset(&sa.sa_mask);
  return sigaction(sig, &sa, nullptr) == 0;
}

void remove_socket_at_exit() {
  // A forked child inherits the atexit list, not the socket's name.
  if (getpid() == g_socket_owner_pid) unlink(g_control_path);
}

// The directory must be ours and private: otherwise another user could put
// a socket of their own where `panicstop kdb` looks for ours.
bool private_directory(const char* dir) {
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    sys::write_line(2, "panicstop: kdb control socket off: cannot create %s: %s", dir, strerror(errno));
    return false;
  }
  struct stat st {};
  if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
    sys::write_line(2, "panicstop: kdb control socket off: %s is not a directory private to uid %u (mode 0700)",
                    dir, unsigned(geteuid()));
    return false;
  }
  return true;
}

// Sockets of processes that no longer exist (they crashed, or were killed).
void remove_stale_sockets(const char* dir) {
  DIR* d = opendir(dir);
  if (d == nullptr) return;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = strtol(e->d_name, &end, 10);
    if (pid <= 0 || end == e->d_name || strcmp(end, ".sock") != 0) continue;
    if (kill(pid_t(pid), 0) != 0 && errno == ESRCH) unlinkat(dirfd(d), e->d_name, 0);
  }
  closedir(d);
}

}  // namespace

bool install_control_socket() noexcept {
  const Tunables& t = tunables();
  if (!t.kdb_socket || g_control_listen_fd >= 0) return true;
  char dir[256];
  if (t.kdb_socket_dir[0] != '\0') sys::copy_string(dir, sizeof dir, t.kdb_socket_dir);
  else sys::format(dir, sizeof dir, "/tmp/panicstop-%u", unsigned(geteuid()));
  if (!private_directory(dir)) return false;
  remove_stale_sockets(dir);

  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  size_t n = sys::format(addr.sun_path, sizeof addr.sun_path, "%s/%d.sock", dir, int(getpid()));
  if (n + 1 >= sizeof addr.sun_path) {
    sys::write_line(2, "panicstop: kdb control socket off: the path in %s is too long for a Unix socket", dir);
    return false;
  }
  unlink(addr.sun_path);  // a process with our pid that ended without removing it
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    sys::write_line(2, "panicstop: kdb control socket off: socket: %s", strerror(errno));
    return false;
  }
  mode_t old_umask = umask(0177);  // created 0600: never visible with a wider mode
  int bound = bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  umask(old_umask);
  if (bound != 0 || listen(fd, 16) != 0) {
    sys::write_line(2, "panicstop: kdb control socket off: cannot listen on %s: %s", addr.sun_path, strerror(errno));
    close(fd);
    return false;
  }
  sys::copy_string(g_control_path, sizeof g_control_path, addr.sun_path);
  g_control_listen_fd = fd;
  g_socket_owner_pid = getpid();
  if (!set_handler(kdb_request_signal(), handler_entry<request_handler>) || fcntl(fd, F_SETOWN, getpid()) != 0 ||
      fcntl(fd, F_SETSIG, kdb_request_signal()) != 0 || fcntl(fd, F_SETFL, O_NONBLOCK | O_ASYNC) != 0) {
    sys::write_line(2, "panicstop: kdb control socket off: cannot arrange the connection signal: %s", strerror(errno));
    unlink(g_control_path);
    g_control_listen_fd = -1;
    close(fd);
    return false;
  }
  atexit(remove_socket_at_exit);
  return true;
}

bool install_kdb() noexcept {
  const Tunables& t = tunables();
  bool ok = true;
  if (t.kdb_signal != 0 && !set_handler(t.kdb_signal, handler_entry<kdb_signal_handler>)) {
    sys::write_line(2, "panicstop: cannot install the kdb signal handler for signal %d: %s", t.kdb_signal,
                    strerror(errno));
    ok = false;
  }
  install_control_socket();  // optional: says why when it cannot be made
  set_debugger_step(run_panic_debugger);
  return ok;
}

}  // namespace panicstop::detail
