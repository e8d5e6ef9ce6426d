// Names of the system calls a blocked thread usually sits in, for the text
// report's line about a thread that did not stop. Async-signal-safe: static
// strings only. Deliberately small: an unlisted number is shown as a number.
#pragma once

namespace panicstop::sys {

// "futex", "read", ... for this architecture's number nr, or nullptr.
const char* syscall_name(long nr) noexcept;

}  // namespace panicstop::sys
