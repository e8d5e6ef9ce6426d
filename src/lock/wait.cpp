#include "lock/wait.hpp"

#include <pthread.h>

#include <algorithm>

#include "lock/park.hpp"
#include "panicstop/deadline.hpp"
#include "sys/syscall.hpp"

namespace panicstop::detail {

long WaitRecord::sleep(const void* addr, uint32_t expected, int64_t deadline_ns) noexcept {
  slot_->parked.store(true, std::memory_order_relaxed);
  const long r = deadline_ns < 0 ? sys::futex_wait(addr, expected) : sys::futex_wait_until(addr, expected, deadline_ns);
  slot_->parked.store(false, std::memory_order_relaxed);
  return r;
}

std::atomic<uint8_t> g_spin_turn_generation{1};

void spin_turns_after_fork() noexcept {
  const uint8_t g = g_spin_turn_generation.load(std::memory_order_relaxed);
  g_spin_turn_generation.store(uint8_t(g % 255 + 1), std::memory_order_relaxed);
}

namespace {

// The lock layer's part of a fork()'s child. Registered at load, not at
// install(): a program that uses the locks and never installs forks too (a
// daemon, a prefork server), and its child must not inherit the parent's
// sleepers, wake marks and spin turns. This file is linked into every
// program whose locks spin or sleep.
void locks_after_fork() noexcept {
  park_after_fork();
  spin_turns_after_fork();
}

__attribute__((constructor)) void reset_locks_in_fork_children() {
  pthread_atfork(nullptr, nullptr, locks_after_fork);
}

}  // namespace

uint32_t relaxes_per_spin_read() noexcept {
  // Racing first spinners may both time it; either result will do. No
  // function-local static: its guard could block a thread that a signal
  // handler interrupted inside the first measurement.
  static std::atomic<uint32_t> relaxes{0};
  uint32_t n = relaxes.load(std::memory_order_relaxed);
  if (__builtin_expect(n != 0, 1)) return n;
  // The fastest of a few timings: a preemption in one only makes it slower.
  constexpr int kRelaxesTimed = 256;
  int64_t fastest = INT64_MAX;
  for (int attempt = 0; attempt < 4; ++attempt) {
    const int64_t start = steady_now_ns();
    for (int i = 0; i < kRelaxesTimed; ++i) cpu_relax();
    fastest = std::min(fastest, steady_now_ns() - start);
  }
  n = uint32_t(std::clamp<int64_t>(kSpinReadIntervalNs * kRelaxesTimed / std::max<int64_t>(1, fastest), 1, 1 << 16));
  relaxes.store(n, std::memory_order_relaxed);
  return n;
}

}  // namespace panicstop::detail
