// Parsing the panic layer's tunables (tunables.hpp): setup only (getenv).
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "panic/panic_internal.hpp"
#include "panic/tunables.hpp"
#include "sys/env_options.hpp"
#include "sys/format.hpp"
#include "sys/signal_names.hpp"

namespace panicstop::detail {

namespace {

using sys::EnvChoice;

// The shared helpers (sys/env_options.hpp), under this file's short names.
template <size_t N>
bool parse_choice(const char* name, const EnvChoice (&choices)[N], const char* accepted, int* out, char* err,
                  unsigned long err_size) {
  return sys::env_choice(name, choices, accepted, out, err, err_size);
}
bool parse_bool(const char* name, bool* out, char* err, unsigned long err_size) {
  return sys::env_bool(name, out, err, err_size);
}
bool parse_ms(const char* name, uint32_t* out, char* err, unsigned long err_size) {
  return sys::env_ms(name, out, err, err_size);
}

}  // namespace

bool parse_tunables(Tunables* out, char* err, unsigned long err_size) noexcept {
  Tunables t;
  if (!parse_bool("PANICSTOP_STOP_ON_PANIC", &t.stop_on_panic, err, err_size)) return false;

  static constexpr EnvChoice kPolicy[] = {{"die", int(DiePolicy::kDie)},
                                       {"exit", int(DiePolicy::kExit)},
                                       {"restart", int(DiePolicy::kRestart)},
                                       {"halt", int(DiePolicy::kHalt)}};
  int policy = int(t.on_panic);
  if (!parse_choice("PANICSTOP_ON_PANIC", kPolicy, "die, exit, restart, halt", &policy, err, err_size)) return false;
  t.on_panic = DiePolicy(policy);

  if (!parse_ms("PANICSTOP_STOP_TIMEOUT_MS", &t.stop_timeout_ms, err, err_size)) return false;
  if (!parse_ms("PANICSTOP_STEP_TIMEOUT_MS", &t.step_timeout_ms, err, err_size)) return false;
  if (!parse_bool("PANICSTOP_DEBUGGER_ON_PANIC", &t.debugger_on_panic, err, err_size)) return false;
  if (!parse_bool("PANICSTOP_TRACE_ON_PANIC", &t.trace_on_panic, err, err_size)) return false;

  static constexpr EnvChoice kWitness[] = {{"1", 1}, {"0", 0}, {"-1", -1}};
  if (!parse_choice("PANICSTOP_WITNESS", kWitness, "1, 0, -1", &t.witness, err, err_size)) return false;
  static constexpr EnvChoice kWitnessAction[] = {{"warn", 0}, {"panic", 1}};
  if (!parse_choice("PANICSTOP_WITNESS_ACTION", kWitnessAction, "warn, panic", &t.witness_action, err, err_size))
    return false;
  if (!parse_bool("PANICSTOP_LOCKPROF", &t.lockprof, err, err_size)) return false;

  *out = t;
  return true;
}

}  // namespace panicstop::detail
