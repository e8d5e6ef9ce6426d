// `panicstop dump PID [--dir DIR]`: a live dump (text report and ELF core) of
// a running process that installed panicstop, through its control socket;
// the process goes on after a pause of the stop plus the writing.
#pragma once

#include "command.hpp"

namespace panicstop::tool {

extern const Command kDumpCommand;

}  // namespace panicstop::tool
