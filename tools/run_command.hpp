// `panicstop run [OPTIONS] -- PROG [ARGS...]`: runs an unmodified, dynamically
// linked program with libpanicstop_preload.so and the tunables set from the
// options; the program's own exit status comes back.
#pragma once

#include "command.hpp"

namespace panicstop::tool {

extern const Command kRunCommand;

}  // namespace panicstop::tool
