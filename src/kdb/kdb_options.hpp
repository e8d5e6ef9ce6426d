// kdb's own options, parsed once by install_kdb() (kdb_options_setup.cpp) and
// read by the sessions, the console, the control socket and the debugger step.
//   PANICSTOP_KDB         report (default) | console: what kdb_enter() does
//   PANICSTOP_KDB_OUTPUT  the report backend's file; "" = stderr
//   PANICSTOP_KDB_SIGNAL  off (default), or a signal that enters kdb
//   PANICSTOP_KDB_SOCKET  1 (default), 0 (no control socket), or its directory
//   PANICSTOP_KDB_IDLE_MS how long a quiet console waits before going on
#pragma once

#include <cstddef>
#include <cstdint>

namespace panicstop::detail {

enum class KdbBackend : uint8_t { kReport, kConsole };

struct KdbOptions {
  KdbBackend backend = KdbBackend::kReport;
  char output[512] = {};
  int signal = 0;               // 0 = no signal trigger
  bool socket = true;
  char socket_dir[256] = {};    // "" = /tmp/panicstop-UID
  uint32_t idle_ms = 60000;
};

// The options in force (the defaults until install_kdb() has parsed them).
const KdbOptions& kdb_options() noexcept;

// Setup: parses the environment into *out; on a bad value writes the
// rejection line (sys/env_options.hpp) into err and returns false.
bool parse_kdb_options(KdbOptions* out, char* err, size_t err_size) noexcept;

// Setup: parses into the options in force; a bad value ends the program with
// status 2, as every layer's options do.
void install_kdb_options() noexcept;

}  // namespace panicstop::detail
