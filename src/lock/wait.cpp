#include "lock/wait.hpp"

#include <linux/futex.h>

#include "sys/syscall.hpp"

namespace panicstop::detail {

static_assert(kWakeAny == FUTEX_BITSET_MATCH_ANY);

long WaitRecord::sleep(const void* addr, uint32_t expected, int64_t deadline_ns, uint32_t wake_bits) noexcept {
  slot_->parked.store(true, std::memory_order_relaxed);
  long r;
  if (wake_bits == kWakeAny) {
    r = deadline_ns < 0 ? sys::futex_wait(addr, expected) : sys::futex_wait_until(addr, expected, deadline_ns);
  } else {
    // FUTEX_WAIT_BITSET's timeout is an absolute CLOCK_MONOTONIC time, like deadline_ns.
    struct timespec ts;
    ts.tv_sec = deadline_ns / 1000000000;
    ts.tv_nsec = deadline_ns % 1000000000;
    r = sys::raw_syscall(SYS_futex, addr, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected,
                         deadline_ns < 0 ? nullptr : &ts, nullptr, wake_bits);
  }
  slot_->parked.store(false, std::memory_order_relaxed);
  return r;
}

long futex_wake_bits(const void* addr, int count, uint32_t wake_bits) noexcept {
  return sys::raw_syscall(SYS_futex, addr, FUTEX_WAKE_BITSET | FUTEX_PRIVATE_FLAG, count, nullptr, nullptr,
                          wake_bits);
}

}  // namespace panicstop::detail
