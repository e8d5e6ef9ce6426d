// The panic's record, read by the snapshot and the writers. Everything is in
// static storage; the panicking thread writes it, and after the stop nothing
// else does.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "thread/slot.hpp"

namespace panicstop::detail {

inline constexpr size_t kPanicMessageMax = 1024;
inline constexpr size_t kMaxNestedPanics = 16;
inline constexpr size_t kMaxNotStopped = 256;

// A panic that did not get the panic path: a nested panic of the panicking
// thread (a fault in a hook or a writer), or a second thread's panic or fault.
struct NestedPanic {
  int tid = 0;
  int signo = 0;        // 0 for a panic() call
  int step = 0;         // PanicStep the panicking thread was in (nested only)
  bool same_thread = false;
  char message[256] = {};
};

// Steps of the panic path, in order; each runs under its own deadline.
enum class PanicStep : int {
  kNone = 0,
  kStop,
  kPreDumpHooks,
  kDump,
  kPostDumpHooks,
  kFinalHooks,
  kDie,
  kDebugger,  // after the banner, before the PreDump hooks; numbered last to keep the others' numbers
};
const char* panic_step_name(PanicStep step) noexcept;

struct PanicState {
  std::atomic<int> panicking_tid{0};      // 0 until the election
  ThreadSlot* panicking_slot = nullptr;
  int signo = 0;                          // fatal signal; SIGABRT for panic()/terminate
  int si_code = 0;
  uintptr_t fault_address = 0;
  char message[kPanicMessageMax] = {};    // "panic: " is not part of it
  int64_t start_ns = 0;                   // CLOCK_MONOTONIC at entry
  int64_t stopped_ns = 0;                 // when the stop finished
  bool stop_enabled = true;               // PANICSTOP_STOP_ON_PANIC
  uint32_t threads_stopped = 0;
  uint32_t not_stopped_count = 0;
  int not_stopped_tids[kMaxNotStopped] = {};
  std::atomic<uint32_t> nested_count{0};
  NestedPanic nested[kMaxNestedPanics];
  std::atomic<int> step{0};               // current PanicStep
  char note[256] = {};                    // what the stop had to repair first, for the banner and report
};

// The one record of this process. Never null.
PanicState& panic_state() noexcept;

// The dump step. The panic path calls it once, for the first panic only, under
// the dump deadline, with every other thread stopped (or listed as not stopped).
// Whoever writes dumps registers it at install; until then the step is a no-op.
using DumpStepFn = void (*)();
void set_dump_step(DumpStepFn fn) noexcept;

// The debugger step (FreeBSD's trace_on_panic and debugger_on_panic): with
// PANICSTOP_TRACE_ON_PANIC=1 it prints the panicking thread's stack, with
// PANICSTOP_DEBUGGER_ON_PANIC=1 it opens kdb's console on the stopped process
// before the dumps are written. Runs after the banner, under the step
// deadline plus PANICSTOP_KDB_IDLE_MS when the debugger is on. kdb registers
// it at install; until then the step is a no-op.
using DebuggerStepFn = void (*)(bool trace, bool debugger);
void set_debugger_step(DebuggerStepFn fn) noexcept;

}  // namespace panicstop::detail
