#include "dump/upload_step.hpp"

#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <cerrno>

#include "dump/dump_files.hpp"
#include "sys/format.hpp"
#include "sys/syscall.hpp"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

extern char** environ;

namespace panicstop::detail {

namespace {

UploadPlan g_plan;

// The child runs on this stack between clone and execve (CLONE_VM: it shares
// the crashed process's memory, so it must not use the panicking thread's
// stack, which the parent resumes on). Only raw system calls run there.
alignas(64) char g_child_stack[16 * 1024];

constexpr size_t kFixedArgs = 7;
char* g_argv[kFixedArgs + kMaxDumpFiles + 1];
constexpr size_t kMaxEnv = 1024;
char* g_envp[kMaxEnv + 1];

struct ExecRequest {
  const char* path;
  char* const* argv;
  char* const* envp;
};
ExecRequest g_exec;

// The child's tid while it still runs in this process's memory:
// CLONE_PARENT_SETTID writes it before clone() returns, and
// CLONE_CHILD_CLEARTID has the kernel zero it and wake a futex waiter when the
// child leaves that memory (execve, or exit). A vfork() parent waits for the
// same event, but in a sleep only SIGKILL ends: an execve that reads the
// uploader from a hung mount would hold the panic past every deadline.
pid_t g_child_tid = 0;

// The uploader is a program of its own: none of the crashed program's
// descriptors go with it (its listening sockets, its files; the child has a
// copy of the table, not the table), and at the program's descriptor limit
// it still has room for its own. Kernels before 5.9 have no close_range:
// one close per number then, up to the descriptor limit (at most 65,536).
__attribute__((no_sanitize_address)) void close_inherited_descriptors() {
  if (sys::raw_syscall(SYS_close_range, 3, ~0u, 0) == 0) return;
  struct {
    uint64_t cur, max;
  } limit{1024, 1024};
  sys::raw_syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, nullptr, &limit);
  for (uint64_t fd = 3; fd < limit.cur && fd < 65536; ++fd) sys::close(int(fd));
}

// No sanitizer bookkeeping in the child: it shares the parent's memory and
// must leave it as it found it.
__attribute__((no_sanitize_address)) int exec_uploader(void* arg) {
  const ExecRequest* e = static_cast<const ExecRequest*>(arg);
  close_inherited_descriptors();
  long r = sys::raw_syscall(SYS_execve, e->path, e->argv, e->envp);
  char line[kUploaderPathMax + 64];
  size_t n = sys::format(line, sizeof line, "panicstop: upload: cannot run %s (errno %ld)\n", e->path, -r);
  if (sys::stderr_takes_messages()) sys::write(2, line, n);
  // SYS_exit ends only this child; it is a process of its own (no CLONE_THREAD).
  sys::raw_syscall(SYS_exit, 127);
  return 127;
}

bool is_preload(const char* entry) noexcept { return sys::starts_with(entry, "LD_PRELOAD="); }

// environ as it is now, less LD_PRELOAD, into static storage.
void build_envp() noexcept {
  size_t n = 0;
  if (environ != nullptr)
    for (char** e = environ; *e != nullptr && n < kMaxEnv; ++e)
      if (!is_preload(*e)) g_envp[n++] = *e;
  g_envp[n] = nullptr;
}

size_t build_argv() noexcept {
  static char kUpload[] = "upload", kDeadline[] = "--deadline-ms", kUrl[] = "--url", kEnd[] = "--";
  size_t n = 0;
  g_argv[n++] = g_plan.uploader;
  g_argv[n++] = kUpload;
  g_argv[n++] = kDeadline;
  g_argv[n++] = g_plan.deadline_arg;
  g_argv[n++] = kUrl;
  g_argv[n++] = g_plan.url;
  g_argv[n++] = kEnd;
  size_t fixed = n;
  // The written paths live in dump_files' static record until the next dump;
  // nothing else runs before the uploader has them.
  const WrittenDumps& w = written_dumps();
  for (size_t i = 0; i < w.count; ++i) g_argv[n++] = const_cast<char*>(w.paths[i]);
  g_argv[n] = nullptr;
  return n - fixed;
}

void say(const char* fmt, ...) noexcept __attribute__((format(printf, 1, 2)));
void say(const char* fmt, ...) noexcept {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  size_t n = sys::vformat_line(line, sizeof line, fmt, ap);
  va_end(ap);
  sys::write_stderr(line, n);
}

// 1: reaped (status set); 0: still running; -1: gone without a status (the
// program ignores SIGCHLD, so the kernel reaped it).
int try_reap(long pid, int* status) noexcept {
  for (;;) {
    long r = sys::raw_syscall(SYS_wait4, pid, status, WNOHANG, nullptr);
    if (r == pid) return 1;
    if (r == 0) return 0;
    if (r != -EINTR) return -1;
  }
}

// Waits until the child ends or deadline_ns (monotonic) passes.
int wait_until(long pid, long pidfd, int64_t deadline_ns, int* status) noexcept {
  for (;;) {
    int r = try_reap(pid, status);
    if (r != 0) return r;
    int64_t left = deadline_ns - sys::monotonic_ns();
    if (left <= 0) return 0;
    if (pidfd >= 0)
      sys::wait_readable(int(pidfd), left);
    else
      sys::sleep_ns(left < 5'000'000 ? left : 5'000'000);  // kernels before 5.3 have no pidfd
  }
}

// Waits until the child has exec'd or exited (g_child_tid is 0) or
// deadline_ns (monotonic) passes; true if it has. The kernel wakes this tid
// as a shared futex, so the wait is not FUTEX_PRIVATE_FLAG's.
bool wait_for_exec(int64_t deadline_ns) noexcept {
  for (;;) {
    pid_t tid = __atomic_load_n(&g_child_tid, __ATOMIC_ACQUIRE);
    if (tid == 0) return true;
    if (sys::monotonic_ns() >= deadline_ns) return false;
    struct timespec ts {};
    ts.tv_sec = deadline_ns / 1'000'000'000;
    ts.tv_nsec = deadline_ns % 1'000'000'000;
    sys::raw_syscall(SYS_futex, &g_child_tid, FUTEX_WAIT_BITSET, tid, &ts, nullptr, FUTEX_BITSET_MATCH_ANY);
  }
}

// Starts the uploader. Without CLONE_VFORK, so that the wait for its exec has
// a deadline (wait_for_exec); qemu-user runs CLONE_VM only for threads
// (EINVAL), and turns CLONE_VFORK into a fork, which it does run.
int start_uploader() noexcept {
  char* top = g_child_stack + sizeof g_child_stack;
  __atomic_store_n(&g_child_tid, 0, __ATOMIC_RELEASE);
  int pid = clone(exec_uploader, top, CLONE_VM | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD, &g_exec,
                  &g_child_tid, nullptr, &g_child_tid);
  if (pid < 0 && errno == EINVAL) pid = clone(exec_uploader, top, CLONE_VM | CLONE_VFORK | SIGCHLD, &g_exec);
  return pid;
}

}  // namespace

