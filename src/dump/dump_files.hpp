// Turning one snapshot into dump files (DESIGN.md §3 invariant 7, §5).
//
// File names: DIR/panicstop-COMM-PID-SECONDS.txt and .core (COMM: the
// process's comm with '/', spaces and control characters replaced by '_';
// SECONDS: the capture time in Unix seconds; a later dump of the same process
// in the same second adds "-N"). Each file is written under a hidden
// temporary name, DIR/.panicstop-COMM-PID-SECONDS.txt.tmp, fsynced, renamed
// to its final name, and the directory fsynced: a final name always holds a
// complete file; a crash mid-write leaves only a dot-file ending ".tmp".
//
// DIR is the override if given, else tunables().dump_dir, else the current
// directory. When a file cannot be created or written there (unwritable,
// missing, full), the writer falls back to /tmp, and the text report finally to
// stderr, saying so on stderr each time. Every file written is announced as
// "panicstop: wrote PATH" on stderr.
//
// Crash path: no allocation, raw system calls, static buffers. Not reentrant:
// one dump at a time (the panic path guarantees it; kdb and live_dump hold the
// stopper role).
#pragma once

#include "snapshot/snapshot.hpp"

namespace panicstop::detail {

// Writes every enabled dump of snap. dir_override: nullptr or "" for the
// tunable. Returns the number of files written (the stderr fallback does not
// count). echo_fd, if not -1, gets a copy of every line said on stderr (the
// requester of a remote live dump reads the file names from it).
int write_dumps(const ProcessSnapshot& snap, const char* dir_override, int echo_fd = -1) noexcept;

// The files the latest write_dumps() call left under their final names, in the
// order written (the stderr fallback is not a file and is not listed). Static
// storage, rewritten by the next write_dumps(): the panic path reads it right
// after its own dump (the uploader needs the names); a live dump later in the
// same process replaces it.
inline constexpr size_t kDumpPathMax = 1024;
inline constexpr size_t kMaxDumpFiles = 8;
struct WrittenDumps {
  size_t count = 0;
  char paths[kMaxDumpFiles][kDumpPathMax] = {};
};
const WrittenDumps& written_dumps() noexcept;

}  // namespace panicstop::detail
