// The drill workload with no crash handler: the kernel's own core dump
// (core_pattern, RLIMIT_CORE) is all there is. No hook runs; --crash panic is
// abort().
#include <cstdlib>

#include "drill_handler.hpp"

namespace drill {

const char* const kHandlerName = "kernel-core";
const bool kHandlerHasHook = false;
const bool kHandlerStopsThreads = false;

bool install_handler(const Hooks&, bool) { return true; }

void fatal_error(int) { abort(); }

}  // namespace drill
