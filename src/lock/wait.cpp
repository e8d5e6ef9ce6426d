#include "lock/wait.hpp"

#include "sys/syscall.hpp"

namespace panicstop::detail {

long WaitRecord::sleep(const void* addr, uint32_t expected, int64_t deadline_ns) noexcept {
  slot_->parked.store(true, std::memory_order_relaxed);
  const long r = deadline_ns < 0 ? sys::futex_wait(addr, expected) : sys::futex_wait_until(addr, expected, deadline_ns);
  slot_->parked.store(false, std::memory_order_relaxed);
  return r;
}

}  // namespace panicstop::detail
