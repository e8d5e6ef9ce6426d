#include "dump/minidump_context.hpp"

namespace panicstop::detail::md {

void amd64_context_from_gregs(const uint64_t* gregs, const unsigned char* fxsave, ContextAmd64* out) noexcept {
  __builtin_memset(out, 0, sizeof *out);
  core::X86_64UserRegs r = core::x86_64_regs_from_gregs(gregs, 0);
  out->context_flags = kContextAmd64 | kAmd64Control | kAmd64Integer | kAmd64Segments;
  out->cs = uint16_t(r.cs);
  out->ss = uint16_t(r.ss);
  out->fs = uint16_t(r.fs);
  out->gs = uint16_t(r.gs);
  out->eflags = uint32_t(r.eflags);
  out->rax = r.rax;
  out->rcx = r.rcx;
  out->rdx = r.rdx;
  out->rbx = r.rbx;
  out->rsp = r.rsp;
  out->rbp = r.rbp;
  out->rsi = r.rsi;
  out->rdi = r.rdi;
  out->r8 = r.r8;
  out->r9 = r.r9;
  out->r10 = r.r10;
  out->r11 = r.r11;
  out->r12 = r.r12;
  out->r13 = r.r13;
  out->r14 = r.r14;
  out->r15 = r.r15;
  out->rip = r.rip;
  if (fxsave != nullptr) {
    out->context_flags |= kAmd64Float;
    __builtin_memcpy(out->flt_save, fxsave, sizeof out->flt_save);
    // The kernel keeps its own software bytes (XSAVE magic, sizes) at 464:
    // they are not part of the FXSAVE image a reader expects.
    __builtin_memset(out->flt_save + 416, 0, sizeof out->flt_save - 416);
    __builtin_memcpy(&out->mx_csr, fxsave + 24, 4);
  }
}

void amd64_context_from_kernel(uint64_t pc, uint64_t sp, ContextAmd64* out) noexcept {
  __builtin_memset(out, 0, sizeof *out);
  out->context_flags = kContextAmd64;
  if (pc == 0 && sp == 0) return;
  out->context_flags |= kAmd64Control;
  out->cs = 0x33;
  out->ss = 0x2b;
  out->rip = pc;
  out->rsp = sp;
}

void arm64_context_from_regs(const core::Aarch64Regs& regs, const core::Aarch64SignalFpsimd* fp,
                             ContextArm64Old* out) noexcept {
  __builtin_memset(out, 0, sizeof *out);
  out->context_flags = kContextArm64Old | kArm64OldInteger;
  for (int i = 0; i < 31; ++i) out->iregs[i] = regs.x[i];
  out->iregs[31] = regs.sp;
  out->iregs[32] = regs.pc;
  out->cpsr = uint32_t(regs.pstate);
  if (fp != nullptr) {
    out->context_flags |= kArm64OldFloat;
    out->fpsr = fp->fpsr;
    out->fpcr = fp->fpcr;
    __builtin_memcpy(out->vregs, fp->vregs, sizeof out->vregs);
  }
}

void arm64_context_from_kernel(uint64_t pc, uint64_t sp, ContextArm64Old* out) noexcept {
  __builtin_memset(out, 0, sizeof *out);
  out->context_flags = kContextArm64Old;
  if (pc == 0 && sp == 0) return;
  out->context_flags |= kArm64OldInteger;
  out->iregs[31] = sp;
  out->iregs[32] = pc;
}

}  // namespace panicstop::detail::md
