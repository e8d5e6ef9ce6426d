// The drill workload under glog's failure signal handler
// (google::InstallFailureSignalHandler). The failure writer is the hook: glog
// calls it for each line of its report (the report goes nowhere else once a
// writer is installed); the first line runs the workload's hooks and is then
// written to stderr like the rest. --crash panic is LOG(FATAL), glog's own
// fatal path, which aborts into the signal handler. Logs go to stderr, not
// to files.
#include <unistd.h>

#include <atomic>

#include <glog/logging.h>

#include "drill_handler.hpp"

namespace drill {
namespace {

Hooks g_hooks;
std::atomic<bool> g_hooks_ran{false};

void write_failure(const char* data, size_t size) {
  if (!g_hooks_ran.exchange(true)) {
    if (g_hooks.fault != nullptr) g_hooks.fault();
    g_hooks.final_line();
  }
  if (write(2, data, size) < 0) {
  }
}

}  // namespace

const char* const kHandlerName = "glog";
const bool kHandlerHasHook = true;
const bool kHandlerStopsThreads = false;

bool install_handler(const Hooks& hooks, bool) {
  g_hooks = hooks;
  FLAGS_logtostderr = true;
  google::InitGoogleLogging("crash_peers_glog");
  google::InstallFailureSignalHandler();
  google::InstallFailureWriter(write_failure);
  return true;
}

void fatal_error(int worker) { LOG(FATAL) << "drill: worker-" << worker << " found the books unbalanced"; }

}  // namespace drill
