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
const char* env(const char* name) { return sys::env_value(name); }
bool reject(const char* name, const char* value, const char* accepted, char* err, unsigned long err_size) {
  return sys::env_reject(name, value, accepted, err, err_size);
}
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
bool parse_path(const char* name, char* out, size_t cap, char* err, unsigned long err_size) {
  return sys::env_path(name, out, cap, err, err_size);
}

// A signal by name (SIGUSR2, USR2) or number. Refused: signals that cannot be
// caught, the fatal signals (they are the panic's), and the library's own.
bool parse_kdb_signal(int* out, char* err, unsigned long err_size) {
  const char* name = "PANICSTOP_KDB_SIGNAL";
  const char* v = env(name);
  if (v == nullptr || sys::equals(v, "0") || sys::equals(v, "off")) return true;
  const char* accepted = "off, 0, or a signal such as SIGUSR1, SIGUSR2, SIGHUP, SIGWINCH, 10";
  int sig = 0;
  uint64_t number = 0;
  if (sys::parse_u64(v, strlen(v), &number)) {
    sig = number < 65 ? int(number) : 0;
  } else {
    const char* bare = (v[0] == 'S' && v[1] == 'I' && v[2] == 'G') ? v + 3 : v;
    for (int s = 1; s < SIGRTMIN && sig == 0; ++s) {
      const char* known = sys::signal_name(s);
      if (known != nullptr && sys::equals(known + 3, bare)) sig = s;
    }
  }
  if (sig <= 0 || sig > SIGRTMAX || sig == SIGKILL || sig == SIGSTOP || sig >= SIGRTMAX - 5)
    return reject(name, v, accepted, err, err_size);
  for (int fatal : kFatalSignals)
    if (sig == fatal) return reject(name, v, accepted, err, err_size);
  *out = sig;
  return true;
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

  static constexpr EnvChoice kKdb[] = {{"report", int(KdbBackend::kReport)}, {"console", int(KdbBackend::kConsole)}};
  int backend = int(t.kdb_backend);
  if (!parse_choice("PANICSTOP_KDB", kKdb, "report, console", &backend, err, err_size)) return false;
  t.kdb_backend = KdbBackend(backend);
  if (!parse_path("PANICSTOP_KDB_OUTPUT", t.kdb_output, sizeof t.kdb_output, err, err_size)) return false;
  if (!parse_kdb_signal(&t.kdb_signal, err, err_size)) return false;
  if (const char* socket = env("PANICSTOP_KDB_SOCKET")) {
    if (sys::equals(socket, "0")) {
      t.kdb_socket = false;
    } else if (!sys::equals(socket, "1")) {
      if (socket[0] != '/') return reject("PANICSTOP_KDB_SOCKET", socket, "1, 0, or an absolute directory path", err, err_size);
      if (!parse_path("PANICSTOP_KDB_SOCKET", t.kdb_socket_dir, sizeof t.kdb_socket_dir - 16, err, err_size))
        return false;
    }
  }
  if (!parse_ms("PANICSTOP_KDB_IDLE_MS", &t.kdb_idle_ms, err, err_size)) return false;

  *out = t;
  return true;
}

}  // namespace panicstop::detail
