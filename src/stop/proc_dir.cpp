// procfs's root, kept open: see proc_dir.hpp. Crash path: raw system calls.
#include "stop/proc_dir.hpp"

#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "sys/format.hpp"
#include "sys/syscall.hpp"

namespace panicstop::detail {

namespace {

constexpr long kProcSuperMagic = 0x9fa0;  // PROC_SUPER_MAGIC
constexpr uint64_t kProcRootInode = 1;    // procfs's root directory

std::atomic<int> g_proc_fd{-1};
std::atomic<bool> g_emulated{false};

// Is fd procfs's root directory? A descriptor the program closed (EBADF) or
// whose number now names something else fails here and is replaced.
bool is_proc_root(int fd) noexcept {
  struct statfs fs;
  struct stat st;
  if (sys::raw_syscall(SYS_fstatfs, fd, &fs) != 0 || long(fs.f_type) != kProcSuperMagic) return false;
  return sys::raw_syscall(SYS_fstat, fd, &st) == 0 && S_ISDIR(st.st_mode) && uint64_t(st.st_ino) == kProcRootInode;
}

// The files qemu-user rewrites for its guest that are worth its view: maps
// (the guest's mappings, without qemu's own) and auxv (the guest's vector:
// AT_PHDR, AT_ENTRY, AT_HWCAP of aarch64; the kernel's is qemu's), and exe.
// qemu 7.2 (linux-user/syscall.c, do_openat: its fake_open table and the
// "exe" case) recognises them only by the path string given to open,
// "/proc/self/NAME" or "/proc/PID/NAME", never relative to a directory
// descriptor nor through "thread-self". It rewrites cmdline and stat too, but
// from the argv it keeps for the main thread: once that thread has exited
// (pthread_exit() from main()), qemu aborts on reading them (seen: assertion
// "cpu == current_cpu" in cpu_exec). The kernel's cmdline (qemu's argv, the
// program's after it) and stat (the real start time) are kept instead.
bool emulator_rewrites(const char* path) noexcept {
  static constexpr const char* kRewritten[] = {"maps", "auxv", "exe"};
  for (const char* name : kRewritten) {
    size_t i = 0;
    while (name[i] != '\0' && path[i] == name[i]) ++i;
    if (name[i] == '\0' && path[i] == '\0') return true;
  }
  return false;
}

// Does /proc/self/exe, looked up by its absolute path, name another file than
// self/exe below the descriptor? Only an emulator's rewriting makes them differ.
bool exe_is_rewritten(int root) noexcept {
  char by_path[256], by_fd[256];
  long a = sys::readlinkat(AT_FDCWD, "/proc/self/exe", by_path, sizeof by_path);
  long b = sys::readlinkat(root, "self/exe", by_fd, sizeof by_fd);
  if (a <= 0 || b <= 0) return false;
  if (a != b) return true;
  for (long i = 0; i < a; ++i)
    if (by_path[i] != by_fd[i]) return true;
  return false;
}

// An emulator answers an open of a file it rewrites with a copy it wrote to
// a file of its own ($TMPDIR), or with the executable. A copy that is empty
// (the emulator read its own /proc/self/maps and found /proc covered or gone,
// or the thread group leader exited) is no view at all: -ENOENT, so that the
// caller says the file could not be read. procfs's own files (nothing was
// rewritten) are kept as they are.
long keep_unless_empty_copy(long fd) noexcept {
  if (fd < 0) return fd;
  struct statfs fs;
  struct stat st;
  if (sys::raw_syscall(SYS_fstatfs, int(fd), &fs) == 0 && long(fs.f_type) == kProcSuperMagic) return fd;
  if (sys::raw_syscall(SYS_fstat, int(fd), &st) == 0 && (!S_ISREG(st.st_mode) || st.st_size > 0)) return fd;
  sys::close(int(fd));
  return -ENOENT;
}

}  // namespace

bool open_proc_dir() noexcept {
  int fd = g_proc_fd.load(std::memory_order_acquire);
  if (fd >= 0 && is_proc_root(fd)) return true;
  long opened = sys::openat(AT_FDCWD, "/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (opened < 0) {
    g_proc_fd.store(-1, std::memory_order_release);
    return false;
  }
  if (!is_proc_root(int(opened))) {  // something else mounted there (an empty tmpfs)
    sys::close(int(opened));
    g_proc_fd.store(-1, std::memory_order_release);
    return false;
  }
  // The old number is not closed: the program may have reused it already.
  g_proc_fd.store(int(opened), std::memory_order_release);
  if (!g_emulated.load(std::memory_order_relaxed) && exe_is_rewritten(int(opened)))
    g_emulated.store(true, std::memory_order_release);
  return true;
}

bool proc_emulated() noexcept { return g_emulated.load(std::memory_order_acquire); }

bool proc_dir_available() noexcept { return g_proc_fd.load(std::memory_order_acquire) >= 0; }

long proc_open(ProcScope scope, const char* path, int flags) noexcept {
  int root = g_proc_fd.load(std::memory_order_acquire);
  char full[128];
  const char* base = root >= 0 ? "" : "/proc/";
  int dir = root >= 0 ? root : AT_FDCWD;
  flags |= O_CLOEXEC;
  bool rewritten = scope != ProcScope::kSystem && emulator_rewrites(path);
  if (rewritten && proc_emulated()) {
    // The guest's view, by the one spelling the emulator recognises.
    sys::format(full, sizeof full, "/proc/self/%s", path);
    long fd = keep_unless_empty_copy(sys::openat(AT_FDCWD, full, flags));
    if (fd >= 0) return fd;
    // No copy: the emulator's own view, through the kept descriptor, is
    // still better than nothing.
  }
  if (scope == ProcScope::kSystem) {
    sys::format(full, sizeof full, "%s%s", base, path);
    return sys::openat(dir, full, flags);
  }
  if (scope == ProcScope::kThread) {
    sys::format(full, sizeof full, "%sthread-self/%s", base, path);
    long fd = sys::openat(dir, full, flags);
    if (fd != -ENOENT) return root < 0 && rewritten ? keep_unless_empty_copy(fd) : fd;
  }
  sys::format(full, sizeof full, "%sself/%s", base, path);
  long fd = sys::openat(dir, full, flags);
  // By its absolute path (no procfs at install, so no emulator seen), a
  // rewritten file may still be an emulator's copy of nothing.
  return root < 0 && rewritten ? keep_unless_empty_copy(fd) : fd;
}

TaskStat read_task_stat(int tid) noexcept {
  TaskStat out;
  char path[48];
  sys::format(path, sizeof path, "task/%d/stat", tid);
  long fd = proc_open(ProcScope::kProcess, path, O_RDONLY);
  if (fd == -ENOENT || fd == -ESRCH) out.state = '\0';
  if (fd < 0) return out;
  char stat[512];
  long n = sys::read(int(fd), stat, sizeof stat - 1);
  sys::close(int(fd));
  if (n == -ESRCH) out.state = '\0';
  if (n <= 0) return out;
  // "tid (comm) S ppid pgrp session tty_nr tpgid flags ...": comm may hold
  // spaces and ')' itself, so the fields start after the last ')'.
  long close = -1;
  for (long i = 0; i < n; ++i)
    if (stat[i] == ')') close = i;
  if (close < 0 || close + 2 >= n) return out;
  out.state = stat[close + 2];
  long i = close + 2;
  for (int field = 3; field < 9 && i < n; ++i)
    if (stat[i] == ' ') ++field;
  uint64_t flags = 0;
  for (; i < n && stat[i] >= '0' && stat[i] <= '9'; ++i) flags = flags * 10 + uint64_t(stat[i] - '0');
  constexpr uint64_t kPfIoWorker = 0x10, kPfUserWorker = 0x4000;  // include/linux/sched.h
  out.kernel_worker = (flags & (kPfIoWorker | kPfUserWorker)) != 0;
  return out;
}

}  // namespace panicstop::detail
