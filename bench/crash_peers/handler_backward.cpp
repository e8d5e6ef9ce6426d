// The drill workload under backward-cpp's signal handler
// (backward::SignalHandling, symbolized with libdw). backward-cpp calls no
// user code while it handles a crash: there is no hook, so the final line is
// never written and --crash hook is refused. --crash panic is abort().
#include <cstdlib>

#define BACKWARD_HAS_DW 1
#include <backward.hpp>

#include "drill_handler.hpp"

namespace drill {

const char* const kHandlerName = "backward-cpp";
const bool kHandlerHasHook = false;
const bool kHandlerStopsThreads = false;

bool install_handler(const Hooks&, bool) {
  static backward::SignalHandling handling;  // installs in its constructor
  return handling.loaded();
}

void fatal_error(int) { abort(); }

}  // namespace drill
