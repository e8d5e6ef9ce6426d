// The composition root: install() sets up each layer, lowest first. Only this
// file knows every layer; the layers do not know each other's setup.
#include "panic/panic_internal.hpp"
#include "panicstop/panic.hpp"

namespace panicstop {

bool install() noexcept {
  // Tunables, slots, alternate stacks, stop and fatal-signal handlers.
  return detail::install_panic();
}

}  // namespace panicstop
