// CondVar's out-of-line half: the sleep (recorded in the thread's slot for
// dumps) and the wake. The sequence protocol is described in condvar.hpp.
#include "panicstop/condvar.hpp"
#include "panicstop/witness.hpp"

#include <cerrno>
#include <climits>

#include "lock/wait.hpp"
#include "sys/syscall.hpp"

namespace panicstop {

bool CondVar::sleep(uint32_t seq, int64_t deadline_ns) noexcept {
  PANICSTOP_WITNESS_HOOK(witness_sleep(&lo_, "condvar wait"));
  long r;
  {
    detail::WaitRecord wait(&lo_, detail::WaitMode::kCondVar);
    r = wait.sleep(detail::futex_address(lo_.word), seq, deadline_ns);
  }
  waiters_.fetch_sub(1, std::memory_order_relaxed);
  // A wake that raced with the deadline still counts as a timeout here; the
  // caller's predicate (if any) is checked again either way.
  return r == -ETIMEDOUT;
}

void CondVar::wake(int count) noexcept {
  sys::futex_wake(detail::futex_address(lo_.word), count < 0 ? INT_MAX : count);
}

}  // namespace panicstop
