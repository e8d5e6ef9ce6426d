// Setup of the kdb layer, called by install() after the panic layer (the
// panic layer's tunables are parsed by then; kdb parses its own here).
#pragma once

namespace panicstop::detail {

// Parses kdb's options (kdb_options.hpp; a bad value ends the program with
// status 2), registers the panic's debugger step, installs the
// PANICSTOP_KDB_SIGNAL handler, if one is configured, and the
// control socket unless PANICSTOP_KDB_SOCKET=0. A socket that cannot be made
// is reported on stderr and skipped; returns false only if the configured
// signal's handler cannot be installed.
bool install_kdb() noexcept;

// In the child of fork(): forgets a kdb session of the parent, closes the
// inherited control socket (leaving the parent's file alone) and listens on
// one of the child's own, DIR/CHILDPID.sock, under the same rules as
// install(); the child's exit removes that one. Async-signal-safe.
void kdb_after_fork() noexcept;

}  // namespace panicstop::detail
