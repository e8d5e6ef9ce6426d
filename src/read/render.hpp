// Renders a Report for people (text) or machines (JSON).
//
// Text: the text-report layout (first line "panic: MESSAGE", "thread TID
// (name) [state]" blocks, frames "#N 0xADDR function+0xOFF (module) at
// FILE:LINE", threads with identical stacks grouped under "N threads with
// this stack", a "locks:" section); parse_text_report reads it back.
// Warnings are not part of the text: the caller prints them on stderr.
//
// JSON (schema version 1, documented in `panicstop help show`):
//   {"format":"panicstop-show","version":1,"kind":"text-report"|"core",
//    "file":S,"message":S,"pid":N|null,"signal":N|null,"panicking_tid":N|null,
//    "executable":S|null,
//    "threads":[{"tid":N,"name":S|null,"state":S|null,"signal":N|null,
//                "registers":{"pc":"0x..","sp":"0x.."}|null,
//                "frames":[{"index":N,"pc":"0x..","function":S|null,"offset":N|null,
//                           "module":S|null,"file":S|null,"line":N|null}]}],
//    "locks":[{"address":S|null,"kind":S|null,"name":S|null,"owner":N|null,
//              "readers":N,"text":S|null}],
//    "waits":[{"tid":N,"lock":S|null,"mode":S|null}],
//    "nested":[{"tid":N,"signal":N,"step":N,"message":S}],
//    "not_stopped":[N],"other_lines":[S],"warnings":[S]}
// Strings are valid UTF-8: bytes that are not are escaped as \u00XX.
#pragma once

#include <ostream>
#include <string>

#include "read/report.hpp"

namespace panicstop::read {

void render_text(const Report& report, std::ostream& out);
void render_json(const Report& report, const std::string& file, std::ostream& out);

// `s` as a JSON string literal, quotes included.
std::string json_string(const std::string& s);

}  // namespace panicstop::read
