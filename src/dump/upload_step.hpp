// Crash-time upload: after the dumps are written, the dying process starts
// `panicstop upload` as a fresh process and waits for it, with a deadline,
// before it dies. The upload itself (libcurl: allocation, locks, name
// resolution) never runs inside the crashed process; the crashed process only
// clones, execs and waits, with raw system calls and memory prepared at
// install. Waiting before dying matters where the process is PID 1 of a
// container: when it dies the kernel kills every other process of its PID
// namespace, the uploader included, so an upload left for later is lost.
//
// Tunables, read at install by setup_upload() (upload_setup.cpp):
//   PANICSTOP_UPLOAD_URL         the collector's URL; unset or empty: no upload
//   PANICSTOP_UPLOAD_TIMEOUT_MS  how long the dying process waits for the
//                                uploader (default 10000, 1..3600000)
//   PANICSTOP_UPLOADER           absolute path of the `panicstop` program to
//                                run (default: `panicstop` found through PATH
//                                at install, then the installed bindir)
// PANICSTOP_RELEASE, PANICSTOP_ENVIRONMENT and the rest of the environment
// reach the uploader unchanged, except LD_PRELOAD (a preloaded panicstop shim
// would make the uploader a crash handler of its own).
#pragma once

#include <cstddef>
#include <cstdint>

namespace panicstop::detail {

inline constexpr size_t kUploadUrlMax = 2048;
inline constexpr size_t kUploaderPathMax = 1024;
inline constexpr uint32_t kUploadTimeoutDefaultMs = 10000;

// What setup decided. Written at install, read by the crash path.
struct UploadPlan {
  bool enabled = false;
  char url[kUploadUrlMax] = {};
  char uploader[kUploaderPathMax] = {};
  uint32_t timeout_ms = kUploadTimeoutDefaultMs;
  char deadline_arg[24] = {};  // the uploader's own budget, in ms, as text
};
UploadPlan& upload_plan() noexcept;

// Setup (install time): reads the tunables above into upload_plan(). A bad
// value ends the program with exit status 2 and one line naming the variable,
// as every other tunable does. A URL without any uploader found disables the
// upload with one warning line on stderr. Safe to call again (re-reads).
void setup_upload() noexcept;

// Crash path, called right after the dump files are written (it uploads the
// files written_dumps() lists). With the upload enabled and at least one file
// written: starts the uploader (clone with CLONE_VM on a reserved stack, then
// execve), waits for its exec and then for its end until
// PANICSTOP_UPLOAD_TIMEOUT_MS has passed (a futex on its tid, then pidfd
// poll, else short sleeps), reports the outcome on stderr, and at the
// deadline kills it with SIGKILL and reaps it (one whose execve hangs on a
// hung mount is killed and left): the dump then stays
// pending for `panicstop upload --dir`. Returns within the timeout plus about
// a second (the kill and reap). Otherwise does nothing. It runs as the panic
// path's "upload" step, after the files, under a deadline of the timeout plus
// PANICSTOP_STEP_TIMEOUT_MS, so its own kill and reap come first.
void run_upload_step() noexcept;

}  // namespace panicstop::detail
