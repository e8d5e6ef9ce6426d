// The composition root: install() sets up each layer, lowest first. Only this
// file knows every layer; the layers do not know each other's setup.
#include "dump/dump_step.hpp"
#include "kdb/kdb_setup.hpp"
#include "panic/panic_internal.hpp"
#include "panicstop/panic.hpp"

namespace panicstop {

bool install() noexcept {
  // Dumps first: the snapshot's storage is reserved before any handler that
  // could need it is armed.
  detail::register_dump_step();
  // Tunables, slots, alternate stacks, stop and fatal-signal handlers.
  if (!detail::install_panic()) return false;
  // kdb's triggers last: a request may arrive as soon as they exist.
  return detail::install_kdb();
}

}  // namespace panicstop
