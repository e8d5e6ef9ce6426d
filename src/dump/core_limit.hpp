// Whether the process lets panicstop write a core, asked at the panic: a
// core holds the process's memory, and `ulimit -c 0` or a non-dumpable
// process (prctl(PR_SET_DUMPABLE, 0): it holds secrets) says no core. The
// text report is written either way. PANICSTOP_CORE_LIMIT=ignore
// (DumpOptions::core_limit_ignored) writes the core regardless; `respect` is
// the default. A nonzero RLIMIT_CORE smaller than the core is not enforced: a
// truncated core reads back as damaged.
#pragma once

#include "dump/dump_options.hpp"

namespace panicstop::detail {

// Crash path (raw system calls): nullptr if a core may be written, else why
// not, ending with what overrides it, for the "panicstop: no core: WHY" line.
// The core writer's `refusal` in the writer table.
const char* core_refusal(const DumpOptions& o) noexcept;

}  // namespace panicstop::detail
