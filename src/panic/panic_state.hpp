// The panic layer's own record of the panic. Everything is in static
// storage; the panicking thread writes it, and after the stop nothing else
// does. Layers above read it once, at the capture step, into the crash record
// (snapshot/crash_record.hpp), which is what the dumps are written from: the
// writers never read this header.
#pragma once

#include <atomic>
#include <csignal>
#include <cstddef>
#include <cstdint>

#include "stop/stop.hpp"
#include "thread/program_signals.hpp"
#include "thread/slot.hpp"

namespace panicstop::detail {

// The fatal signals the library takes over (thread/program_signals.hpp).
inline constexpr int kFatalSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS};

inline constexpr size_t kPanicMessageMax = 1024;
inline constexpr size_t kMaxNestedPanics = 16;

// A panic that did not get the panic path: a nested panic of the panicking
// thread (a fault in a hook or a writer), or a second thread's panic or fault.
struct NestedPanic {
  int tid = 0;
  int signo = 0;        // 0 for a panic() call
  int step = 0;         // PanicStep the panicking thread was in (nested only)
  const char* step_detail = nullptr;  // which one of the step's kind ("core" for kDump); static text
  bool same_thread = false;
  char message[256] = {};
  // Set (release) once the fields above are written: nested_count counts
  // claimed entries, and a reader on another thread may see the count before
  // the entry is filled in.
  std::atomic<bool> ready{false};
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
  kDebugger,  // after the banner, before the PreDump hooks; numbered after kDie to keep the others' numbers
  kCapture,   // right after the stop: the crash record; numbered last for the same reason
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
  bool stop_enabled = true;               // PANICSTOP_STOP_ON_PANIC
  // The hard stop's result, as stop_other_threads() returned it (its tid
  // list lives in the stopper's memory; a hard stop is the last stop).
  // All zero when the stop did not run.
  StopResult stop;
  std::atomic<uint32_t> nested_count{0};
  NestedPanic nested[kMaxNestedPanics];
  std::atomic<int> step{0};               // current PanicStep
  const char* step_detail = nullptr;      // the current step's detail (NestedPanic::step_detail)
  char note[256] = {};                    // what the stop had to repair first, for the banner and report
  // For a panic that names no fault of its own (abort(), panic(), a signal
  // the process sent itself): the panicking thread's last fault that the
  // program's handler resumed elsewhere, which may be what the panic is
  // about (the capture keeps it only if so); sig 0 if none.
  ResumedFault earlier_fault{};
};

// The one record of this process. Never null.
PanicState& panic_state() noexcept;

// The steps the layers above add to the panic path, all run by the
// panicking thread, each under its own deadline, with every other thread
// stopped (or listed as not stopped); a fault or overrun in one is recorded
// as a nested panic and the path goes on with the next:
//   capture   once, right after the stop: takes the crash record every later
//             step reads (2 x PANICSTOP_STEP_TIMEOUT_MS).
//   salvage   only if capture faulted or overran: turns what it had taken
//             into the record the writers read, so that a failed capture
//             costs detail, not the dumps (one step timeout).
//   write(i)  for i in [0, writer_count()): writes dump i, after the PreDump
//             hooks (6 x PANICSTOP_STEP_TIMEOUT_MS each); writer_name(i) is
//             the step's detail in messages ("core": "dump (core)").
//   finish    after the last writer, whatever happened to them: clean up
//             what a failed writer left (one step timeout).
// The dump layer registers them at install; until then there are none.
struct CrashSteps {
  void (*capture)() noexcept = nullptr;
  uint32_t (*writer_count)() noexcept = nullptr;
  const char* (*writer_name)(uint32_t i) noexcept = nullptr;
  void (*write)(uint32_t i) noexcept = nullptr;
  void (*finish)() noexcept = nullptr;
  // After the files: sending them away (dump/upload_step.hpp), under a
  // deadline of upload_budget_ns() plus one step timeout; skipped while the
  // budget is 0 (no upload configured).
  void (*upload)() noexcept = nullptr;
  int64_t (*upload_budget_ns)() noexcept = nullptr;
  void (*salvage)() noexcept = nullptr;
};
// steps must stay valid for the life of the process (static storage).
void set_crash_steps(const CrashSteps* steps) noexcept;

// "dump (core)", "capture", "pre-dump hooks": the step's name with its
// detail, for messages and the crash record.
void format_step_name(int step, const char* detail, char* out, size_t cap) noexcept;

// The debugger step (FreeBSD's trace_on_panic and debugger_on_panic): with
// PANICSTOP_TRACE_ON_PANIC=1 it prints the panicking thread's stack, with
// PANICSTOP_DEBUGGER_ON_PANIC=1 it opens kdb's console on the stopped process
// before the dumps are written. Runs after the banner, under the step
// deadline plus debugger_ns (kdb: PANICSTOP_KDB_IDLE_MS) when the debugger is on, and reads the
// crash record the capture step took (it never captures again). kdb
// registers it at install; until then the step is a no-op.
// debugger_ns: how much longer than the step deadline the step may take when
// the debugger is on (kdb's console idle time).
using DebuggerStepFn = void (*)(bool trace, bool debugger);
void set_debugger_step(DebuggerStepFn fn, int64_t debugger_ns) noexcept;

}  // namespace panicstop::detail
