// `panicstop show [--json] FILE`: prints a text report or a core with
// file:line, or as JSON (schema in src/read/render.hpp and the command help).
#pragma once

#include "command.hpp"

namespace panicstop::tool {

extern const Command kShowCommand;

}  // namespace panicstop::tool
