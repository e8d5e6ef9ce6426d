// The LD_PRELOAD shim. It interposes nothing by itself: its constructor calls
// panicstop::install(), which reads the same PANICSTOP_* tunables as a program
// built with the library. Everything else — handlers, alternate stacks, the
// stop — is the library's own.
#include "panicstop/panic.hpp"

namespace {

__attribute__((constructor(101))) void panicstop_preload_install() { panicstop::install(); }

}  // namespace
