// Reading WITNESS's and lock profiling's settings from the environment. Done
// once when the library loads; tests that change the environment in a child
// call these again.
#pragma once

namespace panicstop::detail {

// PANICSTOP_WITNESS (1, 0, -1) and PANICSTOP_WITNESS_ACTION (warn, panic).
// A bad value is reported on stderr and the setting left unchanged.
void witness_read_environment() noexcept;
// PANICSTOP_LOCKPROF (0 or 1).
void lockprof_read_environment() noexcept;

}  // namespace panicstop::detail
