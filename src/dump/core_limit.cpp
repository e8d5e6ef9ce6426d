#include "dump/core_limit.hpp"

#include <sys/prctl.h>
#include <sys/resource.h>

#include <cstdint>

#include "sys/syscall.hpp"

namespace panicstop::detail {

const char* core_refusal(const DumpOptions& o) noexcept {
  if (o.core_limit_ignored) return nullptr;
  if (sys::raw_syscall(SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0) != 1)
    return "the process is not dumpable (prctl PR_SET_DUMPABLE 0) (PANICSTOP_CORE_LIMIT=ignore writes one)";
  struct rlimit64_raw {
    uint64_t cur, max;
  } limit{~uint64_t(0), ~uint64_t(0)};
  if (sys::raw_syscall(SYS_prlimit64, 0, RLIMIT_CORE, nullptr, &limit) == 0 && limit.cur == 0)
    return "RLIMIT_CORE is 0 (ulimit -c 0) (PANICSTOP_CORE_LIMIT=ignore writes one)";
  return nullptr;
}

}  // namespace panicstop::detail
