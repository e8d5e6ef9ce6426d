// The descriptor reserves: see fd_reserve.hpp.
#include "sys/fd_reserve.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdint>

#include "sys/syscall.hpp"

namespace panicstop::sys {

namespace {

std::atomic<bool> g_taken{false};
std::atomic<bool> g_published{false};
std::atomic<bool> g_released{false};  // by the panic: for good
uint64_t g_dev = 0, g_ino = 0;         // the pipe's; written before g_published

// A slot holds a descriptor number or -1. Closing takes the number out of
// its slot first and filling puts one into an empty slot, each with one
// atomic step, so a live dump's thread and a panicking one never close one
// number twice.
std::atomic<int> g_crash[kReservedFds];
std::atomic<int> g_live[kLiveReservedFds];

bool is_reserve(int fd) noexcept {
  struct stat st;
  return fd >= 0 && raw_syscall(SYS_fstat, fd, &st) == 0 && uint64_t(st.st_dev) == g_dev &&
         uint64_t(st.st_ino) == g_ino;
}

// Fills the empty slots with duplicates of `source`.
void fill(std::atomic<int>* slots, size_t n, int source) noexcept {
  for (size_t i = 0; i < n; ++i) {
    int empty = -1;
    if (slots[i].load(std::memory_order_relaxed) != -1) continue;
    long fd = raw_syscall(SYS_fcntl, source, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return;
    if (!slots[i].compare_exchange_strong(empty, int(fd), std::memory_order_acq_rel)) close(int(fd));
  }
}

size_t release(std::atomic<int>* slots, size_t n, size_t most) noexcept {
  size_t freed = 0;
  for (size_t i = 0; i < n && freed < most; ++i) {
    int fd = slots[i].load(std::memory_order_acquire);
    if (fd < 0 || !is_reserve(fd)) continue;
    if (!slots[i].compare_exchange_strong(fd, -1, std::memory_order_acq_rel)) continue;
    if (close(fd) == 0) ++freed;
  }
  return freed;
}

size_t held(const std::atomic<int>* slots, size_t n) noexcept {
  size_t count = 0;
  for (size_t i = 0; i < n; ++i) count += slots[i].load(std::memory_order_relaxed) >= 0 ? 1 : 0;
  return count;
}

}  // namespace

size_t reserve_fds() noexcept {
  if (g_taken.exchange(true, std::memory_order_acq_rel))
    return g_published.load(std::memory_order_acquire) ? held(g_crash, kReservedFds) : 0;
  for (auto& slot : g_crash) slot.store(-1, std::memory_order_relaxed);
  for (auto& slot : g_live) slot.store(-1, std::memory_order_relaxed);
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
  g_crash[0].store(pipe_fds[0], std::memory_order_relaxed);
  g_crash[1].store(pipe_fds[1], std::memory_order_relaxed);
  fill(g_crash, kReservedFds, pipe_fds[0]);
  fill(g_live, kLiveReservedFds, pipe_fds[0]);
  g_published.store(true, std::memory_order_release);
  return held(g_crash, kReservedFds);
}

size_t release_fd_reserve() noexcept {
  if (!g_published.load(std::memory_order_acquire)) return 0;
  g_released.store(true, std::memory_order_release);
  return release(g_crash, kReservedFds, kReservedFds) + release(g_live, kLiveReservedFds, kLiveReservedFds);
}

size_t release_live_fds(size_t count) noexcept {
  if (!g_published.load(std::memory_order_acquire)) return 0;
  return release(g_live, kLiveReservedFds, count);
}

void retake_live_fds() noexcept {
  if (!g_published.load(std::memory_order_acquire) || g_released.load(std::memory_order_acquire)) return;
  int source = -1;
  for (auto& slot : g_crash)
    if (int fd = slot.load(std::memory_order_acquire); source < 0 && is_reserve(fd)) source = fd;
  for (auto& slot : g_live) {
    int fd = slot.load(std::memory_order_acquire);
    if (is_reserve(fd)) {
      if (source < 0) source = fd;
    } else if (fd >= 0) {
      // The program closed it and may have the number back: not ours to close.
      slot.compare_exchange_strong(fd, -1, std::memory_order_acq_rel);
    }
  }
  if (source >= 0) fill(g_live, kLiveReservedFds, source);
}

}  // namespace panicstop::sys
