// kdb's console: commands read from a terminal or a control-socket connection
// while the process is stopped (the commands are listed in
// include/panicstop/kdb.hpp and by `help`).
//
// Line protocol, the same for a person and for `panicstop kdb PID`: the
// console writes a banner, then the prompt "kdb> " (no newline) whenever it
// waits for a command; each command's answer ends before the next prompt.
// `continue` answers "continuing" and returns. End of input, a read error or
// PANICSTOP_KDB_IDLE_MS without a complete line also return (the process
// continues), with a last line saying why when the output still works.
//
// Runs inside a session (session.hpp): no allocation, raw system calls.
#pragma once

#include <cstdint>

#include "kdb/session.hpp"

namespace panicstop::detail {

enum class ConsoleEnd { kContinue, kHangup, kIdle };

ConsoleEnd run_console(KdbSession* s, int in_fd, int out_fd, int64_t idle_timeout_ns) noexcept;

}  // namespace panicstop::detail
