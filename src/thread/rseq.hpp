// The kernel's hold on a thread's restartable-sequences area, let go while a
// program's crash handler runs.
//
// glibc (2.35 on) registers an rseq area inside each thread's control block,
// and from then on the kernel reads its rseq_cs word on every return to the
// thread after a context switch or a signal. A crash handler that overwrites
// that word for a moment (redis's crash-time memory test fills every
// anonymous mapping with patterns and restores it afterwards, the one with
// the main thread's control block among them) gets the thread killed by the
// kernel, at its next context switch, with a SIGSEGV that no handler sees.
// Without panicstop that was not seen (0 of 400 redis crashes under load).
// With the shim loaded (its .bss adds 2.3 MB to the test, beside where the
// loader puts the control block, at times in the same mapping) redis died
// so, with neither its report nor a dump, in 3 of 400. With the area let go
// the kernel reads nothing there: 0 of 400.
//
// Only around the outermost call of a handler installed with SA_RESETHAND:
// a handler that undoes itself is a one-shot crash reporter, never a
// runtime's hot path (a collector's barrier handler stays installed), so the
// two system calls come once per crash. While the area is let go, glibc's
// sched_getcpu() asks the kernel instead, and a library that reads the area
// itself finds a negative cpu_id, as on a kernel without rseq. A handler
// left by a long jump or an unwind gets the area back when panicstop sees it
// was left, as it gets its alternate stack back (program_signals.cpp).
#pragma once

#include <cstdint>

namespace panicstop::detail {

// Where glibc keeps the area and how it registered it. size 0: this C library
// registers none.
struct RseqLayout {
  intptr_t offset = 0;   // from the thread pointer
  uint32_t size = 0;     // the length glibc registered
  uint32_t signature = 0;
};
extern RseqLayout g_rseq_layout;

// Fills g_rseq_layout, by dlsym, so that a C library without rseq (before
// 2.35, or not glibc) still loads the library. Setup only; called at load with
// the C library's other definitions (resolve_libc_next()), before the
// program's threads: the layout is the same for all of them.
void find_rseq_layout() noexcept;

// What let_go_of_rseq() did, for take_back_rseq().
struct RseqHold {
  bool let_go;  // plain, for thread-local state: RseqHold{} is "nothing let go"
};

// Unregisters the calling thread's area; nothing where it has none (glibc
// without rseq, a kernel without it, a raw clone, a thread already let go).
RseqHold let_go_of_rseq() noexcept;
// Registers it again after the handler returned.
void take_back_rseq(RseqHold hold) noexcept;

}  // namespace panicstop::detail
