// The ELF core writer (DESIGN.md §7): a core that gdb, lldb, eu-stack and drgn
// open with every thread's stack.
#pragma once

#include "dump/writer.hpp"

namespace panicstop::detail {

// Writes an ET_CORE file of the snapshot: PT_NOTE first (the panicking thread's
// NT_PRSTATUS first, NT_PRPSINFO, NT_SIGINFO, NT_AUXV, NT_FILE, per-thread FP
// notes, the PANICSTOP note), then one PT_LOAD per mapping in address order,
// with contents chosen by t.core (mini or full).
bool write_elf_core(const ProcessSnapshot& snap, const Tunables& t, int fd) noexcept;

}  // namespace panicstop::detail
