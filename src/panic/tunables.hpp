// The panic layer's tunables, parsed once by install() from the environment.
// The dump layer parses its own (dump/dump_options.hpp: PANICSTOP_DUMP,
// PANICSTOP_DUMP_DIR, PANICSTOP_CORE, PANICSTOP_CORE_LIMIT), kdb its own
// (kdb/kdb_options.hpp: PANICSTOP_KDB*).
#pragma once

#include <cstdint>

namespace panicstop::detail {

enum class DiePolicy : uint8_t { kDie, kExit, kRestart, kHalt };

struct Tunables {
  bool stop_on_panic = true;       // PANICSTOP_STOP_ON_PANIC
  DiePolicy on_panic = DiePolicy::kDie;  // PANICSTOP_ON_PANIC
  uint32_t stop_timeout_ms = 1000;  // PANICSTOP_STOP_TIMEOUT_MS
  // PANICSTOP_STEP_TIMEOUT_MS: deadline of each hook and of the other steps of
  // the panic path; the dump step gets six times as much.
  uint32_t step_timeout_ms = 10000;
  bool debugger_on_panic = false;   // PANICSTOP_DEBUGGER_ON_PANIC
  bool trace_on_panic = false;      // PANICSTOP_TRACE_ON_PANIC
  int witness = 1;                  // PANICSTOP_WITNESS: 1 on, 0 order checks off, -1 off
  // PANICSTOP_WITNESS_ACTION: 0 warn, 1 panic. WITNESS applies both of its
  // variables itself before main(); install() only rejects bad values.
  int witness_action = 0;
  bool lockprof = false;            // PANICSTOP_LOCKPROF
  // kdb's own (PANICSTOP_KDB_IDLE_MS) deadline for the debugger step is
  // given by kdb when it registers the step (set_debugger_step).
};

// The values in force (defaults until install() has parsed the environment).
const Tunables& tunables() noexcept;

// Parses the environment into *out. On a bad value writes one line naming the
// variable, the bad value and the accepted values into err and returns false.
bool parse_tunables(Tunables* out, char* err, unsigned long err_size) noexcept;

}  // namespace panicstop::detail
