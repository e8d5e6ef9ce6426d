// Whether the process lets panicstop write a core, asked at the panic: a
// core holds the process's memory, and `ulimit -c 0` or a non-dumpable
// process (prctl(PR_SET_DUMPABLE, 0): it holds secrets) says no core. The
// text report is written either way. PANICSTOP_CORE_LIMIT=ignore writes the
// core regardless; `respect` is the default. A nonzero RLIMIT_CORE smaller
// than the core is not enforced: a truncated core reads back as damaged.
#pragma once

namespace panicstop::detail {

// Setup: reads PANICSTOP_CORE_LIMIT; a value it does not know is reported
// and exit(2), as for every tunable.
void read_core_limit_tunable() noexcept;

// Crash path (raw system calls): nullptr if a core may be written, else why
// not, for the message.
const char* core_refused_by_process() noexcept;

}  // namespace panicstop::detail
