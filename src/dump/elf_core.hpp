// The ELF core writer (docs/DESIGN.md, section 6): a core that gdb, lldb, eu-stack and drgn
// open with every thread's stack, the panicking thread current.
//
// Layout: ELF header, one PT_NOTE (p_align 4) right after the program headers,
// then one PT_LOAD per mapping in address order (extended numbering past 65534
// segments). Notes, in this order: the panicking thread's NT_PRSTATUS,
// NT_PRPSINFO, NT_SIGINFO, NT_AUXV, NT_FILE (the executable's entries first),
// the panicking thread's NT_PRFPREG and NT_X86_XSTATE, then for every other
// thread its NT_PRSTATUS followed by its FP notes (see dump/elf_notes.hpp for
// threads that did not stop), and last the PANICSTOP note.
// What memory is dumped for DumpOptions::core (mini, full) is described in
// dump/core_plan.hpp.
//
// The PANICSTOP note: name "PANICSTOP", type 0x50545350 ("PSTP"; cores
// written before 2026-12-02 have type 1, which gdb took for a thread when
// the note's size was a prstatus's), descriptor UTF-8 text (not
// NUL-terminated; the note's size delimits it), one `key=value` record per
// line, lines separated by '\n', each value running to the end of its line.
// Records, in this order:
//   version=1
//   message=<panic message, line breaks replaced by spaces>
//   panicking_tid=<tid>
//   signal=<signo>
//   earlier_fault=<signo> code=<n> address=0x<a> pc=0x<p> resumed_pc=0x<r> ms_before=<n>
//     (a panic that names no fault of its own: docs/DESIGN.md, invariant 13)
//   stack_overflow=0x<stack lo> stack_hi=0x<hi> fault_address=0x<a>
//     (the fault is in the guard below the panicking thread's stack [lo, hi))
//   live_reason=<why a live dump was taken, to the end of the line>
//   note=<what the stop had to repair first, to the end of the line>   (if anything)
//   thread=<tid> name=<name> state=<panicking|stopped|not_stopped|kernel_worker>   one per thread
//     (kernel_worker: a thread of the kernel's own, io_uring's or vhost's: no
//     registers, no NT_PRSTATUS, not stopped and not counted as not stopped)
//     a thread that saved no registers adds what /proc showed of it:
//     kernel_state=<R|S|D|...> registers=<kernel|none>
//     kernel_view=<syscall|blocked|running|unreadable> [syscall=<nr> [syscall_name=<name>]] [wchan=<fn>]
//     [stop_signal_blocked=<hard|soft>]
//     (registers=kernel: its NT_PRSTATUS holds only pc and sp; none: it has no NT_PRSTATUS)
//   lock=0x<addr> kind=<mutex|spin mutex|rwlock|sx lock> name=<name> owner=<tid or 0> readers=<n>
//   wait=<tid> lock=0x<addr> mode=<exclusive|shared|condvar>          one per waiting thread
//   nested=<tid> signal=<n> step=<n> message=<text>                   nested and parked panics
//   not_stopped=<tid>                                                 threads that did not stop
// Records with several fields separate them by single spaces; `name` values
// have spaces, tabs and line breaks replaced by '_', so only `message`,
// `live_reason`, `note` and `kind` values may contain spaces (each ends its
// line, or, for kind, is followed by a known key). Readers ignore keys they do not know.
#pragma once

#include "dump/writer.hpp"

namespace panicstop::detail {

// Reserves the writer's buffers (idempotent; install calls it). Without it the
// first write_elf_core reserves them with a raw mmap.
bool reserve_elf_core() noexcept;

// Writes the core of rec to fd (positioned at 0) with raw system calls, no
// allocation. Memory is read from this live, frozen process; pages that turn
// out unreadable are written as zeros. Returns false on a write error. Not
// reentrant: one core at a time (the panicking thread, or kdb / live_dump).
bool write_elf_core(const CrashRecord& rec, const DumpOptions& o, int fd) noexcept;

}  // namespace panicstop::detail
