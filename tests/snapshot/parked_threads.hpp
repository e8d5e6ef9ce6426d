// Test support: threads parked in known functions, stopped with their
// registers saved in their slots the way the stop handler saves them, so
// snapshot, unwinder and writers can be checked against known stacks.
#pragma once

#include <atomic>
#include <csignal>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "panicstop/thread.hpp"
#include "sys/format.hpp"
#include "sys/syscall.hpp"
#include "thread/slot.hpp"

namespace panicstop::testing {

// Parking: every parked thread sleeps on this word until it changes.
inline std::atomic<uint32_t> g_park_release{0};
inline std::atomic<uint32_t> g_stop_acks{0};
inline std::atomic<uint32_t> g_stop_resume{0};

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

// Saves the interrupted context into the slot and parks, like src/stop's
// handler will (the soft stop: it resumes when g_stop_resume changes).
inline void save_and_park_handler(int, siginfo_t* si, void* ucv) {
  detail::ThreadSlot* s = detail::claim_slot_in_signal_handler();
  auto* uc = static_cast<ucontext_t*>(ucv);
  uint32_t generation = g_stop_resume.load();
  s->context.siginfo = *si;
  s->context.ucontext = *uc;
#if defined(__x86_64__)
  if (uc->uc_mcontext.fpregs != nullptr) {
    std::memcpy(s->context.fpstate, uc->uc_mcontext.fpregs, 512);
    s->context.fpstate_size = 512;
  }
  s->context.stack_pointer = uintptr_t(uc->uc_mcontext.gregs[REG_RSP]);
#endif
  s->context.valid = true;
  s->stop_state.store(detail::StopState::kStopped);
  g_stop_acks.fetch_add(1);
  sys::futex_wake(&g_stop_acks, 1);
  while (g_stop_resume.load() == generation) sys::futex_wait(&g_stop_resume, generation);
  s->stop_state.store(detail::StopState::kRunning);
  s->context.valid = false;
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
    struct sigaction sa{};
    sa.sa_sigaction = save_and_park_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGUSR2, &sa, nullptr);
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

  // Stops every parked thread (context saved, stop_state kStopped).
  void stop() {
    g_stop_acks.store(0);
    for (int tid : tids_) sys::tgkill(sys::getpid(), tid, SIGUSR2);
    for (uint32_t seen; (seen = g_stop_acks.load()) < tids_.size();) sys::futex_wait(&g_stop_acks, seen);
    stopped_ = true;
  }
  void restart() {
    if (!stopped_) return;
    g_stop_resume.fetch_add(1);
    sys::futex_wake(&g_stop_resume, 1 << 30);
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
