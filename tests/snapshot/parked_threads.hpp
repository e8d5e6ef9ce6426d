// Test support: threads parked in known functions, soft-stopped by src/stop
// (registers saved in their slots), so snapshot, unwinder and writers can be
// checked against known stacks.
#pragma once

#include <atomic>
#include <csignal>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "panicstop/thread.hpp"
#include "stop/stop.hpp"
#include "sys/format.hpp"
#include "sys/syscall.hpp"
#include "thread/slot.hpp"

namespace panicstop::testing {

// Parking: every parked thread sleeps on this word until it changes.
inline std::atomic<uint32_t> g_park_release{0};

// Kept out of line and not a tail call so each park function has its own frame.
__attribute__((noinline)) inline void park_until_released() {
  uint32_t seen = g_park_release.load();
  while (g_park_release.load() == seen) sys::futex_wait(&g_park_release, seen);
  __asm__ volatile("" ::: "memory");
}
__attribute__((noinline)) inline void park_in_alpha() {
  park_until_released();
  __asm__ volatile("" ::: "memory");
}
__attribute__((noinline)) inline void park_in_beta() {
  park_until_released();
  __asm__ volatile("" ::: "memory");
}
__attribute__((noinline)) inline void park_in_gamma() {
  park_until_released();
  __asm__ volatile("" ::: "memory");
}

inline char kernel_state(int tid) {
  char path[64], buf[512];
  sys::format(path, sizeof path, "/proc/self/task/%d/stat", tid);
  std::string stat;
  FILE* f = fopen(path, "r");
  if (f == nullptr) return '?';
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char* close = strrchr(buf, ')');
  return close != nullptr && close[1] == ' ' ? close[2] : '?';
}

class ParkedThreads {
 public:
  using Body = void (*)();
  // Starts `count` threads named "<name_prefix>-<i>"; thread i runs
  // bodies[i % bodies.size()], which must end up in park_until_released().
  ParkedThreads(size_t count, std::vector<Body> bodies, const char* name_prefix = "parked") {
    detail::install_stop_handlers();
    std::atomic<size_t> started{0};
    tids_.resize(count);
    for (size_t i = 0; i < count; ++i) {
      std::string name = std::string(name_prefix) + "-" + std::to_string(i);
      Body body = bodies[i % bodies.size()];
      threads_.emplace_back([this, i, name, body, &started] {
        set_thread_name(name.c_str());
        tids_[i] = current_tid();
        started.fetch_add(1);
        body();
      });
    }
    while (started.load() < count) std::this_thread::yield();
    // Asleep in the futex: the saved PC is then inside the park function.
    for (int tid : tids_)
      while (kernel_state(tid) != 'S') std::this_thread::yield();
  }

  // Soft-stops every other thread of the process (context saved, stop_state
  // kStopped). Returns false if some thread did not stop.
  bool stop() {
    detail::StopResult r = detail::stop_other_threads(detail::StopKind::kSoft, 10'000'000'000);
    stopped_ = r.stopped > 0;
    return r.ok;
  }
  void restart() {
    if (!stopped_) return;
    detail::restart_stopped_threads();
    stopped_ = false;
  }
  ~ParkedThreads() {
    restart();
    g_park_release.fetch_add(1);
    sys::futex_wake(&g_park_release, 1 << 30);
    for (auto& t : threads_) t.join();
  }
  const std::vector<int>& tids() const { return tids_; }

 private:
  std::vector<int> tids_;
  std::vector<std::thread> threads_;
  bool stopped_ = false;
};

}  // namespace panicstop::testing
