// Validating parser for minidumps (ours, Breakpad's, Crashpad's) on x86-64
// and aarch64, working on an in-memory image and never trusting an RVA, size
// or count from the file: every one is bounds-checked before use.
//
// Stacks are walked by frame pointers through the dump's own memory (the
// memory list and each thread's stack), so frames of code built without
// frame pointers end a walk early; symbolize_text_report() then names the
// frames from the module files the module list names.
#pragma once

#include <span>
#include <string_view>

#include "read/report.hpp"

namespace panicstop::read {

// True if the data starts with the minidump signature "MDMP".
bool looks_like_minidump(std::string_view data) noexcept;

// The report: message (the panic_message or dump_requested annotation, else
// "no panicstop annotations: minidump of PID (signal N)"), threads with names,
// registers and frame-pointer stacks, the crashing (or requesting) thread,
// modules with build ids, locks and nested panics from the annotations.
// Throws ReadError with one line for a bad signature or version, a directory
// or stream past the end of the file, a list whose count does not fit its
// stream, or no thread list.
Report parse_minidump(std::span<const unsigned char> image);

}  // namespace panicstop::read
