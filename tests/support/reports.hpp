// Reading dumps and talking to the control socket from inside a test process.
#pragma once

#include <string>

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
// serves it: a thread cannot wait for its own answer.
std::string control_request(const std::string& path, const std::string& line);

}  // namespace panicstop::testing
