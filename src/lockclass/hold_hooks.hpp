// Where WITNESS and lock profiling meet without knowing each other. Lock
// profiling measures hold times from WITNESS's held-lock entries, and the
// hard paths' contention records take WITNESS's site for a lock; each side
// registers its half here when the library loads (their *_setup.cpp
// constructors). Until a side has registered, its hook does nothing.
//
// The profiling switch and clock live here too: WITNESS stamps acquisitions
// with lockprof_ticks() while lockprof_active() (include/panicstop/lockprof.hpp),
// both of which this layer defines.
#pragma once

#include <cstdint>

#include "lockclass/site.hpp"
#include "panicstop/lock_object.hpp"

namespace panicstop::detail {

// Lock profiling's: one acquisition of lo at site ended after hold_ticks
// (lockprof_ticks() units). Called by WITNESS at the release.
using HoldObserver = void (*)(const LockObject* lo, const Site& site, int64_t hold_ticks) noexcept;
void set_hold_observer(HoldObserver fn) noexcept;
void report_hold(const LockObject* lo, const Site& site, int64_t hold_ticks) noexcept;

// WITNESS's: the site where the calling thread took lo, if its held list has
// it (witness built in and on). Called by lock profiling.
using HeldSiteLookup = bool (*)(const LockObject* lo, Site* site) noexcept;
void set_held_site_lookup(HeldSiteLookup fn) noexcept;
bool held_site(const LockObject* lo, Site* site) noexcept;

}  // namespace panicstop::detail
