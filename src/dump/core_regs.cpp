#include "dump/core_regs.hpp"

namespace panicstop::detail::core {
namespace {

void put32(unsigned char* out, size_t off, uint32_t v) noexcept { __builtin_memcpy(out + off, &v, 4); }
void put64(unsigned char* out, size_t off, uint64_t v) noexcept { __builtin_memcpy(out + off, &v, 8); }
uint32_t get32(const unsigned char* in, size_t off) noexcept {
  uint32_t v;
  __builtin_memcpy(&v, in + off, 4);
  return v;
}
uint64_t get64(const unsigned char* in, size_t off) noexcept {
  uint64_t v;
  __builtin_memcpy(&v, in + off, 8);
  return v;
}

// struct elf_prstatus_common: pr_info {signo, code, errno} at 0, pr_cursig
// (short) at 12, pr_sigpend 16, pr_sighold 24, pid/ppid/pgrp/sid 32-47, four
// timevals 48-111 (left zero: the panic is not about CPU time).
void write_head(const PrstatusHead& h, unsigned char* out) noexcept {
  put32(out, 0, uint32_t(h.signo));
  put32(out, 4, uint32_t(h.code));
  uint16_t cursig = uint16_t(h.signo);
  __builtin_memcpy(out + 12, &cursig, 2);
  put64(out, 16, h.sigpend);
  put64(out, 24, h.sighold);
  put32(out, 32, uint32_t(h.pid));
  put32(out, 36, uint32_t(h.ppid));
  put32(out, 40, uint32_t(h.pgrp));
  put32(out, 44, uint32_t(h.sid));
}

void copy_bounded(unsigned char* out, size_t cap, const char* s) noexcept {
  for (size_t i = 0; s != nullptr && i + 1 < cap && s[i] != '\0'; ++i) out[i] = static_cast<unsigned char>(s[i]);
}

constexpr uint32_t kFpxSwMagic1 = 0x46505853;  // "FPXS": the frame holds XSAVE data
constexpr uint32_t kFpsimdMagic = 0x46508001;

}  // namespace

X86_64UserRegs x86_64_regs_from_gregs(const uint64_t* g, uint64_t fs_base) noexcept {
  X86_64UserRegs r{};
  r.r8 = g[0];
  r.r9 = g[1];
  r.r10 = g[2];
  r.r11 = g[3];
  r.r12 = g[4];
  r.r13 = g[5];
  r.r14 = g[6];
  r.r15 = g[7];
  r.rdi = g[8];
  r.rsi = g[9];
  r.rbp = g[10];
  r.rbx = g[11];
  r.rdx = g[12];
  r.rax = g[13];
  r.rcx = g[14];
  r.rsp = g[15];
  r.rip = g[16];
  r.eflags = g[17];
  uint64_t csgsfs = g[18];
  r.cs = csgsfs & 0xffff;
  r.gs = (csgsfs >> 16) & 0xffff;
  r.fs = (csgsfs >> 32) & 0xffff;
  r.ss = (csgsfs >> 48) & 0xffff;  // the kernel stores ss here (UC_SIGCONTEXT_SS)
  if (r.cs == 0) r.cs = 0x33;
  if (r.ss == 0) r.ss = 0x2b;
  // Not in a system call as far as a debugger is concerned: gdb would
  // otherwise try to "restart" one when showing the frame.
  r.orig_rax = ~uint64_t(0);
  r.fs_base = fs_base;
  return r;
}

void write_x86_64_prstatus(const PrstatusHead& head, const X86_64UserRegs& regs, bool fp_valid,
                           unsigned char* out) noexcept {
  __builtin_memset(out, 0, kX86_64PrstatusSize);
  write_head(head, out);
  __builtin_memcpy(out + kPrstatusHeadSize, &regs, sizeof regs);
  put32(out, kPrstatusHeadSize + sizeof regs, fp_valid ? 1 : 0);
}

size_t gdb_xstate_size(uint64_t xcr0) noexcept {
  if (xcr0 & (1u << 9)) return 2696;   // PKRU
  if (xcr0 & 0xe0) return 2688;        // AVX-512
  if (xcr0 & 0x18) return 1088;        // MPX
  if (xcr0 & 0x4) return 832;          // AVX
  return 576;                          // x87 and SSE
}

size_t x86_64_xstate_from_signal_frame(const unsigned char* fpstate, size_t size, unsigned char* out, size_t cap,
                                       uint32_t pkru_offset) noexcept {
  if (size < kX86FxsaveSize + 64 || get32(fpstate, 464) != kFpxSwMagic1) return 0;
  uint64_t xfeatures = get64(fpstate, 472);
  size_t xstate_size = get32(fpstate, 480);
  if (xstate_size < kX86FxsaveSize + 64) return 0;
  size_t n = xstate_size;
  if (n > size) n = size;
  if (n > cap) n = cap;
  // A truncated copy cannot describe the later components: keep x87, SSE and
  // AVX (which end at byte 832) and tell the debugger only about those.
  if (n < xstate_size) {
    if (n < 832) return 0;
    xfeatures &= 0x7;
    uint64_t bv = get64(fpstate, 512) & 0x7;
    __builtin_memcpy(out, fpstate, n);
    put64(out, 512, bv);
  } else {
    __builtin_memcpy(out, fpstate, n);
  }
  __builtin_memset(out + kX86XstateXcr0Offset, 0, kX86FxsaveSize - kX86XstateXcr0Offset);
  put64(out, kX86XstateXcr0Offset, xfeatures);
  // gdb accepts exactly the size its layout table gives for these features;
  // kernels round their signal frame up past it (2816 bytes for 2696 on a
  // CPU with AVX-512 and PKRU), which gdb reports as a broken section.
  size_t want = gdb_xstate_size(xfeatures);
  if (n != want && want <= cap) {
    if (n < want) __builtin_memset(out + n, 0, want - n);
    bool pkru = (xfeatures & (1u << 9)) != 0;
    if (pkru && pkru_offset != kIntelPkruOffset && pkru_offset + 8 <= n)
      __builtin_memcpy(out + kIntelPkruOffset, out + pkru_offset, 8);
    n = want;
  }
  return n;
}

void write_aarch64_prstatus(const PrstatusHead& head, const Aarch64Regs& regs, bool fp_valid,
                            unsigned char* out) noexcept {
  __builtin_memset(out, 0, kAarch64PrstatusSize);
  write_head(head, out);
  __builtin_memcpy(out + kPrstatusHeadSize, &regs, sizeof regs);
  put32(out, kPrstatusHeadSize + sizeof regs, fp_valid ? 1 : 0);
}

void write_aarch64_fpregset(const Aarch64SignalFpsimd& fp, unsigned char* out) noexcept {
  __builtin_memset(out, 0, kAarch64FpsimdSize);
  __builtin_memcpy(out, fp.vregs, sizeof fp.vregs);
  put32(out, 512, fp.fpsr);
  put32(out, 516, fp.fpcr);
}

bool aarch64_find_fpsimd(const unsigned char* reserved, size_t size, Aarch64SignalFpsimd* out) noexcept {
  size_t off = 0;
  while (off + 8 <= size) {
    uint32_t magic = get32(reserved, off);
    uint32_t rec_size = get32(reserved, off + 4);
    if (magic == 0 || rec_size < 8 || off + rec_size > size) return false;
    if (magic == kFpsimdMagic) {
      if (rec_size < 8 + 8 + 512) return false;
      out->fpsr = get32(reserved, off + 8);
      out->fpcr = get32(reserved, off + 12);
      __builtin_memcpy(out->vregs, reserved + off + 16, sizeof out->vregs);
      return true;
    }
    off += rec_size;
  }
  return false;
}

void write_prpsinfo(const PrpsinfoFields& f, unsigned char* out) noexcept {
  __builtin_memset(out, 0, kPrpsinfoSize);
  // pr_state (numeric) 0, pr_sname 1, pr_zomb 2, pr_nice 3, pr_flag 8,
  // pr_uid 16, pr_gid 20, pid/ppid/pgrp/sid 24-39, pr_fname[16] 40, pr_psargs[80] 56.
  static const char kStates[] = "RSDTZW";
  int state = 0;
  for (int i = 0; kStates[i] != '\0'; ++i)
    if (kStates[i] == f.state) state = i;
  out[0] = static_cast<unsigned char>(state);
  out[1] = static_cast<unsigned char>(f.state);
  out[2] = f.state == 'Z' ? 1 : 0;
  put32(out, 16, f.uid);
  put32(out, 20, f.gid);
  put32(out, 24, uint32_t(f.pid));
  put32(out, 28, uint32_t(f.ppid));
  put32(out, 32, uint32_t(f.pgrp));
  put32(out, 36, uint32_t(f.sid));
  copy_bounded(out + 40, 16, f.fname);
  copy_bounded(out + 56, 80, f.psargs);
}

}  // namespace panicstop::detail::core
