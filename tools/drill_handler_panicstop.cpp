// The drill workload under panicstop: install(), the hooks as PreDump hooks,
// panicstop::panic() as the fatal path. --no-stop sets PANICSTOP_STOP_ON_PANIC=0
// before install() reads the tunables.
#include <cstdlib>

#include <panicstop/panicstop.hpp>

#include "drill_handler.hpp"

namespace drill {
namespace {

Hooks g_hooks;

void run_fault(void*) { g_hooks.fault(); }
void run_final_line(void*) { g_hooks.final_line(); }

}  // namespace

const char* const kHandlerName = "panicstop";
const bool kHandlerHasHook = true;
const bool kHandlerStopsThreads = true;

bool install_handler(const Hooks& hooks, bool no_stop) {
  if (no_stop) setenv("PANICSTOP_STOP_ON_PANIC", "0", 1);
  if (!panicstop::install()) return false;
  g_hooks = hooks;
  // Registered first: a fault inside a hook is a nested panic, and the next
  // hook must still run.
  if (hooks.fault != nullptr) panicstop::on_panic(panicstop::Stage::PreDump, run_fault, nullptr);
  panicstop::on_panic(panicstop::Stage::PreDump, run_final_line, nullptr);
  return true;
}

void fatal_error(int worker) { panicstop::panic("drill: worker-%d found the books unbalanced", worker); }

}  // namespace drill
