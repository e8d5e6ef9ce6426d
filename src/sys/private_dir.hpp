// The user's private directory, and the record of install()'s directory
// sweeps kept in it.
//
// install() sweeps directories other programs share: the dump directory and
// /tmp for temporary dump files that killed processes left
// (dump/stale_dumps.hpp), the control socket directory for sockets of dead
// processes (kdb). A sweep reads the whole directory, and a program started
// thousands of times (each command of a script or a build run under
// `panicstop run`) paid it at every start: 2,000 starts of /bin/true from a
// /tmp of 2,456 entries took 11.5 s instead of 2.3 s. So each user sweeps a
// directory at most once per kSweepPeriodSeconds: a marker file per swept
// directory, in the private directory, holds the time of its last sweep.
// What a sweep removes is never needed by anyone, so a minute's delay costs
// disk for a minute, never data.
//
// Setup code (install time), except make_private_directory(), which the
// child of a fork() may call too: it keeps to async-signal-safe calls.
#pragma once

#include <dirent.h>

#include <cstddef>

namespace panicstop::sys {

inline constexpr int kSweepPeriodSeconds = 60;

// "/tmp/panicstop-EUID": where kdb's control sockets live unless
// PANICSTOP_KDB_SOCKET names another directory, and the sweep markers.
void private_directory_path(char* out, size_t cap) noexcept;

// Makes dir (mode 0700) if it is missing. Returns 0 when it is a directory
// owned by the effective uid with no access for anyone else, the errno of
// mkdir when it could not be made, and -1 when it exists but is not private
// (then another user could plant files where panicstop looks for its own).
int make_private_directory(const char* dir) noexcept;

// True if the directory open at dir_fd is due for a sweep: no sweep of it
// (by any process of this user) is recorded in the last kSweepPeriodSeconds,
// or a clock step put the record in the future (more than the second a
// fine-grained file timestamp may lead time() by). Then this sweep is recorded
// before it happens, so concurrent starters mostly skip it; two may both
// sweep, which is harmless. Also true when nothing can be recorded (no
// private directory): sweeping too often costs time, never sweeping costs
// disk. The record is keyed by the directory's device and inode number; the
// private directory's own sweep also removes records older than the period,
// so they stay as many as the directories swept in the last minute.
bool sweep_due(int dir_fd) noexcept;

// opendir(path) for a sweep that sweep_due() finds due; nullptr when it is
// not, or the directory cannot be opened. The caller closedir()s it.
DIR* open_for_sweep(const char* path) noexcept;

// Drops the record of the directory open at dir_fd: its next sweep_due() is
// true. For a caller that knows the directory changed (and for tests).
void forget_sweep(int dir_fd) noexcept;

}  // namespace panicstop::sys
