// Parsing kdb's options at install (kdb_options.hpp): getenv.
#include <csignal>
#include <cstring>

#include "kdb/kdb_options.hpp"
#include "panic/panic_state.hpp"
#include "sys/env_options.hpp"
#include "sys/format.hpp"
#include "sys/signal_names.hpp"

namespace panicstop::detail {

KdbOptions& kdb_options_storage() noexcept;

namespace {

const char* env(const char* name) { return sys::env_value(name); }
bool reject(const char* name, const char* value, const char* accepted, char* err, size_t err_size) {
  return sys::env_reject(name, value, accepted, err, err_size);
}

// A signal by name (SIGUSR2, USR2) or number. Refused: signals that cannot be
// caught, the fatal signals (they are the panic's), and the library's own.
bool parse_kdb_signal(int* out, char* err, size_t err_size) {
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

bool parse_kdb_options(KdbOptions* out, char* err, size_t err_size) noexcept {
  KdbOptions o;
  static constexpr sys::EnvChoice kKdb[] = {{"report", int(KdbBackend::kReport)},
                                            {"console", int(KdbBackend::kConsole)}};
  int backend = int(o.backend);
  if (!sys::env_choice("PANICSTOP_KDB", kKdb, "report, console", &backend, err, err_size)) return false;
  o.backend = KdbBackend(backend);
  if (!sys::env_path("PANICSTOP_KDB_OUTPUT", o.output, sizeof o.output, err, err_size)) return false;
  if (!parse_kdb_signal(&o.signal, err, err_size)) return false;
  if (const char* socket = env("PANICSTOP_KDB_SOCKET")) {
    if (sys::equals(socket, "0")) {
      o.socket = false;
    } else if (!sys::equals(socket, "1")) {
      if (socket[0] != '/') return reject("PANICSTOP_KDB_SOCKET", socket, "1, 0, or an absolute directory path", err, err_size);
      if (!sys::env_path("PANICSTOP_KDB_SOCKET", o.socket_dir, sizeof o.socket_dir - 16, err, err_size)) return false;
    }
  }
  if (!sys::env_ms("PANICSTOP_KDB_IDLE_MS", &o.idle_ms, err, err_size)) return false;
  *out = o;
  return true;
}

void install_kdb_options() noexcept { sys::env_install(parse_kdb_options, &kdb_options_storage()); }

}  // namespace panicstop::detail
