// Reading WITNESS's settings from the environment. Done
// once when the library loads; tests that change the environment in a child
// call these again.
#pragma once

#include "lockclass/site.hpp"
#include "panicstop/lock_object.hpp"

namespace panicstop::detail {

// PANICSTOP_WITNESS (1, 0, -1) and PANICSTOP_WITNESS_ACTION (warn, panic).
// A bad value is reported on stderr and the setting left unchanged.
void witness_read_environment() noexcept;

// WITNESS's site for lo if the calling thread's held list has it (witness
// built in and on). Registered with lockclass/hold_hooks.hpp at load.
bool witness_held_site(const LockObject* lo, Site* site) noexcept;

}  // namespace panicstop::detail
