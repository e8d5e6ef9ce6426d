// Dump writers and their table. A writer turns the one crash record
// (snapshot/crash_record.hpp: the snapshot plus the crash facts) into one
// file, using its own options (dump_options.hpp) and nothing else: it never
// reads the panic layer, and it never captures.
//
// Adding a dump format: write the writer in its own file (a function with the
// `write` signature below, and optionally a `refusal`), then add one line to
// the table in writers.cpp. Its name becomes a PANICSTOP_DUMP value, and on
// the panic path it runs as a step of its own, under its own deadline, so a
// fault or a hang in it costs its file only.
//
// Converting a writer written against the older interface
// (write(const ProcessSnapshot&, const Tunables&, int) plus enabled(const
// Tunables&)): take the snapshot as rec.snap(); read the signal, si_code,
// fault address, message, nested panics and the threads that did not stop
// from rec.facts (CrashFacts), never from panic_state(); take the core kind
// and directory from DumpOptions; drop `enabled` (PANICSTOP_DUMP lists the
// writers by name) or turn a process-level "no" into `refusal`.
#pragma once

#include <cstddef>

#include "dump/dump_options.hpp"
#include "snapshot/crash_record.hpp"

namespace panicstop::detail {

struct DumpWriter {
  const char* name;    // PANICSTOP_DUMP's word for it, and the step's name: "text", "core"
  const char* suffix;  // the file's: ".txt", ".core"
  bool on_by_default;  // written when PANICSTOP_DUMP is unset
  // Writes the whole file to fd (already open, positioned at 0). Returns false
  // on a write error; the caller then removes the temporary file. Runs in the
  // crash path: no allocation, raw system calls only, static storage.
  bool (*write)(const CrashRecord& rec, const DumpOptions& o, int fd) noexcept;
  // nullptr, or why the process refuses this dump right now (asked at the
  // panic, before the file is created): the writer is then skipped and the
  // reason said on stderr. nullptr function: never refused.
  const char* (*refusal)(const DumpOptions& o) noexcept;
  // The text report is also written to stderr when no file can be.
  bool stderr_fallback;
};

// The table, in default order. *count gets its size (at most kMaxDumpWriters).
const DumpWriter* dump_writers(size_t* count) noexcept;

}  // namespace panicstop::detail
