// Reads PANICSTOP_CORE_LIMIT at install (core_limit.hpp); getenv belongs to setup.
#include <cstdlib>

#include "dump/core_limit.hpp"
#include "sys/format.hpp"

namespace panicstop::detail {

extern bool g_core_limit_ignored;

void read_core_limit_tunable() noexcept {
  const char* value = std::getenv("PANICSTOP_CORE_LIMIT");
  g_core_limit_ignored = false;
  if (value == nullptr || value[0] == '\0' || sys::equals(value, "respect")) return;
  if (sys::equals(value, "ignore")) {
    g_core_limit_ignored = true;
    return;
  }
  // As every other tunable: a value not understood ends the program at install.
  sys::write_line(2, "panicstop: PANICSTOP_CORE_LIMIT=%s is not valid: expected 'respect' or 'ignore'", value);
  std::exit(2);
}

}  // namespace panicstop::detail
