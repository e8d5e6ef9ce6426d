// Setup only (getenv): env_options.hpp.
#include "sys/env_options.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "sys/format.hpp"
#include "sys/syscall.hpp"

namespace panicstop::sys {

const char* env_value(const char* name) noexcept {
  const char* v = getenv(name);
  return (v != nullptr && v[0] != '\0') ? v : nullptr;
}

// A value too long to quote is cut, so that the accepted values always fit.
bool env_reject(const char* name, const char* value, const char* accepted, char* err, size_t err_size) noexcept {
  constexpr int kQuoted = 128;
  const char* cut = strlen(value) > size_t(kQuoted) ? "..." : "";
  format(err, err_size, "panicstop: %s=%.*s%s is not valid; accepted values: %s\n", name, kQuoted, value, cut,
         accepted);
  return false;
}

bool env_choice(const char* name, const EnvChoice* choices, size_t count, const char* accepted, int* out, char* err,
                size_t err_size) noexcept {
  const char* v = env_value(name);
  if (v == nullptr) return true;
  for (size_t i = 0; i < count; ++i)
    if (equals(v, choices[i].text)) {
      *out = choices[i].value;
      return true;
    }
  return env_reject(name, v, accepted, err, err_size);
}

bool env_bool(const char* name, bool* out, char* err, size_t err_size) noexcept {
  static constexpr EnvChoice kBool[] = {{"0", 0}, {"1", 1}};
  int v = *out ? 1 : 0;
  if (!env_choice(name, kBool, "0, 1", &v, err, err_size)) return false;
  *out = v != 0;
  return true;
}

bool env_ms(const char* name, uint32_t* out, char* err, size_t err_size) noexcept {
  const char* v = env_value(name);
  if (v == nullptr) return true;
  uint64_t ms = 0;
  if (!parse_u64(v, strlen(v), &ms) || ms == 0 || ms > 3'600'000)
    return env_reject(name, v, "a number of milliseconds from 1 to 3600000", err, err_size);
  *out = uint32_t(ms);
  return true;
}

bool env_path(const char* name, char* out, size_t cap, char* err, size_t err_size) noexcept {
  const char* v = env_value(name);
  if (v == nullptr) return true;
  if (bounded_strlen(v, cap) >= cap) {
    char accepted[64];
    format(accepted, sizeof accepted, "a path shorter than %zu bytes", cap);
    return env_reject(name, v, accepted, err, err_size);
  }
  copy_string(out, cap, v);
  return true;
}

void env_fail(const char* err, size_t err_size) noexcept {
  if (stderr_takes_messages()) write_all(2, err, bounded_strlen(err, err_size));
  _exit(2);
}

}  // namespace panicstop::sys
