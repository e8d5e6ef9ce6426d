// The dump layer's own options, parsed once at install from the environment
// (dump_options_setup.cpp) and read by the writers and the file code. Nothing
// outside the dump layer (and kdb, which writes dumps too) reads them.
//   PANICSTOP_DUMP        a comma-separated list of writer names (writer.hpp's
//                         table: "text", "core", "minidump"), written in that order, or
//                         "none". Default: every writer that is on by default,
//                         in table order ("text,core").
//   PANICSTOP_DUMP_DIR    where the files go; "" = the current directory, then /tmp;
//                         a relative path is taken from the current directory at install
//   PANICSTOP_CORE        mini | full (dump/core_plan.hpp says what each holds)
//   PANICSTOP_CORE_LIMIT  respect | ignore (dump/core_limit.hpp)
//   PANICSTOP_MINIDUMP_ENVIRON  0 (default) | 1: the environment in the minidump
//   PANICSTOP_UPLOAD_URL  (upload_step.hpp's) when set, adds "minidump" to the
//                         list unless it is "none": collectors take minidumps
#pragma once

#include <cstddef>
#include <cstdint>

namespace panicstop::detail {

enum class CoreKind : uint8_t { kMini, kFull };

inline constexpr size_t kMaxDumpWriters = 8;

struct DumpOptions {
  char dir[512] = {};
  // Indices into dump_writers() (writer.hpp), in writing order.
  uint8_t order[kMaxDumpWriters] = {};
  uint32_t order_count = 0;
  CoreKind core = CoreKind::kMini;
  bool core_limit_ignored = false;  // PANICSTOP_CORE_LIMIT=ignore
  bool minidump_environ = false;    // PANICSTOP_MINIDUMP_ENVIRON=1: the environment in the .dmp
  // The effective uid at install (-1: not installed). A server that then
  // became another user (its workers dropping root) may no longer write
  // the directory it was given: the fallback line says that this is why.
  int64_t installed_euid = -1;
};

// The options in force: the defaults (every default writer, table order)
// until install has parsed the environment.
const DumpOptions& dump_options() noexcept;

// Setup: parses the environment into *out. On a bad value writes one line
// (sys/env_options.hpp's format) into err and returns false.
bool parse_dump_options(DumpOptions* out, char* err, size_t err_size) noexcept;

// Setup: parses the environment into the options in force; on a bad value
// writes the line to stderr and exits with status 2, as every layer's
// options do. Idempotent.
void install_dump_options() noexcept;

// The defaults: every writer on by default, in table order.
DumpOptions default_dump_options() noexcept;

}  // namespace panicstop::detail
