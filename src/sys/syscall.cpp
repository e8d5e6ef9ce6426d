#include "sys/syscall.hpp"

#include <atomic>
#include <cerrno>
#include <ctime>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "sys/format.hpp"

namespace panicstop::sys {

uint64_t read_decimal_and_close(long fd) noexcept {
  if (fd < 0) return 0;
  char text[32];
  const long n = read(int(fd), text, sizeof text);
  close(int(fd));
  size_t len = 0;
  while (n > 0 && len < size_t(n) && text[len] >= '0' && text[len] <= '9') ++len;
  uint64_t v = 0;
  return len > 0 && parse_u64(text, len, &v) ? v : 0;
}

bool write_all(int fd, const void* buf, size_t n) noexcept {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    long r = write(fd, p, n);
    if (r == -EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

namespace {

// What one write() takes whole from a pipe with a free slot (a page), even
// when the descriptor blocks.
constexpr size_t kBoundedChunk = 4096;

std::atomic<int64_t> g_stderr_waited_ns{0};

// Waits for room until deadline_ns (CLOCK_MONOTONIC). 1: room; 0: none in time;
// -errno: the descriptor is unusable.
long wait_writable_until(int fd, int64_t deadline_ns) noexcept {
  struct pollfd p = {fd, POLLOUT, 0};
  for (;;) {
    int64_t left = deadline_ns - monotonic_ns();
    if (left < 0) left = 0;
    struct timespec ts = {left / 1000000000, left % 1000000000};
    long r = raw_syscall(SYS_ppoll, &p, 1, &ts, nullptr, 8);
    if (r == -EINTR) continue;  // deadline_ns is absolute: a signal does not stretch it
    if (r < 0) return r;
    if (r == 0) return 0;
    if (p.revents & (POLLERR | POLLNVAL)) return -EIO;
    return (p.revents & POLLOUT) ? 1 : -EPIPE;  // POLLHUP alone: nobody will ever read
  }
}

}  // namespace

bool write_bounded(int fd, const void* buf, size_t n, int64_t budget_ns) noexcept {
  const char* p = static_cast<const char*>(buf);
  int64_t deadline = monotonic_ns() + (budget_ns > 0 ? budget_ns : 0);
  while (n > 0) {
    if (wait_writable_until(fd, deadline) <= 0) return false;
    size_t chunk = n < kBoundedChunk ? n : kBoundedChunk;
    long r = raw_syscall(SYS_sendto, fd, p, chunk, MSG_DONTWAIT | MSG_NOSIGNAL, nullptr, 0);
    if (r == -ENOTSOCK) r = write(fd, p, chunk);
    if (r == -EINTR || r == -EAGAIN) continue;
    if (r <= 0) return false;
    p += r;
    n -= size_t(r);
  }
  return true;
}

bool stderr_takes_messages() noexcept {
  long flags = raw_syscall(SYS_fcntl, 2, F_GETFL);
  if (flags < 0) return false;
  struct stat st {};
  if (raw_syscall(SYS_fstat, 2, &st) != 0) return false;
  return !S_ISREG(st.st_mode) || (flags & O_ACCMODE) != O_RDWR || (flags & O_APPEND) != 0;
}

bool write_stderr(const void* buf, size_t n) noexcept {
  if (!stderr_takes_messages()) return false;
  int64_t left = kStderrTotalNs - g_stderr_waited_ns.load(std::memory_order_relaxed);
  int64_t budget = left < kStderrMessageNs ? left : kStderrMessageNs;
  int64_t start = monotonic_ns();
  bool ok = write_bounded(2, buf, n, budget);
  g_stderr_waited_ns.fetch_add(monotonic_ns() - start, std::memory_order_relaxed);
  return ok;
}

long wait_readable(int fd, int64_t timeout_ns) noexcept {
  struct pollfd p = {fd, POLLIN, 0};
  struct timespec ts;
  struct timespec* tsp = nullptr;
  if (timeout_ns >= 0) {
    ts.tv_sec = timeout_ns / 1000000000;
    ts.tv_nsec = timeout_ns % 1000000000;
    tsp = &ts;
  }
  for (;;) {
    long r = raw_syscall(SYS_ppoll, &p, 1, tsp, nullptr, 8);
    if (r == -EINTR) continue;  // a deadline stretched by a signal is fine for a person at a console
    return r > 0 ? 1 : r;
  }
}

bool send_all(int fd, const void* buf, size_t n) noexcept {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    long r = raw_syscall(SYS_sendto, fd, p, n, MSG_NOSIGNAL, nullptr, 0);
    if (r == -ENOTSOCK) return write_all(fd, p, n);
    if (r == -EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

void* mmap_anonymous(size_t bytes, bool noreserve) noexcept {
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | (noreserve ? MAP_NORESERVE : 0);
  long r = raw_syscall(SYS_mmap, nullptr, bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (r < 0 && r > -4096) return nullptr;
  return reinterpret_cast<void*>(r);
}

void* mmap_unlisted(size_t bytes, int prot) noexcept {
  // Not a memfd: a private mapping of one fills a page of the memfd's page
  // cache for every page written, and MADV_DONTNEED gives back only the copy.
  long fd = raw_syscall(SYS_openat, AT_FDCWD, "/dev/zero", O_RDONLY | O_CLOEXEC);
  int flags = MAP_PRIVATE | MAP_NORESERVE | (fd < 0 ? MAP_ANONYMOUS : 0);
  long r = raw_syscall(SYS_mmap, nullptr, bytes, prot, flags, fd < 0 ? -1 : fd, 0);
  if (fd >= 0) close(int(fd));
  if (r < 0 && r > -4096) return nullptr;
  return reinterpret_cast<void*>(r);
}

long futex_wait(const void* addr, uint32_t expected, int64_t timeout_ns) noexcept {
  struct timespec ts;
  struct timespec* tsp = nullptr;
  if (timeout_ns >= 0) {
    ts.tv_sec = timeout_ns / 1000000000;
    ts.tv_nsec = timeout_ns % 1000000000;
    tsp = &ts;
  }
  return raw_syscall(SYS_futex, addr, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, expected, tsp, nullptr, 0);
}

long futex_wait_until(const void* addr, uint32_t expected, int64_t deadline_ns) noexcept {
  struct timespec ts;
  ts.tv_sec = deadline_ns / 1000000000;
  ts.tv_nsec = deadline_ns % 1000000000;
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so repeated
  // waits after spurious wake-ups never stretch the caller's deadline.
  return raw_syscall(SYS_futex, addr, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected, &ts, nullptr,
                     FUTEX_BITSET_MATCH_ANY);
}

long futex_wake(const void* addr, int count) noexcept {
  return raw_syscall(SYS_futex, addr, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, count, nullptr, nullptr, 0);
}

// clock_gettime is on POSIX's async-signal-safe list and takes no lock; it goes
// through the vDSO, which makes timing in lock hard paths cheap.
static int64_t clock_ns(int clock) noexcept {
  struct timespec ts{};
  ::clock_gettime(clock, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int64_t monotonic_ns() noexcept { return clock_ns(CLOCK_MONOTONIC); }
int64_t realtime_ns() noexcept { return clock_ns(CLOCK_REALTIME); }

void sleep_ns(int64_t ns) noexcept {
  struct timespec ts;
  ts.tv_sec = ns / 1000000000;
  ts.tv_nsec = ns % 1000000000;
  while (raw_syscall(SYS_nanosleep, &ts, &ts) == -EINTR) {
  }
}

}  // namespace panicstop::sys
