// Raw Linux system calls.
//
// The crash path may run while another thread holds a libc lock, with errno in
// an unknown state, on a small alternate stack. These wrappers go straight to
// the kernel: no errno, no cancellation points, no locks. Each returns the
// kernel's value: >= 0 on success, -errno on failure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <sys/syscall.h>

namespace panicstop::sys {

// The wrappers marked always_inline are those the signal-handler entry
// (thread/handler_stack.cpp) uses before it has left whatever small stack the
// signal arrived on: there each must be a syscall instruction in place, never
// a call with a frame of its own, even in a build with -fno-inline in its
// flags. gcc refuses to compile a call it cannot inline.
#if defined(__x86_64__)
__attribute__((always_inline)) inline long raw_syscall6(long nr, long a, long b, long c, long d, long e,
                                                        long f) noexcept {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#elif defined(__aarch64__)
__attribute__((always_inline)) inline long raw_syscall6(long nr, long a, long b, long c, long d, long e,
                                                        long f) noexcept {
  register long x8 __asm__("x8") = nr;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc 0"
                   : "+r"(x0)
                   : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                   : "memory");
  return x0;
}
#else
#error "panicstop supports x86_64 and aarch64"
#endif

template <typename... Args>
__attribute__((always_inline)) inline long raw_syscall(long nr, Args... args) noexcept {
  static_assert(sizeof...(Args) <= 6, "at most six arguments");
  long a[6] = {(long)args...};
  return raw_syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

// --- processes and threads -------------------------------------------------
__attribute__((always_inline)) inline int gettid() noexcept { return (int)raw_syscall(SYS_gettid); }
__attribute__((always_inline)) inline int getpid() noexcept { return (int)raw_syscall(SYS_getpid); }
__attribute__((always_inline)) inline long tgkill(int pid, int tid, int sig) noexcept {
  return raw_syscall(SYS_tgkill, pid, tid, sig);
}
inline long kill(int pid, int sig) noexcept { return raw_syscall(SYS_kill, pid, sig); }
[[noreturn]] inline void exit_group(int status) noexcept {
  for (;;) raw_syscall(SYS_exit_group, status);
}
inline long sched_yield() noexcept { return raw_syscall(SYS_sched_yield); }

// --- files -----------------------------------------------------------------
inline long write(int fd, const void* buf, size_t n) noexcept { return raw_syscall(SYS_write, fd, buf, n); }
inline long read(int fd, void* buf, size_t n) noexcept { return raw_syscall(SYS_read, fd, buf, n); }
inline long pread(int fd, void* buf, size_t n, long off) noexcept {
  return raw_syscall(SYS_pread64, fd, buf, n, off);
}
inline long openat(int dirfd, const char* path, int flags, int mode = 0) noexcept {
  return raw_syscall(SYS_openat, dirfd, path, flags, mode);
}
inline long close(int fd) noexcept { return raw_syscall(SYS_close, fd); }
inline long fsync(int fd) noexcept { return raw_syscall(SYS_fsync, fd); }
inline long renameat(int olddir, const char* from, int newdir, const char* to) noexcept {
  return raw_syscall(SYS_renameat, olddir, from, newdir, to);
}
inline long unlinkat(int dir, const char* path, int flags) noexcept {
  return raw_syscall(SYS_unlinkat, dir, path, flags);
}
inline long getdents64(int fd, void* buf, size_t n) noexcept { return raw_syscall(SYS_getdents64, fd, buf, n); }
inline long lseek(int fd, long off, int whence) noexcept { return raw_syscall(SYS_lseek, fd, off, whence); }
inline long readlinkat(int dir, const char* path, char* buf, size_t n) noexcept {
  return raw_syscall(SYS_readlinkat, dir, path, buf, n);
}

// The unsigned decimal number at the start of the file open as `fd` (a
// /proc/sys value such as vm.max_map_count), read with one read(); closes
// fd. 0 if fd is negative or the file does not start with a digit.
uint64_t read_decimal_and_close(long fd) noexcept;

// Writes all of buf, retrying short writes and EINTR. Returns false on error.
bool write_all(int fd, const void* buf, size_t n) noexcept;
// The same for a descriptor that may be a socket to another process (kdb's
// control connection): a peer that hung up makes it return false, never
// raise SIGPIPE, which would end the process being inspected. Descriptors
// that are not sockets are written as write_all() does.
bool send_all(int fd, const void* buf, size_t n) noexcept;

// Writes what it can of buf within budget_ns, never blocking longer: before
// each chunk it waits for room (poll POLLOUT), and a chunk is at most what a
// pipe with one free slot takes whole, so a blocking descriptor (stderr is
// shared with the program; its flags are not ours to change) does not block
// the write either. Returns true when all of buf was written.
bool write_bounded(int fd, const void* buf, size_t n, int64_t budget_ns) noexcept;
// The crash path's stderr: write_bounded() to fd 2 with a budget per message
// and a total for the whole process (kStderrTotalNs, consumed only by waiting),
// after which messages are written only where there is room right away. A
// pipe nobody reads costs a panic a fraction of a second, never its dumps.
inline constexpr int64_t kStderrMessageNs = 50'000'000;
inline constexpr int64_t kStderrTotalNs = 300'000'000;
bool write_stderr(const void* buf, size_t n) noexcept;
// Whether fd 2 may take panicstop's messages: not when it is a regular file
// open for reading and writing without O_APPEND. A program that closed its
// stderr gets the next file it opens there (a database's; SQLite's own
// documentation warns of it), and a line written into that file corrupts
// it. Logs (O_WRONLY, O_APPEND), terminals, pipes, sockets and /dev/null
// take them. Two system calls. write_stderr() asks it before each message.
bool stderr_takes_messages() noexcept;

// Sockets and waiting for input, for kdb's control socket and console.
inline long accept4(int fd, int flags) noexcept { return raw_syscall(SYS_accept4, fd, nullptr, nullptr, flags); }
inline long setsockopt(int fd, int level, int name, const void* value, unsigned size) noexcept {
  return raw_syscall(SYS_setsockopt, fd, level, name, value, size);
}
inline long getsockopt(int fd, int level, int name, void* value, unsigned* size) noexcept {
  return raw_syscall(SYS_getsockopt, fd, level, name, value, size);
}
// Waits until fd is readable (POLLIN, or hang-up/error, which a read then
// reports). Returns 1 when readable, 0 on timeout, -errno on error.
// timeout_ns < 0 waits without limit.
long wait_readable(int fd, int64_t timeout_ns) noexcept;

// --- memory ----------------------------------------------------------------
void* mmap_anonymous(size_t bytes, bool noreserve) noexcept;  // nullptr on failure
// Private, zero-filled, uncommitted (MAP_NORESERVE) memory with protection
// prot, mapped from /dev/zero: the kernel treats it as anonymous memory
// (MADV_DONTNEED gives its pages back; no file or page cache behind it), but
// /proc/PID/maps lists it as "/dev/zero" on a device other than 00:00, so
// programs that walk their own anonymous mappings pass it by. redis's
// crash-time memory test writes patterns over every writable anonymous
// mapping while other threads still run: the crash path's own memory must not
// be among them. Plain anonymous memory where /dev/zero cannot be opened.
// nullptr on failure.
void* mmap_unlisted(size_t bytes, int prot) noexcept;
inline long munmap(void* p, size_t n) noexcept { return raw_syscall(SYS_munmap, p, n); }
__attribute__((always_inline)) inline long mprotect(void* p, size_t n, int prot) noexcept {
  return raw_syscall(SYS_mprotect, p, n, prot);
}

// --- signals ---------------------------------------------------------------
// The kernel's sigset is 8 bytes on every architecture we support.
__attribute__((always_inline)) inline long rt_sigprocmask(int how, const void* set, void* old) noexcept {
  return raw_syscall(SYS_rt_sigprocmask, how, set, old, 8);
}

// --- futex -----------------------------------------------------------------
// Waits while *addr == expected. timeout_ns < 0 waits forever; otherwise it is a
// relative timeout. Returns 0 when woken, -EAGAIN if *addr != expected, -ETIMEDOUT,
// -EINTR.
long futex_wait(const void* addr, uint32_t expected, int64_t timeout_ns = -1) noexcept;
// Waits until the absolute CLOCK_MONOTONIC time deadline_ns.
long futex_wait_until(const void* addr, uint32_t expected, int64_t deadline_ns) noexcept;
long futex_wake(const void* addr, int count) noexcept;

// --- time ------------------------------------------------------------------
int64_t monotonic_ns() noexcept;
int64_t realtime_ns() noexcept;
void sleep_ns(int64_t ns) noexcept;

}  // namespace panicstop::sys
