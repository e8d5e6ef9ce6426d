// Lock profiling: where threads wait for panicstop locks (FreeBSD's
// LOCK_PROFILING / lock_stat).
//
// Statistics are kept per lock class (locks grouped by name, as for WITNESS)
// and acquisition site (a PANICSTOP_ lock macro's file:line, or the return
// address of the code that called lock()):
//   acquisitions         every acquisition when witness is built in
//                        (PANICSTOP_WITNESS_BUILT_IN); otherwise only the
//                        acquisitions that reached the hard path
//   contested            acquisitions that found the lock taken and waited
//   wait total / max     time from entering the hard path to owning the lock
//   hold total / max     time from acquisition to release; only when witness
//                        is built in and on (0 otherwise)
// Contention is measured in the hard (contested) paths only, so profiling costs
// the lock fast paths nothing; hold times ride on witness's per-acquisition hook.
// Times come from the CPU's cycle counter, converted to nanoseconds.
//
// Enabled by PANICSTOP_LOCKPROF=1 in the environment (read when the library
// loads) or lockprof_enable(true). Locks made with kNoProfile are not counted.
// At most 4096 (class, site) pairs are kept; later ones are counted in
// lockprof_dropped(). Nothing is collected once panicking() is true.
//
// From a live process: call lockprof_write_report(fd) (also used by the text
// dump and kdb), or let the user pick a signal with lockprof_report_on_signal():
//   lockprof_report_on_signal(SIGUSR2, 2);   // kill -USR2 PID prints the table
#pragma once

#include <cstddef>
#include <cstdint>

#include "panicstop/lock_object.hpp"

namespace panicstop {

struct LockProfileRow {
  const char* name;          // the lock class's name
  const char* file;          // site file (nullptr: see return_address)
  uint32_t line;
  uintptr_t return_address;  // site when no file:line is known
  uint64_t acquisitions;
  uint64_t contested;
  uint64_t wait_total_ns;
  uint64_t wait_max_ns;
  uint64_t hold_total_ns;
  uint64_t hold_max_ns;
};

// Turns collection on or off (statistics gathered so far are kept).
PANICSTOP_EXPORT void lockprof_enable(bool on) noexcept;
PANICSTOP_EXPORT bool lockprof_enabled() noexcept;
// Forgets every statistic (not async-signal-safe against concurrent lockers:
// counts taken meanwhile may be lost).
PANICSTOP_EXPORT void lockprof_reset() noexcept;
// Pairs not kept because the table was full.
PANICSTOP_EXPORT uint64_t lockprof_dropped() noexcept;

// Fills rows[0..max_rows) with the busiest (class, site) pairs, sorted by total
// wait time, then contested count, then acquisitions, all descending. Returns
// the number of rows filled. Never allocates; async-signal-safe.
PANICSTOP_EXPORT size_t lockprof_report(LockProfileRow* rows, size_t max_rows) noexcept;

// Writes the whole table as text to fd, sorted as above, with a header line.
// Async-signal-safe (raw writes, no locks, no allocation). Returns false if a
// write failed.
PANICSTOP_EXPORT bool lockprof_write_report(int fd) noexcept;

// Installs a handler for signo that writes the report to fd. The signal is the
// user's choice (the library reserves none for this). Setup only; returns false
// if sigaction fails.
PANICSTOP_EXPORT bool lockprof_report_on_signal(int signo, int fd) noexcept;

namespace detail {

// Read inline by the hard paths: profiling off costs them one load.
extern bool g_lockprof_on;
inline bool lockprof_active() noexcept { return __atomic_load_n(&g_lockprof_on, __ATOMIC_RELAXED); }

// Cycle counter (x86_64 TSC, aarch64 virtual counter; monotonic ns elsewhere).
int64_t lockprof_ticks() noexcept;

// Called by a hard path when it obtained `lo` after waiting since `start_ticks`
// (from lockprof_ticks()). `return_address` is the hard path's own return
// address: the site when witness has none.
void lockprof_contested(const LockObject* lo, int64_t start_ticks, const void* return_address) noexcept;

}  // namespace detail
}  // namespace panicstop
