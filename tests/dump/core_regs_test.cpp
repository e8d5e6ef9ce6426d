// Byte layouts of the register notes, on synthetic contexts: x86_64 and aarch64
// NT_PRSTATUS, aarch64 NT_FPREGSET, NT_X86_XSTATE, NT_PRPSINFO, and the ELF
// header's extended program header count.
#include <gtest/gtest.h>

#include <cstring>
#include <elf.h>
#include <vector>

#include "dump/core_plan.hpp"
#include "dump/core_regs.hpp"

namespace panicstop::detail::core {
namespace {

uint64_t u64_at(const unsigned char* p, size_t off) {
  uint64_t v;
  std::memcpy(&v, p + off, 8);
  return v;
}
uint32_t u32_at(const unsigned char* p, size_t off) {
  uint32_t v;
  std::memcpy(&v, p + off, 4);
  return v;
}

PrstatusHead sample_head() {
  PrstatusHead h;
  h.signo = 11;
  h.code = 1;
  h.sigpend = 0x10;
  h.sighold = 0x20;
  h.pid = 1234;
  h.ppid = 1000;
  h.pgrp = 1001;
  h.sid = 1002;
  return h;
}

void expect_head(const unsigned char* out) {
  EXPECT_EQ(u32_at(out, 0), 11u);  // pr_info.si_signo
  EXPECT_EQ(u32_at(out, 4), 1u);   // si_code
  uint16_t cursig;
  std::memcpy(&cursig, out + 12, 2);
  EXPECT_EQ(cursig, 11);
  EXPECT_EQ(u64_at(out, 16), 0x10u);
  EXPECT_EQ(u64_at(out, 24), 0x20u);
  EXPECT_EQ(u32_at(out, 32), 1234u);
  EXPECT_EQ(u32_at(out, 36), 1000u);
  EXPECT_EQ(u32_at(out, 40), 1001u);
  EXPECT_EQ(u32_at(out, 44), 1002u);
}

TEST(CoreRegs, X86_64GregsMapToUserRegsOrder) {
  uint64_t gregs[23];
  for (int i = 0; i < 23; ++i) gregs[i] = 0x100 + uint64_t(i);
  gregs[18] = 0x002b000000000033ull;  // CSGSFS: cs 0x33, ss 0x2b
  X86_64UserRegs r = x86_64_regs_from_gregs(gregs, 0x7000);
  EXPECT_EQ(r.r8, 0x100u);
  EXPECT_EQ(r.r15, 0x107u);
  EXPECT_EQ(r.rdi, 0x108u);
  EXPECT_EQ(r.rsi, 0x109u);
  EXPECT_EQ(r.rbp, 0x10au);
  EXPECT_EQ(r.rbx, 0x10bu);
  EXPECT_EQ(r.rdx, 0x10cu);
  EXPECT_EQ(r.rax, 0x10du);
  EXPECT_EQ(r.rcx, 0x10eu);
  EXPECT_EQ(r.rsp, 0x10fu);
  EXPECT_EQ(r.rip, 0x110u);
  EXPECT_EQ(r.eflags, 0x111u);
  EXPECT_EQ(r.cs, 0x33u);
  EXPECT_EQ(r.ss, 0x2bu);
  EXPECT_EQ(r.fs_base, 0x7000u);

  unsigned char out[kX86_64PrstatusSize + 16];
  std::memset(out, 0xee, sizeof out);
  write_x86_64_prstatus(sample_head(), r, true, out);
  expect_head(out);
  // user_regs_struct at 112: r15 first, rip at index 16, rsp at 19, fs_base at 21.
  EXPECT_EQ(u64_at(out, 112), 0x107u);
  EXPECT_EQ(u64_at(out, 112 + 16 * 8), 0x110u);
  EXPECT_EQ(u64_at(out, 112 + 19 * 8), 0x10fu);
  EXPECT_EQ(u64_at(out, 112 + 21 * 8), 0x7000u);
  EXPECT_EQ(u32_at(out, 328), 1u);  // pr_fpvalid
  EXPECT_EQ(out[kX86_64PrstatusSize], 0xee) << "wrote past 336 bytes";
}

TEST(CoreRegs, GetcontextSelectorsGetUserDefaults) {
  uint64_t gregs[23] = {};
  X86_64UserRegs r = x86_64_regs_from_gregs(gregs, 0);
  EXPECT_EQ(r.cs, 0x33u);
  EXPECT_EQ(r.ss, 0x2bu);
}

std::vector<unsigned char> signal_frame(uint64_t xfeatures, uint32_t xstate_size) {
  std::vector<unsigned char> f(4096, 0);
  for (size_t i = 0; i < 464; ++i) f[i] = static_cast<unsigned char>(i);
  uint32_t magic = 0x46505853, extended = xstate_size + 4;
  std::memcpy(&f[464], &magic, 4);
  std::memcpy(&f[468], &extended, 4);
  std::memcpy(&f[472], &xfeatures, 8);
  std::memcpy(&f[480], &xstate_size, 4);
  std::memcpy(&f[512], &xfeatures, 8);  // XSTATE_BV
  for (size_t i = 576; i < xstate_size; ++i) f[i] = static_cast<unsigned char>(i * 7);
  return f;
}

TEST(CoreRegs, XstatePutsXcr0At464) {
  auto f = signal_frame(0x7, 832);
  unsigned char out[4096];
  size_t n = x86_64_xstate_from_signal_frame(f.data(), f.size(), out, sizeof out, kIntelPkruOffset);
  ASSERT_EQ(n, 832u);
  EXPECT_EQ(u64_at(out, 464), 0x7u);
  EXPECT_EQ(u64_at(out, 472), 0u);
  EXPECT_EQ(std::memcmp(out, f.data(), 464), 0);
  EXPECT_EQ(std::memcmp(out + 512, f.data() + 512, 832 - 512), 0);
}

TEST(CoreRegs, XstateWithPkruAtAmdOffsetIsPaddedToGdbsSize) {
  auto f = signal_frame(0x207, 2440);  // x87, SSE, AVX, PKRU at 2432 (AMD without AVX-512)
  uint64_t pkru = 0x55555554;
  std::memcpy(&f[2432], &pkru, 8);
  unsigned char out[4096];
  size_t n = x86_64_xstate_from_signal_frame(f.data(), f.size(), out, sizeof out, 2432);
  ASSERT_EQ(n, 2696u);
  EXPECT_EQ(gdb_xstate_size(0x207), 2696u);
  EXPECT_EQ(u64_at(out, 2688), pkru);
  EXPECT_EQ(u64_at(out, 2432), pkru);
}

TEST(CoreRegs, PlainFxsaveFrameHasNoXstate) {
  std::vector<unsigned char> f(512, 0);
  unsigned char out[4096];
  EXPECT_EQ(x86_64_xstate_from_signal_frame(f.data(), f.size(), out, sizeof out, 0), 0u);
}

TEST(CoreRegs, Aarch64PrstatusIs392BytesWithRegsAt112) {
  Aarch64Regs r{};
  for (int i = 0; i < 31; ++i) r.x[i] = 0xa000 + uint64_t(i);
  r.sp = 0x5ff0;
  r.pc = 0x400123;
  r.pstate = 0x60000000;
  unsigned char out[kAarch64PrstatusSize + 16];
  std::memset(out, 0xee, sizeof out);
  write_aarch64_prstatus(sample_head(), r, true, out);
  expect_head(out);
  EXPECT_EQ(u64_at(out, 112), 0xa000u);                // x0
  EXPECT_EQ(u64_at(out, 112 + 29 * 8), 0xa01du);       // x29 (frame pointer)
  EXPECT_EQ(u64_at(out, 112 + 30 * 8), 0xa01eu);       // x30 (link register)
  EXPECT_EQ(u64_at(out, 112 + 31 * 8), 0x5ff0u);       // sp
  EXPECT_EQ(u64_at(out, 112 + 32 * 8), 0x400123u);     // pc
  EXPECT_EQ(u64_at(out, 112 + 33 * 8), 0x60000000u);   // pstate
  EXPECT_EQ(u32_at(out, 384), 1u);                     // pr_fpvalid
  EXPECT_EQ(u32_at(out, 388), 0u);
  EXPECT_EQ(out[kAarch64PrstatusSize], 0xee) << "wrote past 392 bytes";
}

// A sigcontext __reserved area as the kernel lays it out: an unrelated record
// first, then fpsimd_context {magic, size, fpsr, fpcr, vregs[32]}, then the end.
std::vector<unsigned char> aarch64_reserved() {
  std::vector<unsigned char> r(4096, 0);
  uint32_t esr_magic = 0x45535201, esr_size = 16;
  std::memcpy(&r[0], &esr_magic, 4);
  std::memcpy(&r[4], &esr_size, 4);
  size_t off = 16;
  uint32_t magic = 0x46508001, size = 528, fpsr = 0x8000001f, fpcr = 0x03c00000;
  std::memcpy(&r[off], &magic, 4);
  std::memcpy(&r[off + 4], &size, 4);
  std::memcpy(&r[off + 8], &fpsr, 4);
  std::memcpy(&r[off + 12], &fpcr, 4);
  for (size_t i = 0; i < 512; ++i) r[off + 16 + i] = static_cast<unsigned char>(i ^ 0x5a);
  return r;
}

TEST(CoreRegs, Aarch64FpsimdNotePutsVregsFirst) {
  auto reserved = aarch64_reserved();
  Aarch64SignalFpsimd fp;
  ASSERT_TRUE(aarch64_find_fpsimd(reserved.data(), reserved.size(), &fp));
  EXPECT_EQ(fp.fpsr, 0x8000001fu);
  EXPECT_EQ(fp.fpcr, 0x03c00000u);
  unsigned char out[kAarch64FpsimdSize + 16];
  std::memset(out, 0xee, sizeof out);
  write_aarch64_fpregset(fp, out);
  EXPECT_EQ(std::memcmp(out, reserved.data() + 16 + 16, 512), 0);  // v0..v31 at 0
  EXPECT_EQ(out[16], static_cast<unsigned char>(16 ^ 0x5a));      // v1 starts at 16
  EXPECT_EQ(u32_at(out, 512), 0x8000001fu);                       // fpsr
  EXPECT_EQ(u32_at(out, 516), 0x03c00000u);                       // fpcr
  EXPECT_EQ(u64_at(out, 520), 0u);
  EXPECT_EQ(out[kAarch64FpsimdSize], 0xee) << "wrote past 528 bytes";
}

TEST(CoreRegs, Aarch64WithoutFpsimdRecordIsRejected) {
  std::vector<unsigned char> r(4096, 0);
  Aarch64SignalFpsimd fp;
  EXPECT_FALSE(aarch64_find_fpsimd(r.data(), r.size(), &fp));
  uint32_t bad[2] = {0x12345678, 4};  // a record whose size cannot be right
  std::memcpy(r.data(), bad, sizeof bad);
  EXPECT_FALSE(aarch64_find_fpsimd(r.data(), r.size(), &fp));
}

TEST(CoreRegs, PrpsinfoLayout) {
  PrpsinfoFields f;
  f.state = 'S';
  f.pid = 77;
  f.ppid = 1;
  f.uid = 1000;
  f.gid = 100;
  f.fname = "a-very-long-program-name";
  f.psargs = "prog --flag";
  unsigned char out[kPrpsinfoSize + 8];
  std::memset(out, 0xee, sizeof out);
  write_prpsinfo(f, out);
  EXPECT_EQ(out[0], 1);  // numeric state of 'S'
  EXPECT_EQ(out[1], 'S');
  EXPECT_EQ(u32_at(out, 16), 1000u);
  EXPECT_EQ(u32_at(out, 20), 100u);
  EXPECT_EQ(u32_at(out, 24), 77u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out + 40)), "a-very-long-pro");  // 15 bytes + NUL
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out + 56)), "prog --flag");
  EXPECT_EQ(out[kPrpsinfoSize], 0xee) << "wrote past 136 bytes";
}

TEST(CoreRegs, ElfHeaderUsesExtendedCountPast65534Segments) {
  ElfHeaders small = elf_headers_for(100, 0);
  EXPECT_FALSE(small.extended);
  EXPECT_EQ(small.ehdr.e_phnum, 100);
  EXPECT_EQ(small.ehdr.e_type, ET_CORE);
  EXPECT_EQ(small.ehdr.e_shoff, 0u);

  ElfHeaders big = elf_headers_for(70000, 4096);
  EXPECT_TRUE(big.extended);
  EXPECT_EQ(big.ehdr.e_phnum, PN_XNUM);
  EXPECT_EQ(big.ehdr.e_shoff, 4096u);
  EXPECT_EQ(big.ehdr.e_shnum, 1);
  EXPECT_EQ(big.ehdr.e_shentsize, sizeof(Elf64_Shdr));
  EXPECT_EQ(big.shdr.sh_info, 70000u);
  EXPECT_EQ(elf_headers_for(65534, 0).extended, false);
  EXPECT_EQ(elf_headers_for(65535, 0).extended, true);
}

}  // namespace
}  // namespace panicstop::detail::core
