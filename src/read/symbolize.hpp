// Symbolization and unwinding with libdw (elfutils), the way eu-stack does it.
// Only for files the parsers accepted; libdw failures never throw, they add a
// line to Report::warnings and leave what could not be resolved empty.
#pragma once

#include <string>

#include "read/report.hpp"

namespace panicstop::read {

// For each frame of a text report whose module file exists and has symbols:
// finds the frame's function in that file and adds file:line (from DWARF
// when present). Every mangled function name is demangled.
void symbolize_text_report(Report& report);

// Unwinds every thread of the core at core_path (already validated by
// parse_elf_core) and replaces each thread's frames with the unwound stack,
// named and with file:line where debug info allows. A thread libdw cannot
// unwind keeps one frame at its saved pc.
void unwind_core(const std::string& core_path, Report& report);

// The demangled form of a C++ symbol name, or the name unchanged.
std::string demangle(const std::string& name);

}  // namespace panicstop::read
