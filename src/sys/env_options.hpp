// Reading one layer's options from the environment, at install only (getenv:
// setup code, never the crash path). Each layer parses its own variables with
// these helpers, once, when it is installed; they all report a bad value the
// same way:
//   panicstop: NAME=VALUE is not valid; accepted values: ACCEPTED
// written into err (one line, newline-terminated), and return false. Unset or
// empty means "keep the default": *out is left as it is.
#pragma once

#include <cstddef>
#include <cstdint>

namespace panicstop::sys {

struct EnvChoice {
  const char* text;
  int value;
};

// The variable's value, or nullptr when it is unset or empty.
const char* env_value(const char* name) noexcept;

// Writes the rejection line into err and returns false.
bool env_reject(const char* name, const char* value, const char* accepted, char* err, size_t err_size) noexcept;

// One of choices[0..count) by its exact text.
bool env_choice(const char* name, const EnvChoice* choices, size_t count, const char* accepted, int* out, char* err,
                size_t err_size) noexcept;
template <size_t N>
bool env_choice(const char* name, const EnvChoice (&choices)[N], const char* accepted, int* out, char* err,
                size_t err_size) noexcept {
  return env_choice(name, choices, N, accepted, out, err, err_size);
}

// "0" or "1".
bool env_bool(const char* name, bool* out, char* err, size_t err_size) noexcept;

// A whole number of milliseconds from 1 to 3600000 (all of the value: "50ms"
// and "000...050ms" are refused).
bool env_ms(const char* name, uint32_t* out, char* err, size_t err_size) noexcept;

// A path that fits in cap bytes with its terminating NUL.
bool env_path(const char* name, char* out, size_t cap, char* err, size_t err_size) noexcept;

// What every layer does with a bad value at install: writes err (the
// rejection line) to stderr and ends the program with status 2.
[[noreturn]] void env_fail(const char* err, size_t err_size) noexcept;

// A layer's install: parse(&options) into *into, or env_fail() on a bad value.
template <class Options>
void env_install(bool (*parse)(Options*, char*, size_t) noexcept, Options* into) noexcept {
  char err[512];
  Options o;
  if (!parse(&o, err, sizeof err)) env_fail(err, sizeof err);
  *into = o;
}

}  // namespace panicstop::sys
