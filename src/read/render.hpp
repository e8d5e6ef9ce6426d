// Renders a Report for people (text) or machines (JSON).
//
// Text: the text-report layout (first line "panic: MESSAGE", "thread TID
// (name) [state]" blocks, frames "#N 0xADDR function+0xOFF (module) at
// FILE:LINE", threads with identical stacks grouped under "N threads with
// this stack", a "locks:" section); parse_text_report reads it back.
// Warnings are not part of the text: the caller prints them on stderr.
//
// JSON (schema version 1, documented in `panicstop help show`; null where
// unknown):
//   {"format":"panicstop-show","version":1,"kind":"text-report"|"core",
//    "file":S,"message":S,"pid":N,"signal":N,"panicking_tid":N,
//    "live_dump":B,"dumping_tid":N (a live dump: no signal, no panicking_tid),
//    "executable":S,
//    "threads":[{"tid":N,"name":S,"state":S,"kernel_state":S,"signal":N,"notes":[S],
//                "registers":{"pc":"0x..","sp":"0x.."},
//                (threads that did not stop only:) "stopped":false,
//                "register_source":"kernel"|"none","syscall":N,"syscall_name":S,
//                "wchan":S,"no_registers":S,
//                "frames":[{"index":N,"pc":"0x..","function":S,"offset":N,
//                           "module":S,"module_offset":N,"file":S,"line":N}]}],
//    "locks":[{"address":S,"kind":S,"name":S,"owner":N,"readers":N,"text":S}],
//    "waits":[{"tid":N,"lock":S,"mode":S}],
//    "nested":[{"tid":N,"signal":N,"step":N,"message":S}],
//    "not_stopped":[N],
//    "modules":[{"start":"0x..","end":"0x..","path":S,"build_id":S,"executable":B}],
//    "header_lines":[S],"other_lines":[S],
//    "truncated":null|{"file_bytes":N,"expected_bytes":N,"segments":N,"segments_cut":N,
//                      "segments_missing":N,"notes_cut":B,"notes_read":N,"unreadable_stacks":[N]},
//    "warnings":[S]}
// Strings are valid UTF-8: bytes that are not are escaped as \u00XX.
#pragma once

#include <ostream>
#include <string>

#include "read/report.hpp"

namespace panicstop::read {

// A live dump's second line, before the dump's own header lines: "live
// dump: the process kept running; thread TID (NAME) took the dump". Text
// output never shows a live dump's thread as panicking nor a signal as its
// cause. parse_text_report skips the line (the report's threads say it).
inline constexpr const char* kLiveDumpHeading = "live dump: the process kept running";

// Heads a text report's unrecognized indented lines (Report::other_lines)
// when nothing else does, so they read back as lines, not frames or locks.
inline constexpr const char* kUnrecognizedHeading = "unrecognized lines:";

void render_text(const Report& report, std::ostream& out);
void render_json(const Report& report, const std::string& file, std::ostream& out);

// `s` as a JSON string literal, quotes included.
std::string json_string(const std::string& s);

}  // namespace panicstop::read
