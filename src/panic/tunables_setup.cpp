// Parsing the tunables of DESIGN.md §5: setup only (getenv).
#include <cstdlib>

#include "panic/panic_internal.hpp"
#include "panic/tunables.hpp"
#include "sys/format.hpp"

namespace panicstop::detail {

namespace {

struct Choice {
  const char* text;
  int value;
};

// Reports "panicstop: NAME=VALUE is not valid; accepted values: ACCEPTED".
bool reject(const char* name, const char* value, const char* accepted, char* err, unsigned long err_size) {
  sys::format(err, err_size, "panicstop: %s=%s is not valid; accepted values: %s\n", name, value, accepted);
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
  if (!sys::parse_u64(v, sys::bounded_strlen(v, 32), &ms) || ms == 0 || ms > 3'600'000)
    return reject(name, v, "a number of milliseconds from 1 to 3600000", err, err_size);
  *out = uint32_t(ms);
  return true;
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

  static constexpr Choice kDump[] = {{"text,core", 3}, {"core,text", 3}, {"text", 1}, {"core", 2}, {"none", 0}};
  int dump = 3;
  if (!parse_choice("PANICSTOP_DUMP", kDump, "text,core, text, core, none", &dump, err, err_size)) return false;
  t.dump_text = (dump & 1) != 0;
  t.dump_core = (dump & 2) != 0;

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
  if (!parse_bool("PANICSTOP_LOCKPROF", &t.lockprof, err, err_size)) return false;

  *out = t;
  return true;
}

}  // namespace panicstop::detail
