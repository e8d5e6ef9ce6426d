// Test support: a panic with two threads that ignore the stop, each of which
// blocks the hard-stop signal with the raw system call (so no interposer of
// pthread_sigmask can undo it): one asleep in read() on a pipe, one spinning
// in user space. The dumps must show what /proc says of them instead of
// registers of zeros.
#pragma once

#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "panicstop/panic.hpp"
#include "support/child_process.hpp"
#include "sys/syscall.hpp"
#include "thread/signal_sections.hpp"

namespace panicstop::testing {

inline std::atomic<int> g_unstopped_reader_tid{0};
inline std::atomic<int> g_unstopped_spinner_tid{0};
inline std::atomic<bool> g_unstopped_spin{true};

inline void block_hard_stop_with_raw_syscall() {
  uint64_t set = uint64_t(1) << (detail::hard_stop_signal() - 1);
  syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, nullptr, 8);
}

// Kept out of line, and not a tail call, so it is a frame of its own under read().
__attribute__((noinline)) inline void unstopped_reader_in_read(int fd) {
  pthread_setname_np(pthread_self(), "unstop-reader");
  block_hard_stop_with_raw_syscall();
  g_unstopped_reader_tid.store(sys::gettid());
  char c;
  ssize_t n = ::read(fd, &c, 1);
  __asm__ volatile("" : : "r"(n) : "memory");
}

__attribute__((noinline)) inline void unstopped_spinner_spins() {
  pthread_setname_np(pthread_self(), "unstop-spinner");
  block_hard_stop_with_raw_syscall();
  g_unstopped_spinner_tid.store(sys::gettid());
  while (g_unstopped_spin.load(std::memory_order_relaxed)) __asm__ volatile("" ::: "memory");
}

// The first field of /proc/self/task/TID/syscall: "running", "-1", or the
// number of the system call the thread is in.
inline std::string current_syscall_field(int tid) {
  std::string text = read_file("/proc/self/task/" + std::to_string(tid) + "/syscall");
  return text.substr(0, text.find_first_of(" \n"));
}

// Polls until the thread sits in system call nr, for at most ~10 s.
inline bool wait_until_in_syscall(int tid, long nr) {
  for (int i = 0; i < 10000; ++i) {
    if (current_syscall_field(tid) == std::to_string(nr)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

// The child: starts both threads, waits until the reader is inside read(),
// prints "reader=TID spinner=TID" and panics. with_spinner = false leaves the
// spinner out.
[[noreturn]] inline void panic_with_unstopped_threads(bool with_spinner) {
  install();
  int fds[2];
  if (pipe(fds) != 0) _exit(20);
  std::thread([fd = fds[0]] { unstopped_reader_in_read(fd); }).detach();
  if (with_spinner) std::thread(unstopped_spinner_spins).detach();
  for (int i = 0; i < 10000 && (g_unstopped_reader_tid.load() == 0 ||
                                (with_spinner && g_unstopped_spinner_tid.load() == 0));
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  int reader = g_unstopped_reader_tid.load();
  if (reader == 0 || !wait_until_in_syscall(reader, SYS_read)) _exit(21);
  printf("reader=%d spinner=%d\n", reader, g_unstopped_spinner_tid.load());
  fflush(stdout);
  panic("two threads ignore the stop");
}

struct UnstoppedDumps {
  ChildResult child;
  int reader = 0, spinner = 0;
  std::string report_path, core_path;
};

// Runs the child with both writers, a short stop timeout and dumps in dir.
inline UnstoppedDumps make_unstopped_dumps(const std::string& dir, bool with_spinner = true) {
  ChildOptions opts;
  opts.deadline = std::chrono::milliseconds(30000);
  opts.set_env = {{"PANICSTOP_DUMP_DIR", dir}, {"PANICSTOP_STOP_TIMEOUT_MS", "200"}};
  opts.unset_env = {"PANICSTOP_DUMP", "PANICSTOP_CORE"};
  UnstoppedDumps d;
  d.child = run_in_child([with_spinner] { panic_with_unstopped_threads(with_spinner); }, opts);
  std::smatch m;
  if (std::regex_search(d.child.output, m, std::regex(R"(reader=(\d+) spinner=(\d+))"))) {
    d.reader = std::stoi(m[1]);
    d.spinner = std::stoi(m[2]);
  }
  std::regex wrote(R"(panicstop: wrote (\S+))");
  for (std::sregex_iterator it(d.child.output.begin(), d.child.output.end(), wrote), end; it != end; ++it) {
    std::string path = (*it)[1];
    if (path.size() > 4 && path.substr(path.size() - 4) == ".txt") d.report_path = path;
    if (path.size() > 5 && path.substr(path.size() - 5) == ".core") d.core_path = path;
  }
  return d;
}

// The dumps of one such child, made once per test binary for all its tests;
// the directory goes at exit.
inline UnstoppedDumps& unstopped_dumps_once() {
  static TempDir dir;
  static UnstoppedDumps d = make_unstopped_dumps(dir.path());
  return d;
}

}  // namespace panicstop::testing
