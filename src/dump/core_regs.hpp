// Byte layouts of the register notes of an ELF core (docs/DESIGN.md, section 6), as pure
// functions from register fields to note descriptors. They take plain fields,
// not a live ucontext_t, so the aarch64 layouts compile and are unit-tested on
// x86_64 too. Every function writes exactly the documented number of bytes and
// zeroes what it does not set; a wrong size makes gdb and lldb drop the note.
#pragma once

#include <cstddef>
#include <cstdint>

namespace panicstop::detail::core {

// The kernel's struct elf_prstatus on 64-bit targets: a 112-byte common head,
// the architecture's registers at offset 112, then pr_fpvalid.
inline constexpr size_t kPrstatusHeadSize = 112;
inline constexpr size_t kX86_64PrstatusSize = 336;   // 27 registers, fpvalid, pad
inline constexpr size_t kAarch64PrstatusSize = 392;  // 34 registers, fpvalid, pad
inline constexpr size_t kPrpsinfoSize = 136;
inline constexpr size_t kSiginfoSize = 128;
inline constexpr size_t kX86FxsaveSize = 512;        // NT_PRFPREG on x86_64
inline constexpr size_t kX86XstateXcr0Offset = 464;  // NT_X86_XSTATE: XCR0 lives here
inline constexpr size_t kAarch64FpsimdSize = 528;    // NT_PRFPREG on aarch64

// The architecture-independent fields of NT_PRSTATUS.
struct PrstatusHead {
  int signo = 0;      // pr_info.si_signo and pr_cursig
  int code = 0;       // pr_info.si_code
  uint64_t sigpend = 0;
  uint64_t sighold = 0;  // the thread's blocked-signal mask
  int pid = 0;        // the thread id (gdb and lldb name threads by it)
  int ppid = 0, pgrp = 0, sid = 0;
};

// x86_64 general registers in struct user_regs_struct order (what gdb, lldb,
// eu-stack and drgn read at NT_PRSTATUS offset 112).
struct X86_64UserRegs {
  uint64_t r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs,
      eflags, rsp, ss, fs_base, gs_base, ds, es, fs, gs;
};
static_assert(sizeof(X86_64UserRegs) == 27 * 8);

// Converts a ucontext's gregs (glibc's REG_* indices: R8-R15 0-7, RDI 8, RSI 9,
// RBP 10, RBX 11, RDX 12, RAX 13, RCX 14, RSP 15, RIP 16, EFL 17, CSGSFS 18) to
// user_regs_struct order. fs_base is not in a ucontext: the caller supplies it
// (0 when unknown; only TLS lookups need it). Zero selectors become the
// user-mode defaults (cs 0x33, ss 0x2b) so getcontext()-style contexts look real.
X86_64UserRegs x86_64_regs_from_gregs(const uint64_t* gregs, uint64_t fs_base) noexcept;

// Writes kX86_64PrstatusSize bytes.
void write_x86_64_prstatus(const PrstatusHead& head, const X86_64UserRegs& regs, bool fp_valid,
                           unsigned char* out) noexcept;

// Turns the XSAVE area of a signal frame (FXSAVE area with the kernel's
// fpx_sw_bytes at 464) into an NT_X86_XSTATE descriptor in out (capacity cap):
// bytes 464-471 become XCR0, 472-511 are cleared, and the size is the frame's
// xstate_size (clamped to size and cap). gdb 13 assumes Intel's offsets and
// warns "too small" below the size they imply for XCR0 (2696 with PKRU), so
// the descriptor is zero-padded up to that size and PKRU, when this CPU keeps
// it elsewhere (pkru_offset from CPUID leaf 0xD; AMD: 2432), is also copied to
// Intel's 2688. Returns the descriptor size, or 0 when the frame holds no XSAVE
// data (plain FXSAVE): then only NT_PRFPREG is written.
size_t x86_64_xstate_from_signal_frame(const unsigned char* fpstate, size_t size, unsigned char* out, size_t cap,
                                       uint32_t pkru_offset) noexcept;
// The size gdb expects of NT_X86_XSTATE for xcr0 (its X86_XSTATE_SIZE).
size_t gdb_xstate_size(uint64_t xcr0) noexcept;
inline constexpr uint32_t kIntelPkruOffset = 2688;

// aarch64 general registers as in struct user_pt_regs and sigcontext: x0-x30,
// sp, pc, pstate.
struct Aarch64Regs {
  uint64_t x[31];
  uint64_t sp, pc, pstate;
};
static_assert(sizeof(Aarch64Regs) == 34 * 8);

// The FPSIMD state as the signal frame's fpsimd_context holds it after its
// 8-byte header (magic 0x46508001, size): fpsr, fpcr, then vregs.
struct Aarch64SignalFpsimd {
  uint32_t fpsr, fpcr;
  unsigned char vregs[32][16];
};

// Writes kAarch64PrstatusSize bytes: registers at offset 112, pr_fpvalid at 384.
void write_aarch64_prstatus(const PrstatusHead& head, const Aarch64Regs& regs, bool fp_valid,
                            unsigned char* out) noexcept;
// Writes kAarch64FpsimdSize bytes of struct user_fpsimd_state: vregs first
// (512 bytes), then fpsr at 512 and fpcr at 516, then 8 reserved bytes.
void write_aarch64_fpregset(const Aarch64SignalFpsimd& fp, unsigned char* out) noexcept;
// Finds the fpsimd_context record in a sigcontext's __reserved area (a chain of
// {magic, size} records ending with magic 0). Returns false if there is none.
bool aarch64_find_fpsimd(const unsigned char* reserved, size_t size, Aarch64SignalFpsimd* out) noexcept;

// The fields of NT_PRPSINFO that tools show.
struct PrpsinfoFields {
  char state = 'R';  // pr_sname
  int pid = 0, ppid = 0, pgrp = 0, sid = 0;
  uint32_t uid = 0, gid = 0;
  const char* fname = "";   // up to 15 bytes kept
  const char* psargs = "";  // up to 79 bytes kept
};
// Writes kPrpsinfoSize bytes.
void write_prpsinfo(const PrpsinfoFields& f, unsigned char* out) noexcept;

}  // namespace panicstop::detail::core
