// The drill workload under abseil's failure signal handler
// (absl::InstallFailureSignalHandler). Its writerfn is the hook: abseil calls
// it for each piece of its report after writing the report to stderr, then
// once with nullptr; the first piece runs the workload's hooks. abseil's
// defaults stay in force, including its 3-second alarm that aborts a handler
// that hangs. abseil has no fatal-error call of its own here: --crash panic
// is abort().
#include <atomic>
#include <cstdlib>

#include <absl/debugging/failure_signal_handler.h>

#include "drill_handler.hpp"

namespace drill {
namespace {

Hooks g_hooks;
std::atomic<bool> g_hooks_ran{false};

void write_failure(const char* data) {
  if (data == nullptr || g_hooks_ran.exchange(true)) return;
  if (g_hooks.fault != nullptr) g_hooks.fault();
  g_hooks.final_line();
}

}  // namespace

const char* const kHandlerName = "absl";
const bool kHandlerHasHook = true;
const bool kHandlerStopsThreads = false;

bool install_handler(const Hooks& hooks, bool) {
  g_hooks = hooks;
  absl::FailureSignalHandlerOptions options;
  options.writerfn = write_failure;
  absl::InstallFailureSignalHandler(options);
  return true;
}

void fatal_error(int) { abort(); }

}  // namespace drill
