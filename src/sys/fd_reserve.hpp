// Descriptors held back for the crash path.
//
// A server often crashes at its descriptor limit: EMFILE ("too many open
// files") and ENFILE (the system's table full) send it down its least tested
// error paths. There the crash path could open nothing: the stop could not
// list /proc/self/task (the threads ran on, uncounted), the snapshot read no
// maps (no modules, no symbols), and no dump file could be created.
//
// So install() holds a few descriptors back, and the panic gives them back
// first thing: the crash path's opens take the lowest free numbers, the ones
// just freed. They are one pipe and duplicates of it, close-on-exec, so a
// descriptor is known to be the reserve's by its inode: one the program
// closed and whose number it reused (a daemon's closefrom(3), a dup2() over
// it) is not closed. A fork()'s child inherits them, and its panic frees its
// own copies. Raw system calls.
#pragma once

#include <cstddef>

namespace panicstop::sys {

// Enough for what the crash path holds open at once: procfs's root (kept,
// when the program closed it), a directory or file it reads, the dump
// directory and the file a writer writes.
inline constexpr size_t kReservedFds = 4;

// Takes the reserve, up to kReservedFds descriptors (fewer if the limit is
// reached); once per process, later calls do nothing. Returns how many are held.
size_t reserve_fds() noexcept;

// Closes the reserve's descriptors that are still the reserve's; returns how
// many. Async-signal-safe; the reserve is not taken again.
size_t release_fd_reserve() noexcept;

}  // namespace panicstop::sys
