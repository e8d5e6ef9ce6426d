// Symbolization and unwinding with libdw (elfutils), the way eu-stack does it.
// Only for files the parsers accepted; libdw failures never throw, they add a
// line to Report::warnings and leave what could not be resolved empty.
#pragma once

#include <string>

#include "read/report.hpp"

namespace panicstop::read {

// Adds file:line (from DWARF when present) to the frames of a text report
// and demangles every function name. With a "modules:" section, each module
// file is loaded at its start address and every pc is looked up (frames
// without a symbol get one); a file whose build-id differs from the
// report's is not used. Without it, a frame's function is found by name in
// its module file.
void symbolize_text_report(Report& report);

// Unwinds every thread of the core at core_path (already validated by
// parse_elf_core) and replaces each thread's frames with the unwound stack,
// named and with file:line where debug info allows. A thread libdw cannot
// unwind keeps one frame at its saved pc.
void unwind_core(const std::string& core_path, Report& report);

// The demangled form of a C++ symbol name, or the name unchanged.
std::string demangle(const std::string& name);

}  // namespace panicstop::read
