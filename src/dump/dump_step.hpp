// The dump layer's steps on the panic path (panic_state.hpp: CrashSteps):
//   capture   right after the stop: fills the crash record's facts from the
//             panic layer's record and captures the snapshot, once. Every
//             later step (the debugger/trace step, each writer) reads this
//             one record; nothing captures again.
//   salvage   if the capture faulted or overran: the record keeps its facts
//             and what the snapshot had taken (its gaps say where it
//             stopped), and the writers run with it.
//   write(i)  one step per writer of DumpOptions::order, each under its own
//             deadline: a fault or a hang in one writer costs its file only.
//             Before each writer the record's nested-panic list is brought up
//             to date, so a later dump names an earlier writer's failure.
//   finish    removes what an abandoned writer left (dump_files.hpp).
// This is the only file of the dump layer that reads the panic layer.
#pragma once

#include <cstdint>

#include "snapshot/crash_record.hpp"

namespace panicstop::detail {

// Setup (install time): parses the dump options (exits 2 on a bad value),
// reserves the snapshot's and the core writer's storage, and registers the
// steps with set_crash_steps(). Idempotent.
void register_dump_step() noexcept;

// The record the panic's capture step took (or salvaged from a capture that
// faulted or overran): nullptr before it ran, or when there was nothing to
// salvage (no snapshot storage).
const CrashRecord* panic_crash_record() noexcept;

}  // namespace panicstop::detail
