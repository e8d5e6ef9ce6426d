// Temporary dump files left behind by processes that died while writing them.
//
// dump_files.cpp writes each dump as DIR/.panicstop-COMM-PID-SECONDS[-N]SUFFIX.tmp
// and renames it when it is complete; a process killed in between (SIGKILL,
// an OOM kill, a step deadline ending the process) leaves the temporary file,
// which can be as large as a core.
#pragma once

namespace panicstop::detail {

// Setup (install time; allocation and libc allowed). Removes, from the dump
// directory (PANICSTOP_DUMP_DIR, else the current directory) and from /tmp
// (where dumps fall back), the temporary dump files that no running process
// can still be writing. A file is removed only if all of these hold:
//   - its name has exactly the temporary-name shape above;
//   - it is a regular file (not a symbolic link) owned by this effective uid;
//   - for every way of reading a PID and SECONDS out of the name (a COMM may
//     itself end in "-digits"), that PID is this process (which has not
//     dumped yet: a file with its pid is an earlier process's that had the
//     same pid, as a container's pid 1 does at every start), or no longer
//     exists, or started after SECONDS (so it cannot have written it).
// A file of a live process that may still be writing it is never touched.
// Runs once per process; later calls do nothing. Each directory is swept at
// most once a minute by each user (sys/private_dir.hpp): a file left by a
// process killed mid-dump goes at the first install there after that.
void remove_stale_dump_files() noexcept;

}  // namespace panicstop::detail
