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
//
// Live dumps and kdb have a second reserve of their own, for the same
// reason: an operator asks for a live dump of a server because it is at its
// limit (what holds every descriptor?), and there the control socket could
// not even accept the request. Its descriptors are duplicates of the same
// pipe. Accepting a request at the limit frees two (the connection and a
// descriptor passed with its line), a session frees the rest once the other
// threads are stopped and takes them all back before they resume, and the
// panic frees them with the crash's own.
#pragma once

#include <cstddef>

namespace panicstop::sys {

// Enough for what the crash path holds open at once: procfs's root (kept,
// when the program closed it), a directory or file it reads, the dump
// directory and the file a writer writes.
inline constexpr size_t kReservedFds = 4;

// The live dump's: a connection, a descriptor passed with its request, and
// what the crash path holds open at once.
inline constexpr size_t kLiveReservedFds = 2 + kReservedFds;

// Takes both reserves, up to kReservedFds and kLiveReservedFds descriptors
// (fewer if the limit is reached); once per process, later calls do
// nothing. Returns how many the crash's reserve holds.
size_t reserve_fds() noexcept;

// Closes the descriptors of both reserves that are still theirs; returns
// how many. Async-signal-safe; neither reserve is taken again.
size_t release_fd_reserve() noexcept;

// Closes up to `count` of the live dump's reserve that are still its own;
// returns how many. Async-signal-safe.
size_t release_live_fds(size_t count) noexcept;

// Fills the live dump's reserve again, as far as free descriptor numbers
// allow, and makes slots whose number the program took over (a daemon's
// closefrom()) the reserve's again where a number is free. Nothing after a
// panic released the reserves. Async-signal-safe.
void retake_live_fds() noexcept;

}  // namespace panicstop::sys
