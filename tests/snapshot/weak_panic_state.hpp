// Test support, temporary: weak stand-ins for panic_state(), tunables() and
// set_dump_step() while src/panic does not define them yet. A strong
// definition in the library wins over these without a conflict.
#pragma once

#include "panic/panic_state.hpp"
#include "panic/tunables.hpp"

namespace panicstop::detail {

__attribute__((weak)) PanicState& panic_state() noexcept {
  static PanicState state;
  return state;
}
__attribute__((weak)) const Tunables& tunables() noexcept {
  static Tunables t;
  return t;
}
__attribute__((weak)) void set_dump_step(DumpStepFn) noexcept {}

}  // namespace panicstop::detail
