// `panicstop drill [OPTIONS]`: crashes the built-in workload
// (panicstop-drill-workload, installed beside `panicstop`) in a child process,
// reads its dumps back and prints what a person needs to judge them: crash and
// thread, threads captured out of threads alive, whether the PreDump hook
// finished while another thread held "log", dump files and sizes, time from
// crash to exit, and gdb's count of threads in the core.
#pragma once

#include "command.hpp"

namespace panicstop::tool {

extern const Command kDrillCommand;

}  // namespace panicstop::tool
