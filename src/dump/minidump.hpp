// The minidump writer: one .dmp file in the format crash collectors take
// (Sentry, Crashpad/Breakpad servers) and Breakpad's tools and lldb open,
// written from inside the process with the registers the stop saved: no
// ptrace, no helper process.
//
// Streams, in file order of their directory entries:
//   ThreadList       every thread of the snapshot, the panicking (or dumping)
//                    one first. A thread that did not stop gets the pc and sp
//                    /proc gave (control registers only), or an empty context
//                    when it was running. Each thread's stack: from 128 bytes
//                    below its stack pointer (the x86-64 red zone) up the
//                    mapping that holds it (the mapping above the guard when
//                    a stack overflow left the pointer in the guard), at most
//                    1 MiB for the first thread
//                    and, for every other, 2 MiB shared among them (between
//                    2 KiB and 32 KiB each), so 1,000 threads stay small.
//   ThreadNameList   the snapshot's thread names.
//   MemoryList       the stacks above (also where lldb reads them) and 256
//                    bytes around the first thread's pc; ranges merged, never
//                    overlapping.
//   ModuleList       executable first, then the snapshot's modules; each with
//                    a CodeView record 'BpEL' + the full GNU build id; the vDSO
//                    is named linux-gate.so.
//   MemoryInfoList   every mapping with its protection and kind (image,
//                    mapped file, private).
//   Exception        panics only: signal, si_code, fault address (0 unless the
//                    kernel reported a fault address), the panicking thread.
//   SystemInfo, MiscInfo (pid, process start and CPU times).
//   BreakpadInfo     live dumps only: the requesting thread; with no Exception
//                    stream readers say "requested dump, did not crash".
//   AssertionInfo    the panic message (Breakpad's stackwalk prints it).
//   CrashpadInfo     simple annotations: panic_message (dump_requested for a
//                    live dump), signal, panicking_thread (dumping_thread),
//                    nested_panic_N, note (the stop's), earlier_fault,
//                    stack_overflow, threads_not_stopped, and lock_N for each
//                    lock with owner and waiters; Sentry shows them as the
//                    "crashpad" context, `panicstop show` in the report.
//   Linux streams    /proc/cpuinfo, /proc/self/{status, cmdline, auxv, maps},
//                    /etc/lsb-release (or os-release), and /proc/self/environ
//                    only with PANICSTOP_MINIDUMP_ENVIRON=1.
//
// Crash path: no allocation, raw system calls, buffers reserved by
// reserve_minidump(). Not reentrant: one minidump at a time.
#pragma once

#include "dump/writer.hpp"

namespace panicstop::detail {

// Reserves the writer's buffers (idempotent; the dump step's registration
// calls it). Without it the first write reserves them with a raw mmap.
bool reserve_minidump() noexcept;

// Writes the minidump of rec to fd (positioned at 0). Memory is read from
// this live, frozen process; unreadable pages become zeros. Returns false on
// a write error or when the file would pass 4 GiB (RVAs are 32-bit).
bool write_minidump(const CrashRecord& rec, const DumpOptions& o, int fd) noexcept;

}  // namespace panicstop::detail
