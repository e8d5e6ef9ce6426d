// A kdb session: the one thread that stopped the others, from
// begin_session() to end_session() (include/panicstop/kdb.hpp describes what
// the process sees). kdb_enter(), live_dump(), the control socket and the
// console all go through it, so there is one way to stop and resume.
//
// Everything here runs with the other threads stopped: no allocation, no
// stdio, no locks that are not panic-aware, raw system calls (the crash
// path's rules; a stopped thread may hold malloc's lock).
#pragma once

#include <cstdint>

#include "snapshot/crash_record.hpp"
#include "stop/stop.hpp"

namespace panicstop::detail {

struct KdbSession {
  char why[200] = {};                   // "kdb: ..." or "live dump: ..."
  StopResult stop;                      // what the soft stop caught
  uint64_t saved_mask = 0;              // the caller's signal mask before the session
  // The crash record every command and dump of the session reads: captured
  // on first use, or the panic's own (the debugger step) set before use.
  const CrashRecord* record = nullptr;
};

enum class SessionStart { kStarted, kBusy, kFailed };

// Takes the session role (one per process; a second caller, a caller while a
// panic is in progress, or a thread already in a session gets kBusy), blocks
// asynchronous signals in the caller, soft-stops every other thread and makes
// scheduler_stopped() true for it. kFailed: the
// stop handlers are not installed (install() has not run).
SessionStart begin_session(KdbSession* s, const char* why) noexcept;

// Restarts exactly the threads begin_session() stopped, restores the caller's
// signal mask and gives the role up. Nothing is restarted once a panic has
// made the stop permanent.
void end_session(KdbSession* s) noexcept;

// The stopped process's crash record, captured once per session (the
// console's commands and its `dump` all read the same one), with the caller's
// own context saved at this call: keep the calling frame alive while the
// record is used. Its facts: the session's reason and what its stop did not
// catch. nullptr if the snapshot storage cannot be reserved.
const CrashRecord* session_record(KdbSession* s) noexcept;

// Writes the enabled dumps of the session's snapshot into dir (nullptr or "":
// the dump directory), echoing every announcement line to echo_fd if it is
// not -1. dir_fd, if not -1, is dir as the requester opened it: files are
// created relative to it (begin_dump_set()). Returns the number of files
// written.
int session_write_dumps(KdbSession* s, const char* dir, int echo_fd, int dir_fd = -1) noexcept;

// The report backend: the text report of the session's snapshot, to fd.
bool session_write_report(KdbSession* s, int fd) noexcept;

// True while some thread holds the session role.
bool session_active() noexcept;

}  // namespace panicstop::detail
