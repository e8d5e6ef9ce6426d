// A kernel worker in the test's own process: io_uring runs a read that is
// forced off the submitting thread (IOSQE_ASYNC) on a thread of its own in the
// caller's thread group, "iou-wrk-PID", which runs no program code and takes
// no signal. MariaDB's InnoDB and other servers have such threads whenever
// their I/O goes through io_uring.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>

namespace panicstop::testing {

// Submits a read of a pipe nobody writes, to the kernel's async workers. The
// ring and the pipe stay open for the life of the process. Returns 0, or
// -errno when io_uring is not to be had (kernel.io_uring_disabled, a seccomp
// filter, an emulator).
inline int start_io_uring_read() {
  io_uring_params p{};
  long fd = syscall(__NR_io_uring_setup, 4, &p);
  if (fd < 0) return -errno;
  size_t ring_bytes = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  auto* ring = static_cast<char*>(
      mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, int(fd), IORING_OFF_SQ_RING));
  auto* sqes = static_cast<io_uring_sqe*>(mmap(nullptr, p.sq_entries * sizeof(io_uring_sqe), PROT_READ | PROT_WRITE,
                                               MAP_SHARED | MAP_POPULATE, int(fd), IORING_OFF_SQES));
  if (ring == MAP_FAILED || sqes == MAP_FAILED) return -ENOMEM;
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return -errno;
  static char buf[8];
  std::memset(&sqes[0], 0, sizeof sqes[0]);
  sqes[0].opcode = IORING_OP_READ;
  sqes[0].fd = pipe_fds[0];
  sqes[0].addr = reinterpret_cast<uintptr_t>(buf);
  sqes[0].len = sizeof buf;
  sqes[0].flags = IOSQE_ASYNC;
  auto* tail = reinterpret_cast<unsigned*>(ring + p.sq_off.tail);
  auto* mask = reinterpret_cast<unsigned*>(ring + p.sq_off.ring_mask);
  auto* array = reinterpret_cast<unsigned*>(ring + p.sq_off.array);
  array[*tail & *mask] = 0;
  __atomic_store_n(tail, *tail + 1, __ATOMIC_RELEASE);
  if (syscall(__NR_io_uring_enter, int(fd), 1, 0, 0, nullptr, 0) != 1) return -errno;
  return 0;
}

// The tid of a thread of this process named iou-wrk-*, waiting up to
// deadline for the kernel to start it; 0 if none came.
inline int io_uring_worker_tid(std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  do {
    if (DIR* d = opendir("/proc/self/task")) {
      int found = 0;
      while (dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        std::string path = std::string("/proc/self/task/") + e->d_name + "/comm";
        char comm[32] = {};
        int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t n = read(fd, comm, sizeof comm - 1);
        close(fd);
        if (n > 8 && std::strncmp(comm, "iou-wrk-", 8) == 0) found = std::atoi(e->d_name);
      }
      closedir(d);
      if (found != 0) return found;
    }
    std::this_thread::yield();
  } while (std::chrono::steady_clock::now() < until);
  return 0;
}

}  // namespace panicstop::testing
