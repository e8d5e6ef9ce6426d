// Setup-time code: getenv and stdio are fine here (never on a lock path).
#include "witness/witness_setup.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "panicstop/witness.hpp"

namespace panicstop::detail {

void witness_read_environment() noexcept {
  if (const char* v = std::getenv("PANICSTOP_WITNESS"); v != nullptr && *v != '\0') {
    if (std::strcmp(v, "1") == 0)
      witness_set_mode(WitnessMode::kOn);
    else if (std::strcmp(v, "0") == 0)
      witness_set_mode(WitnessMode::kNoOrderChecks);
    else if (std::strcmp(v, "-1") == 0)
      witness_set_mode(WitnessMode::kOff);
    else
      std::fprintf(stderr, "panicstop: PANICSTOP_WITNESS=%s: expected 1, 0 or -1\n", v);
  }
  if (const char* v = std::getenv("PANICSTOP_WITNESS_ACTION"); v != nullptr && *v != '\0') {
    if (std::strcmp(v, "warn") == 0)
      witness_set_action(WitnessAction::kWarn);
    else if (std::strcmp(v, "panic") == 0)
      witness_set_action(WitnessAction::kPanic);
    else
      std::fprintf(stderr, "panicstop: PANICSTOP_WITNESS_ACTION=%s: expected warn or panic\n", v);
  }
}

namespace {
// Before main(): locks taken by other static constructors run with the
// defaults until then.
__attribute__((constructor)) void read_witness_settings_at_load() { witness_read_environment(); }
}  // namespace

}  // namespace panicstop::detail
