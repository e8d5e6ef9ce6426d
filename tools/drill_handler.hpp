// The crash handler one build of the drill workload runs under.
//
// tools/drill_workload.cpp is one source built once per handler: the drill's
// own workload links tools/drill_handler_panicstop.cpp, and bench/crash_peers
// builds it again against abseil's, glog's and backward-cpp's failure signal
// handlers and the kernel's plain core dump (bench/crash_peers/handler_*.cpp).
// Threads, locks, logger, hook and crash kinds are the same in every build;
// only what this header declares differs.
#pragma once

namespace drill {

// What the workload wants run while the handler handles a crash.
struct Hooks {
  // Takes the "log" Mutex, appends the final line, says so on stderr.
  void (*final_line)();
  // Faults (a write through a null pointer); set only for --crash hook.
  // Run before final_line, so the handler's recovery from a fault in its
  // own hook decides whether the final line is still written.
  void (*fault)();
};

// Short name for messages ("panicstop", "absl", "glog", ...).
extern const char* const kHandlerName;

// Whether the handler calls user code while it handles a crash; without it
// the hooks are never run and --crash hook is refused.
extern const bool kHandlerHasHook;

// Whether the handler stops the other threads, so that --no-stop means
// something; the workload refuses --no-stop where it does not.
extern const bool kHandlerStopsThreads;

// Installs the handler; called on the main thread before any other thread
// exists. `no_stop` (only ever true where kHandlerStopsThreads) asks for the
// handler without stopping the other threads. Returns false after a message
// on stderr when the handler cannot be installed.
bool install_handler(const Hooks& hooks, bool no_stop);

// The handler's own fatal-error path for --crash panic: panicstop::panic(),
// LOG(FATAL) for glog, abort() where the handler has none of its own.
[[noreturn]] void fatal_error(int worker);

}  // namespace drill
