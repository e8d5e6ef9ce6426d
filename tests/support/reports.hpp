// Reading dumps and talking to the control socket from inside a test process.
#pragma once

#include <string>
#include <vector>

#include "snapshot/crash_record.hpp"

namespace panicstop::testing {

// The text report's block for one thread: its header line up to the next
// thread header or blank line; "" when the thread is not in the report.
std::string thread_block(const std::string& report, int tid);

// Connects to the control socket at path; -1 with errno set on failure.
int control_connect(const std::string& path);

// Sends one request line to the control socket at path and returns the whole
// answer. Runs inside the served process, so it first blocks the connection
// signal in the calling thread (with the raw system call: the interposed
// pthread_sigmask would not block a reserved signal) so that another thread
// serves it: a thread cannot wait for its own answer. pass_fd, if not -1,
// goes with the line (SCM_RIGHTS), as `panicstop dump --dir` sends its
// directory.
std::string control_request(const std::string& path, const std::string& line, int pass_fd = -1);

// rec's text report as the dump writer writes it (through a memfd).
std::string render_text_report(const detail::CrashRecord& rec);

// abi::__cxa_demangle's text for a mangled name (what c++filt prints); ""
// when it refuses.
std::string cxa_demangled(const std::string& mangled);

// The defined symbols `nm FLAGS --defined-only PATH` lists, version suffixes
// ("@GLIBCXX_3.4") dropped.
std::vector<std::string> nm_defined_symbols(const std::string& path, const char* flags);

}  // namespace panicstop::testing
