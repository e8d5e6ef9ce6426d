// Parsing the tunables of DESIGN.md §5: setup only (getenv).
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "panic/panic_internal.hpp"
#include "panic/tunables.hpp"
#include "sys/format.hpp"
#include "sys/signal_names.hpp"

namespace panicstop::detail {

namespace {

struct Choice {
  const char* text;
  int value;
};

// Reports "panicstop: NAME=VALUE is not valid; accepted values: ACCEPTED". A
// value too long to quote is cut, so that the accepted values always fit.
bool reject(const char* name, const char* value, const char* accepted, char* err, unsigned long err_size) {
  constexpr int kQuoted = 128;
  const char* cut = strlen(value) > size_t(kQuoted) ? "..." : "";
  sys::format(err, err_size, "panicstop: %s=%.*s%s is not valid; accepted values: %s\n", name, kQuoted, value, cut,
              accepted);
  return false;
}

// Unset or empty means "keep the default".
const char* env(const char* name) {
  const char* v = getenv(name);
  return (v != nullptr && v[0] != '\0') ? v : nullptr;
}

template <size_t N>
bool parse_choice(const char* name, const Choice (&choices)[N], const char* accepted, int* out, char* err,
                  unsigned long err_size) {
  const char* v = env(name);
  if (v == nullptr) return true;
  for (const Choice& c : choices)
    if (sys::equals(v, c.text)) {
      *out = c.value;
      return true;
    }
  return reject(name, v, accepted, err, err_size);
}

bool parse_bool(const char* name, bool* out, char* err, unsigned long err_size) {
  static constexpr Choice kBool[] = {{"0", 0}, {"1", 1}};
  int v = *out ? 1 : 0;
  if (!parse_choice(name, kBool, "0, 1", &v, err, err_size)) return false;
  *out = v != 0;
  return true;
}

bool parse_ms(const char* name, uint32_t* out, char* err, unsigned long err_size) {
  const char* v = env(name);
  if (v == nullptr) return true;
  uint64_t ms = 0;
  // The whole value: "000...050ms" is as bad as "50ms".
  if (!sys::parse_u64(v, strlen(v), &ms) || ms == 0 || ms > 3'600'000)
    return reject(name, v, "a number of milliseconds from 1 to 3600000", err, err_size);
  *out = uint32_t(ms);
  return true;
}

bool parse_path(const char* name, char* out, size_t cap, char* err, unsigned long err_size) {
  const char* v = env(name);
  if (v == nullptr) return true;
  if (sys::bounded_strlen(v, cap) >= cap) {
    char accepted[64];
    sys::format(accepted, sizeof accepted, "a path shorter than %zu bytes", cap);
    return reject(name, v, accepted, err, err_size);
  }
  sys::copy_string(out, cap, v);
  return true;
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

// PANICSTOP_DUMP: "none", or formats joined by commas, each at most once.
bool parse_dump_formats(Tunables* t, char* err, unsigned long err_size) {
  const char* name = "PANICSTOP_DUMP";
  const char* v = env(name);
  if (v == nullptr) return true;
  const char* accepted = "none, or a comma-separated list of text, core, minidump (default text,core)";
  t->dump_text = t->dump_core = t->dump_minidump = false;
  if (sys::equals(v, "none")) return true;
  const char* p = v;
  for (;;) {
    const char* end = p;
    while (*end != ',' && *end != '\0') ++end;
    size_t n = size_t(end - p);
    bool* flag = n == 4 && strncmp(p, "text", 4) == 0       ? &t->dump_text
                 : n == 4 && strncmp(p, "core", 4) == 0     ? &t->dump_core
                 : n == 8 && strncmp(p, "minidump", 8) == 0 ? &t->dump_minidump
                                                            : nullptr;
    if (flag == nullptr || *flag) return reject(name, v, accepted, err, err_size);
    *flag = true;
    if (*end == '\0') return true;
    p = end + 1;
  }
}

}  // namespace

bool parse_tunables(Tunables* out, char* err, unsigned long err_size) noexcept {
  Tunables t;
  if (!parse_bool("PANICSTOP_STOP_ON_PANIC", &t.stop_on_panic, err, err_size)) return false;

  if (const char* dir = env("PANICSTOP_DUMP_DIR")) {
    if (sys::bounded_strlen(dir, sizeof t.dump_dir) >= sizeof t.dump_dir)
      return reject("PANICSTOP_DUMP_DIR", dir, "a directory path shorter than 512 bytes", err, err_size);
    sys::copy_string(t.dump_dir, sizeof t.dump_dir, dir);
  }

  if (!parse_dump_formats(&t, err, err_size)) return false;
  if (!parse_bool("PANICSTOP_MINIDUMP_ENVIRON", &t.minidump_environ, err, err_size)) return false;

  static constexpr Choice kCore[] = {{"mini", int(CoreKind::kMini)}, {"full", int(CoreKind::kFull)}};
  int core = int(t.core);
  if (!parse_choice("PANICSTOP_CORE", kCore, "mini, full", &core, err, err_size)) return false;
  t.core = CoreKind(core);

  static constexpr Choice kPolicy[] = {{"die", int(DiePolicy::kDie)},
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

  static constexpr Choice kWitness[] = {{"1", 1}, {"0", 0}, {"-1", -1}};
  if (!parse_choice("PANICSTOP_WITNESS", kWitness, "1, 0, -1", &t.witness, err, err_size)) return false;
  static constexpr Choice kWitnessAction[] = {{"warn", 0}, {"panic", 1}};
  if (!parse_choice("PANICSTOP_WITNESS_ACTION", kWitnessAction, "warn, panic", &t.witness_action, err, err_size))
    return false;
  if (!parse_bool("PANICSTOP_LOCKPROF", &t.lockprof, err, err_size)) return false;

  static constexpr Choice kKdb[] = {{"report", int(KdbBackend::kReport)}, {"console", int(KdbBackend::kConsole)}};
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
