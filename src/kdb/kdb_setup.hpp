// Setup of the kdb layer, called by install() after the panic layer (the
// tunables are parsed by then).
#pragma once

namespace panicstop::detail {

// Installs the PANICSTOP_KDB_SIGNAL handler, if one is configured, and the
// control socket unless PANICSTOP_KDB_SOCKET=0. A socket that cannot be made
// is reported on stderr and skipped; returns false only if the configured
// signal's handler cannot be installed.
bool install_kdb() noexcept;

}  // namespace panicstop::detail
