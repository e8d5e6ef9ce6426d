// Names of signals and of their si_code values, for the panic message and the
// text report. Async-signal-safe: static strings only.
#pragma once

namespace panicstop::sys {

// "SIGSEGV", or nullptr for a signal without a name here.
const char* signal_name(int sig) noexcept;
// "SEGV_MAPERR", "SI_USER", ..., or nullptr if the code is not known for sig.
const char* si_code_name(int sig, int code) noexcept;
// "address not mapped", ..., or nullptr when there is nothing to add to the name.
const char* si_code_meaning(int sig, int code) noexcept;

}  // namespace panicstop::sys
