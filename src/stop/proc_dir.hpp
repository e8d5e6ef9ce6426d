// The crash path's way into /proc: a descriptor of procfs's root, opened at
// install and kept, so that what the stop and the snapshot read does not
// depend on what is mounted at /proc when the crash comes (a sandbox that
// unmounts it, a chroot entered later) and files are found relative to it.
//
// Why procfs's root and not /proc/self: "self" and "thread-self" are resolved
// at each open, so the descriptor stays right in the child of a fork().
// Process-wide files are opened through "thread-self" where the kernel offers
// them per thread: /proc/self/maps, auxv and cmdline read empty once the
// thread group leader has exited (main() returned through pthread_exit()),
// while the calling thread's own view of the same memory does not.
//
// Everything here is a raw system call, safe in a signal handler.
#pragma once

#include <cstdint>

namespace panicstop::detail {

// Opens procfs's root if it is not open yet, or if the descriptor kept no
// longer is procfs's root (the program closed it, or reused the number).
// Returns false when no procfs can be found at /proc; a later call tries
// again. install() calls it; so do the stop and the snapshot on first use.
bool open_proc_dir() noexcept;

// Where a proc_open() path is looked up.
enum class ProcScope : uint8_t {
  kProcess,  // /proc/self/PATH
  kThread,   // /proc/thread-self/PATH, else /proc/self/PATH (kernels before 3.17)
  kSystem,   // /proc/PATH: the system-wide files (cpuinfo, stat)
};

// Opens PATH below /proc/self, /proc/thread-self or /proc through the descriptor
// opened by open_proc_dir(), falling back to the absolute path under /proc
// when there is none. Returns the descriptor or a negative errno.
// Under a user-mode emulator (proc_emulated() below), the
// per-process files the emulator rewrites for its guest that are taken from
// it (maps, auxv, exe) are opened as "/proc/self/PATH" first, whatever the
// scope: that
// spelling is the only one qemu-user recognises, so the program's own view
// (aarch64 mappings, the guest's auxv) is what is read, not qemu's.
long proc_open(ProcScope scope, const char* path, int flags) noexcept;

// True once open_proc_dir() has found that the program runs under a user-mode
// emulator (qemu-user): /proc/self/exe read by that path names the guest
// program, which the emulator substitutes, while self/exe below the kept
// descriptor names the emulator's own binary. Raw system calls at each new
// descriptor, so a snapshot taken without install() knows it too.
bool proc_emulated() noexcept;

// True if the last open_proc_dir() found procfs.
bool proc_dir_available() noexcept;

// What /proc/self/task/TID/stat says of one thread of this process.
//
// A kernel worker is a thread the kernel runs in the process's thread group
// for its own work: io_uring's workers and submission thread (iou-wrk-PID,
// iou-sqp-PID; MariaDB's InnoDB and other servers submit their I/O there),
// vhost's (vhost-PID). It runs no program code and takes no signal but
// SIGKILL, so there is nothing to stop and no user registers to save: the
// stop does not wait for it (it waited its whole timeout and reported the
// worker as a thread that did not stop), and the dumps name it for what it is.
struct TaskStat {
  char state = '?';            // R, S, D, Z, ...; '\0' once the thread is gone; '?' unreadable
  bool kernel_worker = false;  // PF_IO_WORKER or PF_USER_WORKER in the task's flags
};
TaskStat read_task_stat(int tid) noexcept;

}  // namespace panicstop::detail
