// CPU contexts of a minidump from the registers panicstop saved, as pure
// functions of plain register fields (like dump/core_regs.hpp), so both
// architectures' layouts compile and are tested on either.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dump/core_regs.hpp"
#include "dump/minidump_format.hpp"

namespace panicstop::detail::md {

// A stopped thread's x86-64 context: general registers from a ucontext's gregs
// (glibc REG_* order, see core::x86_64_regs_from_gregs), the FP state from the
// FXSAVE area of its signal frame (nullptr: none, and the FP flag stays off).
// Flags: AMD64 | CONTROL | INTEGER | SEGMENTS, plus FLOATING_POINT with fxsave.
// lldb loads rip/rsp only under CONTROL and rax..r15 only under INTEGER.
void amd64_context_from_gregs(const uint64_t* gregs, const unsigned char* fxsave, ContextAmd64* out) noexcept;

// A thread known only from /proc (it did not stop): pc and sp, flags AMD64 |
// CONTROL; pc == sp == 0 (no registers at all) leaves only the AMD64 bit, so
// no reader takes the zeros for registers.
void amd64_context_from_kernel(uint64_t pc, uint64_t sp, ContextAmd64* out) noexcept;

// A stopped thread's aarch64 context in the old layout: x0-x30, sp, pc,
// pstate, and the FPSIMD registers when fp is not nullptr.
void arm64_context_from_regs(const core::Aarch64Regs& regs, const core::Aarch64SignalFpsimd* fp,
                             ContextArm64Old* out) noexcept;
void arm64_context_from_kernel(uint64_t pc, uint64_t sp, ContextArm64Old* out) noexcept;

}  // namespace panicstop::detail::md
