// The panic path's dump step: capture the snapshot once, then write the dumps.
#pragma once

#include <cstddef>

#include "dump/writer.hpp"

namespace panicstop::detail {

// The writers, in the order their files are written (text first: it is the
// smallest and the one a person reads first). *count gets the table's size.
const DumpWriter* dump_writers(size_t* count) noexcept;

// Setup (install time): reserves the snapshot's storage and registers
// run_dump_step() with set_dump_step(). Idempotent.
void register_dump_step() noexcept;

// Captures the process and writes every enabled dump (dump_files.hpp). Called by
// the panic path once, for the first panic, with the other threads stopped.
void run_dump_step() noexcept;

}  // namespace panicstop::detail
