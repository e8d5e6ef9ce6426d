// Backtraces of stopped threads from their saved registers and frozen stacks.
//
// A DWARF CFI unwinder (x86_64 and aarch64) over each module's in-memory .eh_frame_hdr
// (PT_GNU_EH_FRAME): binary search table, CIE/FDE parsing, the CFA rules gcc
// and clang emit (def_cfa*, offset*, restore*, register, same/undefined value,
// advance_loc*, remember/restore_state). Where no FDE covers a PC, or the CFA
// rule is an expression (PLT entries, hand-written signal frames), it falls
// back to one frame-pointer step. A return into the signal trampoline
// (__restore_rt) continues with the registers of the interrupted code, from
// the ucontext on the stack, so a thread stopped inside a signal handler
// shows the handler and what it interrupted. On aarch64 the CFI decides
// whether x30 still holds a frame's return address (a leaf, or a prologue
// before the save) or was saved and since overwritten by a call the frame
// made; saved return addresses lose any pointer-authentication signature.
//
// Every memory read is checked against the snapshot's readable mappings, the
// walk stops when the stack pointer leaves the thread's stack, stops going up,
// or kMaxFrames is reached: garbage registers give a short backtrace, never a
// fault or a loop.
#pragma once

#include "snapshot/snapshot.hpp"

namespace panicstop::detail {

// Reserves the unwinder's per-module cache (idempotent; called by
// reserve_snapshot()).
bool reserve_unwinder() noexcept;

// Fills t->frames and t->frame_count from t->context, or for a thread that
// did not stop from the kernel's pc and sp (t->kernel); nothing if neither.
// frames[0] is the saved PC; later entries are return addresses.
void unwind_thread(const ProcessSnapshot& snap, SnapshotThread* t) noexcept;

// True if pc is the start of the signal-return trampoline (glibc's
// __restore_rt, which a stripped libc leaves unnamed; on aarch64 the vDSO's
// __kernel_rt_sigreturn or qemu-user's copy): where a signal handler was
// called.
bool is_signal_trampoline(const ProcessSnapshot& snap, uintptr_t pc) noexcept;

}  // namespace panicstop::detail
