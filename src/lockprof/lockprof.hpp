// Lock profiling internals shared with WITNESS: hold times are measured from
// witness's held-lock entries, so witness reports them here.
#pragma once

#include <cstdint>

#include "panicstop/lock_object.hpp"
#include "witness/order_graph.hpp"

namespace panicstop::detail {

// One acquisition of lo at site ended after hold_ticks (lockprof_ticks units).
// Counts the acquisition and its hold time.
void lockprof_hold(const LockObject* lo, const Site& site, int64_t hold_ticks) noexcept;

// Converts a lockprof_ticks() difference to nanoseconds.
uint64_t lockprof_ticks_to_ns(int64_t ticks) noexcept;

// Measures the cycle counter's rate (a few milliseconds; setup time).
void lockprof_calibrate() noexcept;

// WITNESS's site for lo if the calling thread's held list has it (witness built
// in and on), for the hard paths' contention records.
bool witness_held_site(const LockObject* lo, Site* site) noexcept;

}  // namespace panicstop::detail
