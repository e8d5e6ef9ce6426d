// Dump writers: each turns the one ProcessSnapshot into one file. Adding a dump
// format means adding a writer to the table in dump_step.cpp, nothing else.
#pragma once

#include "panic/tunables.hpp"
#include "snapshot/snapshot.hpp"

namespace panicstop::detail {

struct DumpWriter {
  const char* suffix;  // ".txt", ".core"
  bool (*enabled)(const Tunables& t) noexcept;
  // Writes the whole file to fd (already open, positioned at 0). Returns false
  // on a write error; the caller then removes the temporary file. Runs in the
  // crash path: no allocation, raw system calls only.
  bool (*write)(const ProcessSnapshot& snap, const Tunables& t, int fd) noexcept;
};

}  // namespace panicstop::detail
