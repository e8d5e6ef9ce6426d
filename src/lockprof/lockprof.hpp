// Lock profiling internals. Hold times are measured from WITNESS's held-lock
// entries: WITNESS reports them through lockclass/hold_hooks.hpp, where
// lockprof_hold is registered at load; neither layer includes the other.
#pragma once

#include <cstdint>

#include "panicstop/lock_object.hpp"
#include "lockclass/site.hpp"

namespace panicstop::detail {

// One acquisition of lo at site ended after hold_ticks (lockprof_ticks units).
// Counts the acquisition and its hold time.
void lockprof_hold(const LockObject* lo, const Site& site, int64_t hold_ticks) noexcept;

// Converts a lockprof_ticks() difference to nanoseconds.
uint64_t lockprof_ticks_to_ns(int64_t ticks) noexcept;

// Measures the cycle counter's rate (a few milliseconds; setup time).
void lockprof_calibrate() noexcept;

// PANICSTOP_LOCKPROF (0 or 1); setup (lockprof_setup.cpp).
void lockprof_read_environment() noexcept;

}  // namespace panicstop::detail
