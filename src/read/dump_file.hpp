// Opens a dump file of any kind `panicstop show` knows and returns its
// Report, symbolized: a text report gets file:line from the module files it
// names, a core is unwound with libdw.
#pragma once

#include <string>

#include "read/report.hpp"

namespace panicstop::read {

// Largest text report read into memory; cores are mapped, not read.
inline constexpr size_t kMaxTextReportBytes = size_t{256} << 20;

// Throws ReadError with one line ("cannot open: No such file or directory",
// "not an ELF file", "note 3 ... runs past the end of the segment").
Report read_dump_file(const std::string& path);

}  // namespace panicstop::read
