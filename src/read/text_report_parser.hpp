// Parses a text report written by panicstop (src/dump/text_report.hpp):
//
//   panic: MESSAGE
//   ...fault lines...
//   thread TID (name) [state]
//     #N 0xADDR function+0xOFF (module)
//   thread TID (name) [not_stopped] R
//     did not stop: state R, running; no registers     (what /proc showed)
//     (no registers: the thread was running)           (instead of frames)
//   locks:
//     ...one line per lock...
//
// Threads whose headers follow each other with no frames in between share the
// frames that come next (the writer's "N threads with this stack"). Frames
// may end in " at FILE:LINE", as `panicstop show` prints them, so its own
// output parses back to the same report. Lines the parser does not know are
// kept in Report::other_lines, never dropped.
#pragma once

#include <cstdint>
#include <string_view>

#include "read/report.hpp"

namespace panicstop::read {

// True if `data` starts like a text report ("panic: ").
bool looks_like_text_report(std::string_view data) noexcept;

// Throws ReadError naming the line for input that is not a text report
// (first line not "panic: ...", NUL bytes, a malformed thread or frame line).
Report parse_text_report(std::string_view data);

// The faulting pc a panicking thread's earlier-fault line names ("12 ms
// before: signal SIGSEGV (...), fault address 0x8, at 0x7f0000001234 ...;
// the program's handler resumed the thread at ..."), as the text report, the
// core's note and the minidump's annotation each say it; 0 for any other line.
uint64_t earlier_fault_pc_in(std::string_view line) noexcept;

}  // namespace panicstop::read
