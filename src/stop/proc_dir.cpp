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

// Is fd procfs's root directory? A descriptor the program closed (EBADF) or
// whose number now names something else fails here and is replaced.
bool is_proc_root(int fd) noexcept {
  struct statfs fs;
  struct stat st;
  if (sys::raw_syscall(SYS_fstatfs, fd, &fs) != 0 || long(fs.f_type) != kProcSuperMagic) return false;
  return sys::raw_syscall(SYS_fstat, fd, &st) == 0 && S_ISDIR(st.st_mode) && uint64_t(st.st_ino) == kProcRootInode;
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
  return true;
}

bool proc_dir_available() noexcept { return g_proc_fd.load(std::memory_order_acquire) >= 0; }

long proc_open(ProcScope scope, const char* path, int flags) noexcept {
  int root = g_proc_fd.load(std::memory_order_acquire);
  char full[128];
  const char* base = root >= 0 ? "" : "/proc/";
  int dir = root >= 0 ? root : AT_FDCWD;
  flags |= O_CLOEXEC;
  if (scope == ProcScope::kSystem) {
    sys::format(full, sizeof full, "%s%s", base, path);
    return sys::openat(dir, full, flags);
  }
  if (scope == ProcScope::kThread) {
    sys::format(full, sizeof full, "%sthread-self/%s", base, path);
    long fd = sys::openat(dir, full, flags);
    if (fd != -ENOENT) return fd;
  }
  sys::format(full, sizeof full, "%sself/%s", base, path);
  return sys::openat(dir, full, flags);
}

}  // namespace panicstop::detail
