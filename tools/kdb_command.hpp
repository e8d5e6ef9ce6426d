// `panicstop kdb PID [-c CMD]...`: kdb's console in a running process that
// installed panicstop (every thread stopped while it is open), through its
// control socket: interactive, or a script of commands followed by continue.
#pragma once

#include "command.hpp"

namespace panicstop::tool {

extern const Command kKdbCommand;

}  // namespace panicstop::tool
