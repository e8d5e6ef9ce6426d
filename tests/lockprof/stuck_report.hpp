// A thread stuck inside lockprof_write_report(): its output pipe is full, so
// it sleeps in write() holding the profile table's lock. For tests of those
// that must not wait for that lock: a fork()'s child, which does not have the
// thread, and a kdb session, which has stopped it.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "panicstop/lockprof.hpp"
#include "snapshot/parked_threads.hpp"
#include "sys/syscall.hpp"

namespace panicstop::testing {

class StuckReport {
 public:
  // Fills a pipe, starts the thread (which first runs `before`, if given) and
  // returns once it sleeps in the report's write.
  explicit StuckReport(void (*before)() = nullptr) {
    if (pipe(fds_) != 0) abort();
    const int flags = fcntl(fds_[1], F_GETFL);
    fcntl(fds_[1], F_SETFL, flags | O_NONBLOCK);
    static const char block[4096] = {};
    while (write(fds_[1], block, sizeof block) > 0) {
    }
    while (write(fds_[1], block, 1) > 0) {
    }
    fcntl(fds_[1], F_SETFL, flags);
    thread_ = std::thread([this, before] {
      if (before != nullptr) before();
      tid_.store(sys::gettid());
      lockprof_write_report(fds_[1]);
      close(fds_[1]);
    });
    while (tid_.load() == 0 || kernel_state(tid_.load()) != 'S') std::this_thread::yield();
  }
  // Drains the pipe: the report finishes and the thread ends.
  ~StuckReport() {
    char buf[4096];
    while (read(fds_[0], buf, sizeof buf) > 0) {
    }
    thread_.join();
    close(fds_[0]);
  }
  StuckReport(const StuckReport&) = delete;
  StuckReport& operator=(const StuckReport&) = delete;

  int tid() const { return tid_.load(); }

 private:
  int fds_[2] = {-1, -1};
  std::atomic<int> tid_{0};
  std::thread thread_;
};

}  // namespace panicstop::testing
