// The crash path's descriptor reserve: see fd_reserve.hpp.
#include "sys/fd_reserve.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdint>

#include "sys/syscall.hpp"

namespace panicstop::sys {

namespace {

std::atomic<bool> g_taken{false};
int g_fds[kReservedFds];
size_t g_count = 0;  // written before g_published
std::atomic<bool> g_published{false};
uint64_t g_dev = 0, g_ino = 0;  // the pipe's

bool is_reserve(int fd) noexcept {
  struct stat st;
  return raw_syscall(SYS_fstat, fd, &st) == 0 && uint64_t(st.st_dev) == g_dev && uint64_t(st.st_ino) == g_ino;
}

}  // namespace

size_t reserve_fds() noexcept {
  if (g_taken.exchange(true, std::memory_order_acq_rel))
    return g_published.load(std::memory_order_acquire) ? g_count : 0;
  int pipe_fds[2];
  if (raw_syscall(SYS_pipe2, pipe_fds, O_CLOEXEC) != 0) return 0;
  struct stat st;
  if (raw_syscall(SYS_fstat, pipe_fds[0], &st) != 0) {
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return 0;
  }
  g_dev = uint64_t(st.st_dev);
  g_ino = uint64_t(st.st_ino);
  g_fds[0] = pipe_fds[0];
  g_fds[1] = pipe_fds[1];
  size_t n = 2;
  while (n < kReservedFds) {
    long fd = raw_syscall(SYS_fcntl, pipe_fds[0], F_DUPFD_CLOEXEC, 0);
    if (fd < 0) break;
    g_fds[n++] = int(fd);
  }
  g_count = n;
  g_published.store(true, std::memory_order_release);
  return n;
}

size_t release_fd_reserve() noexcept {
  if (!g_published.load(std::memory_order_acquire)) return 0;
  size_t freed = 0;
  for (size_t i = 0; i < g_count; ++i) {
    int fd = g_fds[i];
    if (fd < 0 || !is_reserve(fd)) continue;
    g_fds[i] = -1;
    if (close(fd) == 0) ++freed;
  }
  return freed;
}

}  // namespace panicstop::sys
