// Turning one crash record into dump files.
//
// File names: DIR/panicstop-COMM-PID-SECONDS.txt and .core (COMM: the
// process's comm with '/', spaces and control characters replaced by '_';
// SECONDS: the capture time in Unix seconds; a later dump of the same process
// in the same second adds "-N"). Each file is written under a hidden
// temporary name, DIR/.panicstop-COMM-PID-SECONDS.txt.tmp, fsynced, renamed
// to its final name, and the directory fsynced: a final name always holds a
// complete file; a writer that fails or faults mid-write leaves its temporary
// file, which the next write_dump() or end_dump_set() removes.
//
// DIR is the override if given, else DumpOptions::dir, else the current
// directory. When a file cannot be created or written there (unwritable,
// missing, full), the writer falls back to /tmp, and the text report finally to
// stderr, saying so on stderr each time. Every file written is announced as
// "panicstop: wrote PATH" on stderr; a writer the process refuses
// (DumpWriter::refusal) as "panicstop: no NAME: WHY".
//
// Crash path: no allocation, raw system calls, static buffers. Not reentrant:
// one dump set at a time (the panic path guarantees it; kdb and live_dump hold
// the stopper role).
#pragma once

#include "dump/writer.hpp"

namespace panicstop::detail {

// Starts a set of dumps of rec: chooses the directory and the base name.
// dir_override: nullptr or "" for the option. echo_fd, if not -1, gets a copy
// of every line said on stderr until end_dump_set() (the requester of a
// remote live dump reads the file names from it). dir_fd, if not -1 (and
// dir_override is given), is that directory opened by the requester and
// passed over the control socket: files are created relative to it, so they
// land where the requester asked even when the process could not reach the
// path itself (a server that dropped root after `panicstop run`, a chroot);
// dir_override then only names the files in the announced lines. The
// caller keeps ownership of dir_fd.
void begin_dump_set(const CrashRecord& rec, const DumpOptions& o, const char* dir_override, int echo_fd,
                    int dir_fd = -1) noexcept;

// Writes one file of the set with writer w. Returns true if the file was
// written (the stderr fallback does not count). Safe to call after a previous
// write_dump() of the set was abandoned by a fault (its partial file goes).
bool write_dump(const CrashRecord& rec, const DumpOptions& o, const DumpWriter& w) noexcept;

// Ends the set: removes what an abandoned writer left, forgets echo_fd.
void end_dump_set() noexcept;

// The whole set in one call, for kdb and live dumps: every writer of
// o.order, in that order. Returns the number of files written.
int write_dumps(const CrashRecord& rec, const DumpOptions& o, const char* dir_override, int echo_fd = -1,
                int dir_fd = -1) noexcept;

// The files the latest dump set (begin_dump_set() on) left under their final
// names, in the order written (the stderr fallback is not a file and is not
// listed). Static storage, rewritten by the next set: the panic path's upload
// step reads it right after its own set (the uploader needs the names); a live
// dump later in the same process replaces it.
inline constexpr size_t kDumpPathMax = 1024;
inline constexpr size_t kMaxDumpFiles = 8;
struct WrittenDumps {
  size_t count = 0;
  char paths[kMaxDumpFiles][kDumpPathMax] = {};
};
const WrittenDumps& written_dumps() noexcept;

}  // namespace panicstop::detail