UploadPlan& upload_plan() noexcept { return g_plan; }

void run_upload_step() noexcept {
  if (!g_plan.enabled) return;
  if (written_dumps().count == 0) {
    say("panicstop: upload: no dump file was written; nothing to upload");
    return;
  }
  build_argv();
  build_envp();
  g_exec = ExecRequest{g_plan.uploader, g_argv, g_envp};
  int64_t start = sys::monotonic_ns();
  int64_t deadline = start + int64_t(g_plan.timeout_ms) * 1'000'000;
  // CLONE_VM: no copy of the page tables of a large process. The child uses
  // g_child_stack and g_exec until its exec, which this thread waits for
  // before it goes on. The signal mask the child inherits (everything
  // asynchronous blocked) survives execve; the uploader clears it itself.
  int pid = start_uploader();
  if (pid < 0) {
    say("panicstop: upload: cannot start %s (clone failed); the dump stays pending", g_plan.uploader);
    return;
  }
  if (!wait_for_exec(deadline)) {
    // Still inside execve (a hung mount): SIGKILL ends that sleep where the
    // kernel allows it. Its stack stays its own; nothing here uses it again.
    sys::kill(pid, SIGKILL);
    say("panicstop: upload: %s did not start within %u ms (its execve hangs) and was killed; the dump stays "
        "pending (send it later with `panicstop upload --dir DIR`)",
        g_plan.uploader, g_plan.timeout_ms);
    return;
  }
  long pidfd = sys::raw_syscall(SYS_pidfd_open, pid, 0);
  say("panicstop: upload: started %s (pid %d); waiting up to %u ms", g_plan.uploader, pid, g_plan.timeout_ms);
  int status = 0;
  int reaped = wait_until(pid, pidfd, deadline, &status);
  int64_t waited_ms = (sys::monotonic_ns() - start) / 1'000'000;
  if (reaped == 0) {
    sys::kill(pid, SIGKILL);
    wait_until(pid, pidfd, sys::monotonic_ns() + 1'000'000'000, &status);
    say("panicstop: upload: the uploader did not finish within %u ms and was killed; the dump stays pending "
        "(send it later with `panicstop upload --dir DIR`)",
        g_plan.timeout_ms);
  } else if (reaped < 0) {
    say("panicstop: upload: the uploader ended after %lld ms (its status is unknown: SIGCHLD is ignored)",
        (long long)waited_ms);
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    say("panicstop: upload: done in %lld ms", (long long)waited_ms);
  } else if (WIFEXITED(status)) {
    say("panicstop: upload: failed (exit status %d) after %lld ms; the dump stays pending", WEXITSTATUS(status),
        (long long)waited_ms);
  } else {
    say("panicstop: upload: the uploader died of signal %d; the dump stays pending", WTERMSIG(status));
  }
  if (pidfd >= 0) sys::close(int(pidfd));
}

}  // namespace panicstop::detail
