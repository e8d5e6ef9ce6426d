// The LD_PRELOAD shim: panicstop for programs that were never built with it.
//
// Its constructor calls panicstop::install(), which reads the same PANICSTOP_*
// tunables as a program built with the library. The shim is the library's own
// objects plus this file, so it interposes exactly what the library does and
// nothing more: pthread_create, so each new thread takes an alternate signal
// stack as it starts (src/thread/thread_start_setup.cpp), and the signal
// functions, so that the program's own handlers and masks live beside
// panicstop's instead of replacing them (src/thread/program_signals.hpp).
// Malloc and I/O stay the program's own.
#include "panicstop/panic.hpp"

namespace {

__attribute__((constructor(101))) void panicstop_preload_install() { panicstop::install(); }

}  // namespace
