// The text report (the textdump of this world): first line "panic: MESSAGE",
// then the panicking thread, one block per thread ("thread TID (name) [state]"
// and frames "#N 0xADDR function+0xOFF (module)"), the locks section, nested
// panics and threads that did not stop.
#pragma once

#include "dump/writer.hpp"

namespace panicstop::detail {

// The writer: rec's report to fd. Reads nothing but rec (and the frozen
// process's memory through rec's snapshot).
bool write_text_report(const CrashRecord& rec, const DumpOptions& o, int fd) noexcept;

}  // namespace panicstop::detail
