#include "snapshot/unwind.hpp"

#include <atomic>
#include <cstddef>
#include <elf.h>
#include <link.h>

#include "snapshot/elf_image.hpp"
#include "snapshot/memory.hpp"
#include "snapshot/registers.hpp"
#include "sys/format.hpp"
#include "sys/syscall.hpp"
#include "thread/handler_stack.hpp"

namespace panicstop::detail {

namespace {

int32_t module_of(const ProcessSnapshot& snap, uintptr_t pc) noexcept {
  for (uint32_t i = 0; i < snap.module_count; ++i)
    if (pc >= snap.modules[i].start && pc < snap.modules[i].end) return int32_t(i);
  return -1;
}

// The stack the walk is on: the thread's, or after a signal frame whatever
// stack the interrupted code ran on (a handler may run on sigaltstack).
struct StackBounds {
  uintptr_t lo, hi;  // both 0: unknown (memory checks still apply)
};

bool on_stack(const StackBounds& b, uintptr_t sp) noexcept {
  if (b.lo == 0 && b.hi == 0) return true;
  return sp >= b.lo && sp <= b.hi;
}

// --- per-module .eh_frame_hdr cache ------------------------------------------

enum class HdrState : uint8_t { kUnknown = 0, kFound, kNone };

struct EhFrameHdr {
  HdrState state;
  uintptr_t hdr;      // the .eh_frame_hdr section
  uintptr_t table;    // its binary search table: (initial location, FDE) pairs, sdata4 datarel
  uint32_t fde_count;
};

EhFrameHdr* g_hdrs = nullptr;  // [kMaxModules], reset per capture
const ProcessSnapshot* g_hdrs_for = nullptr;
int64_t g_hdrs_captured_ns = -1;
std::atomic<bool> g_reserved{false};

// DW_EH_PE encodings.
constexpr uint8_t kPeOmit = 0xff, kPeAbsptr = 0x00, kPeUleb = 0x01, kPeUdata2 = 0x02, kPeUdata4 = 0x03,
                  kPeUdata8 = 0x04, kPeSleb = 0x09, kPeSdata2 = 0x0a, kPeSdata4 = 0x0b, kPeSdata8 = 0x0c;
constexpr uint8_t kPePcrel = 0x10, kPeDatarel = 0x30, kPeIndirect = 0x80;

// A bounded view of memory already checked to be readable.
struct Cursor {
  const unsigned char* p;
  const unsigned char* end;
  bool ok = true;

  uintptr_t addr() const noexcept { return reinterpret_cast<uintptr_t>(p); }
  bool need(size_t n) noexcept {
    if (!ok || size_t(end - p) < n) ok = false;
    return ok;
  }
  uint8_t u8() noexcept { return need(1) ? *p++ : 0; }
  template <typename T>
  T fixed() noexcept {
    T v{};
    if (!need(sizeof v)) return v;
    unsigned char* d = reinterpret_cast<unsigned char*>(&v);
    for (size_t i = 0; i < sizeof v; ++i) d[i] = p[i];
    p += sizeof v;
    return v;
  }
  uint64_t uleb() noexcept {
    uint64_t v = 0;
    for (unsigned shift = 0; ok; shift += 7) {
      uint8_t b = u8();
      if (shift < 64) v |= uint64_t(b & 0x7f) << shift;
      if ((b & 0x80) == 0) break;
    }
    return v;
  }
  int64_t sleb() noexcept {
    int64_t v = 0;
    unsigned shift = 0;
    uint8_t b = 0;
    do {
      b = u8();
      if (shift < 64) v |= int64_t(b & 0x7f) << shift;
      shift += 7;
    } while (ok && (b & 0x80) != 0);
    if (shift < 64 && (b & 0x40) != 0) v |= -(int64_t(1) << shift);
    return v;
  }
  void skip(uint64_t n) noexcept {
    if (need(n)) p += n;
  }
  // A pointer in encoding enc; datarel is relative to data_base.
  uintptr_t pointer(const ProcessSnapshot& snap, uint8_t enc, uintptr_t data_base) noexcept {
    if (enc == kPeOmit) return 0;
    uintptr_t at = addr();
    uintptr_t v = 0;
    switch (enc & 0x0f) {
      case kPeAbsptr: v = fixed<uint64_t>(); break;
      case kPeUleb: v = uleb(); break;
      case kPeUdata2: v = fixed<uint16_t>(); break;
      case kPeUdata4: v = fixed<uint32_t>(); break;
      case kPeUdata8: v = fixed<uint64_t>(); break;
      case kPeSleb: v = uintptr_t(sleb()); break;
      case kPeSdata2: v = uintptr_t(int64_t(fixed<int16_t>())); break;
      case kPeSdata4: v = uintptr_t(int64_t(fixed<int32_t>())); break;
      case kPeSdata8: v = uintptr_t(fixed<int64_t>()); break;
      default: ok = false; return 0;
    }
    switch (enc & 0x70) {
      case 0: break;
      case kPePcrel: v += at; break;
      case kPeDatarel: v += data_base; break;
      default: ok = false; return 0;  // textrel, funcrel, aligned: not emitted on x86_64 Linux
    }
    if ((enc & kPeIndirect) != 0 && !read_value(snap, v, &v)) ok = false;
    return v;
  }
};

bool cursor_over(const ProcessSnapshot& snap, uintptr_t addr, size_t len, Cursor* c) noexcept {
  if (!memory_readable(snap, addr, len)) return false;
  c->p = reinterpret_cast<const unsigned char*>(addr);
  c->end = c->p + len;
  c->ok = true;
  return true;
}

// Where the module's ELF header is mapped: its mapping at file offset 0.
uintptr_t module_header(const ProcessSnapshot& snap, const SnapshotModule& m) noexcept {
  for (uint32_t i = 0; i < snap.mapping_count; ++i) {
    const SnapshotMapping& map = snap.mappings[i];
    if (map.start < m.start || map.start >= m.end || map.file_offset != 0) continue;
    if (map.path_offset == m.path_offset || sys::equals(snap.path(map.path_offset), snap.path(m.path_offset)))
      return map.start;
  }
  return 0;
}

const EhFrameHdr* eh_frame_hdr_for(const ProcessSnapshot& snap, uint32_t index) noexcept {
  EhFrameHdr* h = &g_hdrs[index];
  if (h->state != HdrState::kUnknown) return h->state == HdrState::kFound ? h : nullptr;
  h->state = HdrState::kNone;
  ElfImage image;
  uintptr_t base = module_header(snap, snap.modules[index]);
  uintptr_t addr;
  size_t size;
  if (base == 0 || !read_elf_image(snap, base, &image) || !find_segment(snap, image, PT_GNU_EH_FRAME, &addr, &size))
    return nullptr;
  Cursor c;
  if (size < 4 || !cursor_over(snap, addr, size, &c)) return nullptr;
  uint8_t version = c.u8(), eh_frame_ptr_enc = c.u8(), count_enc = c.u8(), table_enc = c.u8();
  if (version != 1 || table_enc != (kPeDatarel | kPeSdata4)) return nullptr;
  c.pointer(snap, eh_frame_ptr_enc, addr);
  uintptr_t count = c.pointer(snap, count_enc, addr);
  if (!c.ok || count == 0 || count > (size - (c.addr() - addr)) / 8) return nullptr;
  h->hdr = addr;
  h->table = c.addr();
  h->fde_count = uint32_t(count);
  h->state = HdrState::kFound;
  return h;
}

// The FDE covering pc, from the binary search table.
uintptr_t find_fde(const EhFrameHdr& h, uintptr_t pc) noexcept {
  const auto* table = reinterpret_cast<const int32_t*>(h.table);
  uint32_t lo = 0, hi = h.fde_count;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (h.hdr + int64_t(table[2 * mid]) <= pc)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0) return 0;
  return h.hdr + int64_t(table[2 * (lo - 1) + 1]);
}

// --- CFI ------------------------------------------------------------------------

#if defined(__x86_64__)
// DWARF numbers: 0-15 general registers, 16 the return address column, which
// doubles as the frame's PC.
constexpr unsigned kRegCount = 17;
constexpr unsigned kRegSp = 7, kRegFp = 6, kRegPc = 16;
#elif defined(__aarch64__)
// DWARF numbers: 0-30 x0-x30 (x29 the frame pointer, x30 the link register,
// the CIE's return address column), 31 sp; 32 is not a DWARF register here
// but the frame's PC, kept apart from x30 because a frame that has called out
// no longer holds its own return address in x30.
constexpr unsigned kRegCount = 33;
constexpr unsigned kRegSp = 31, kRegFp = 29, kRegLr = 30, kRegPc = 32;
#else
#error "panicstop's unwinder supports x86_64 and aarch64"
#endif

// A return address as code uses it. aarch64 return addresses saved under
// pointer authentication (-mbranch-protection) carry a signature in the bits
// above the virtual address; user addresses are below 2^48, so those bits go.
uintptr_t code_address(uintptr_t ra) noexcept {
#if defined(__aarch64__)
  return ra & ((uintptr_t(1) << 48) - 1);
#else
  return ra;
#endif
}

enum class Rule : uint8_t { kSame = 0, kUndefined, kOffset, kValOffset, kRegister, kUnsupported };

struct RegRule {
  Rule rule;
  int64_t value;  // offset from the CFA, or the register number
};

struct CfaState {
  uint32_t cfa_reg;
  int64_t cfa_offset;
  bool cfa_unsupported;  // DW_CFA_def_cfa_expression
  RegRule regs[kRegCount];
};

struct Cie {
  uint64_t code_align;
  int64_t data_align;
  uint32_t ra_reg;
  uint8_t fde_enc;
  bool has_augmentation_data;
  const unsigned char* insns;
  const unsigned char* insns_end;
};

// Reads the length-prefixed record (CIE or FDE) at addr: *body starts after
// the length field and ends with the record.
bool record_at(const ProcessSnapshot& snap, uintptr_t addr, Cursor* body) noexcept {
  uint32_t len32;
  if (!read_value(snap, addr, &len32) || len32 == 0) return false;
  uint64_t len = len32;
  uintptr_t start = addr + 4;
  if (len32 == 0xffffffff) {
    if (!read_value(snap, start, &len)) return false;
    start += 8;
  }
  if (len > (1u << 24)) return false;  // no real CFI record is this long
  return cursor_over(snap, start, size_t(len), body);
}

bool parse_cie(const ProcessSnapshot& snap, uintptr_t addr, Cie* cie) noexcept {
  Cursor c;
  if (!record_at(snap, addr, &c)) return false;
  if (c.fixed<uint32_t>() != 0) return false;  // CIE id in .eh_frame
  uint8_t version = c.u8();
  if (version != 1 && version != 3) return false;
  const char* aug = reinterpret_cast<const char*>(c.p);
  while (c.ok && c.u8() != 0) {
  }
  if (aug[0] == 'e' && aug[1] == 'h') c.skip(8);
  cie->code_align = c.uleb();
  cie->data_align = c.sleb();
  cie->ra_reg = version == 1 ? c.u8() : uint32_t(c.uleb());
  cie->fde_enc = kPeAbsptr;
  cie->has_augmentation_data = false;
  const char* a = aug;
  if (*a == 'z') {
    cie->has_augmentation_data = true;
    uint64_t aug_len = c.uleb();
    const unsigned char* aug_end = c.p + aug_len;
    for (++a; *a != '\0' && c.ok; ++a) {
      if (*a == 'R') {
        cie->fde_enc = c.u8();
      } else if (*a == 'P') {
        uint8_t enc = c.u8();
        c.pointer(snap, enc & ~kPeIndirect, 0);
      } else if (*a == 'L') {
        c.u8();
      } else if (*a == 'S' || *a == 'B') {
      } else {
        break;  // unknown: the length lets us skip the rest
      }
    }
    if (!c.need(0) || aug_end > c.end) return false;
    c.p = aug_end;
  }
  cie->insns = c.p;
  cie->insns_end = c.end;
  return c.ok && cie->ra_reg < kRegCount;
}

struct Fde {
  Cie cie;
  uintptr_t pc_begin, pc_end;
  const unsigned char* insns;
  const unsigned char* insns_end;
};

bool parse_fde(const ProcessSnapshot& snap, uintptr_t addr, Fde* fde) noexcept {
  Cursor c;
  if (!record_at(snap, addr, &c)) return false;
  uintptr_t id_at = c.addr();
  uint32_t cie_offset = c.fixed<uint32_t>();
  if (cie_offset == 0 || !parse_cie(snap, id_at - cie_offset, &fde->cie)) return false;
  fde->pc_begin = c.pointer(snap, fde->cie.fde_enc, 0);
  fde->pc_end = fde->pc_begin + c.pointer(snap, fde->cie.fde_enc & 0x0f, 0);
  if (fde->cie.has_augmentation_data) c.skip(c.uleb());
  fde->insns = c.p;
  fde->insns_end = c.end;
  return c.ok;
}

constexpr int kMaxRememberedStates = 8;

// Runs CFA instructions until the location passes pc. initial: the CIE's rules
// (for DW_CFA_restore); nullptr while running the CIE itself.
bool run_cfa_program(const ProcessSnapshot& snap, const Cie& cie, const unsigned char* p, const unsigned char* end,
                     uintptr_t loc, uintptr_t pc, const CfaState* initial, CfaState* st) noexcept {
  Cursor c{p, end};
  CfaState remembered[kMaxRememberedStates];
  int depth = 0;
  auto set = [&](uint64_t reg, Rule rule, int64_t value) {
    if (reg < kRegCount) st->regs[reg] = RegRule{rule, value};
  };
  auto restore = [&](uint64_t reg) {
    if (reg < kRegCount) st->regs[reg] = initial != nullptr ? initial->regs[reg] : RegRule{Rule::kSame, 0};
  };
  while (c.ok && c.p < c.end) {
    uint8_t op = c.u8();
    uint8_t low = op & 0x3f;
    switch (op & 0xc0) {
      case 0x40:
        loc += low * cie.code_align;
        if (loc > pc) return true;
        continue;
      case 0x80: set(low, Rule::kOffset, int64_t(c.uleb()) * cie.data_align); continue;
      case 0xc0: restore(low); continue;
      default: break;
    }
    switch (op) {
      case 0x00: break;  // nop
      case 0x01: loc = c.pointer(snap, cie.fde_enc, 0); if (loc > pc) return true; break;
      case 0x02: loc += c.u8() * cie.code_align; if (loc > pc) return true; break;
      case 0x03: loc += c.fixed<uint16_t>() * cie.code_align; if (loc > pc) return true; break;
      case 0x04: loc += c.fixed<uint32_t>() * cie.code_align; if (loc > pc) return true; break;
      case 0x05: { uint64_t r = c.uleb(); set(r, Rule::kOffset, int64_t(c.uleb()) * cie.data_align); break; }
      case 0x06: restore(c.uleb()); break;
      case 0x07: set(c.uleb(), Rule::kUndefined, 0); break;
      case 0x08: set(c.uleb(), Rule::kSame, 0); break;
      case 0x09: { uint64_t r = c.uleb(); set(r, Rule::kRegister, int64_t(c.uleb())); break; }
      case 0x0a:
        if (depth == kMaxRememberedStates) return false;
        remembered[depth++] = *st;
        break;
      case 0x0b: {
        if (depth == 0) return false;
        // The CFA rule is not part of the remembered state in practice, but
        // GCC's unwinder restores it too; so do we.
        *st = remembered[--depth];
        break;
      }
      case 0x0c: st->cfa_reg = uint32_t(c.uleb()); st->cfa_offset = int64_t(c.uleb()); st->cfa_unsupported = false; break;
      case 0x0d: st->cfa_reg = uint32_t(c.uleb()); st->cfa_unsupported = false; break;
      case 0x0e: st->cfa_offset = int64_t(c.uleb()); break;
      case 0x0f: st->cfa_unsupported = true; c.skip(c.uleb()); break;  // def_cfa_expression
      case 0x10: { uint64_t r = c.uleb(); set(r, Rule::kUnsupported, 0); c.skip(c.uleb()); break; }  // expression
      case 0x11: { uint64_t r = c.uleb(); set(r, Rule::kOffset, c.sleb() * cie.data_align); break; }
      case 0x12: st->cfa_reg = uint32_t(c.uleb()); st->cfa_offset = c.sleb() * cie.data_align; st->cfa_unsupported = false; break;
      case 0x13: st->cfa_offset = c.sleb() * cie.data_align; break;
      case 0x14: { uint64_t r = c.uleb(); set(r, Rule::kValOffset, int64_t(c.uleb()) * cie.data_align); break; }
      case 0x15: { uint64_t r = c.uleb(); set(r, Rule::kValOffset, c.sleb() * cie.data_align); break; }
      case 0x16: { uint64_t r = c.uleb(); set(r, Rule::kUnsupported, 0); c.skip(c.uleb()); break; }  // val_expression
      case 0x2e: c.uleb(); break;  // GNU_args_size
#if defined(__aarch64__)
      case 0x2d: break;  // AARCH64_negate_ra_state: code_address() strips the signature
#endif
      case 0x2f: { uint64_t r = c.uleb(); set(r, Rule::kOffset, -int64_t(c.uleb()) * cie.data_align); break; }
      default: return false;
    }
  }
  return c.ok;
}

// --- the walk -------------------------------------------------------------------

struct Regs {
  uintptr_t r[kRegCount];
  bool valid[kRegCount];
};

// One step with the CFI of the function holding pc. False: no usable CFI.
// *end: CFI says this is the outermost frame.
bool cfi_step(const ProcessSnapshot& snap, Regs* regs, bool first_frame, bool* end) noexcept {
  uintptr_t pc = regs->r[kRegPc];
  uintptr_t lookup = first_frame ? pc : pc - 1;
  int32_t m = module_of(snap, lookup);
  if (m < 0) return false;
  const EhFrameHdr* h = eh_frame_hdr_for(snap, uint32_t(m));
  if (h == nullptr) return false;
  uintptr_t fde_addr = find_fde(*h, lookup);
  Fde fde;
  if (fde_addr == 0 || !parse_fde(snap, fde_addr, &fde) || lookup < fde.pc_begin || lookup >= fde.pc_end) return false;
  CfaState initial{};
  if (!run_cfa_program(snap, fde.cie, fde.cie.insns, fde.cie.insns_end, 0, UINTPTR_MAX, nullptr, &initial))
    return false;
  CfaState st = initial;
  if (!run_cfa_program(snap, fde.cie, fde.insns, fde.insns_end, fde.pc_begin, lookup, &initial, &st)) return false;
  if (st.cfa_unsupported || st.cfa_reg >= kRegCount || !regs->valid[st.cfa_reg]) return false;
  uintptr_t cfa = regs->r[st.cfa_reg] + uintptr_t(st.cfa_offset);
  Regs next = *regs;
  for (unsigned i = 0; i < kRegCount; ++i) {
    const RegRule& rule = st.regs[i];
    switch (rule.rule) {
      case Rule::kSame: break;
      case Rule::kUndefined: next.valid[i] = false; break;
      case Rule::kOffset:
        next.valid[i] = read_value(snap, cfa + uintptr_t(rule.value), &next.r[i]);
        if (i == fde.cie.ra_reg && !next.valid[i]) return false;
        break;
      case Rule::kValOffset: next.r[i] = cfa + uintptr_t(rule.value); next.valid[i] = true; break;
      case Rule::kRegister:
        if (rule.value < 0 || rule.value >= int64_t(kRegCount)) return false;
        next.r[i] = regs->r[rule.value];
        next.valid[i] = regs->valid[rule.value];
        break;
      case Rule::kUnsupported:
        if (i == fde.cie.ra_reg) return false;
        next.valid[i] = false;
        break;
    }
  }
  if (!next.valid[fde.cie.ra_reg]) {
    *end = true;  // the return address is undefined: _start, clone's child
    return true;
  }
  next.r[kRegPc] = code_address(next.r[fde.cie.ra_reg]);
  next.r[kRegSp] = cfa;
  next.valid[kRegSp] = true;
  *regs = next;
  return true;
}

// One frame-pointer step: [fp] is the caller's fp, [fp + 8] the return address
// (the x86_64 frame and the aarch64 frame record alike). On aarch64 the
// caller's sp is not known from the record alone; fp + 16 is a lower bound.
bool fp_step(const ProcessSnapshot& snap, const StackBounds& t, bool first_frame, Regs* regs) noexcept {
#if defined(__aarch64__)
  // Without CFI, the first frame may be a leaf that never stored its frame
  // record: its caller is in the link register. The record fp points at is
  // then the caller's, whose return address is the caller's caller; a link
  // register that equals it was saved by this frame. (A frame that called out
  // and came back also holds a stale x30; only CFI tells it from a leaf, so
  // this guess is the fallback for code without any.) Only the first step
  // may use x30.
  if (first_frame && regs->valid[kRegLr]) {
    uintptr_t lr = code_address(regs->r[kRegLr]);
    uintptr_t pair[2] = {0, 0};
    bool have_record = regs->valid[kRegFp] && read_memory(snap, regs->r[kRegFp], pair, sizeof pair);
    if (lr != 0 && module_of(snap, lr) >= 0 && !(have_record && code_address(pair[1]) == lr)) {
      regs->r[kRegPc] = lr;
      regs->valid[kRegLr] = false;
      return true;
    }
  }
#else
  (void)first_frame;
#endif
  if (!regs->valid[kRegFp]) return false;
  uintptr_t fp = regs->r[kRegFp];
  if ((fp & 7) != 0 || !on_stack(t, fp)) return false;
  uintptr_t pair[2];
  if (!read_memory(snap, fp, pair, sizeof pair)) return false;
  regs->r[kRegFp] = pair[0];
  regs->r[kRegPc] = code_address(pair[1]);
  regs->r[kRegSp] = fp + 16;
#if defined(__aarch64__)
  regs->valid[kRegLr] = false;
#endif
  return true;
}

// The saved machine registers, as the kernel lays them out in mcontext_t.
#if defined(__x86_64__)
struct SavedRegs {
  greg_t gregs[NGREG];
};
constexpr size_t kSavedRegsOffset = offsetof(mcontext_t, gregs);
#else
struct SavedRegs {
  uint64_t x[31];  // x0-x30, then sp and pc, with nothing between
  uint64_t sp, pc;
};
constexpr size_t kSavedRegsOffset = offsetof(mcontext_t, regs);
static_assert(offsetof(mcontext_t, sp) == kSavedRegsOffset + offsetof(SavedRegs, sp));
static_assert(offsetof(mcontext_t, pc) == kSavedRegsOffset + offsetof(SavedRegs, pc));
#endif

// Every register of a saved machine context, in DWARF order.
void load_context(const SavedRegs& saved, Regs* regs) noexcept {
#if defined(__x86_64__)
  // rax rdx rcx rbx rsi rdi rbp rsp r8..r15, then the return address column.
  const int map[kRegCount] = {REG_RAX, REG_RDX, REG_RCX, REG_RBX, REG_RSI, REG_RDI, REG_RBP, REG_RSP, REG_R8,
                              REG_R9,  REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15, REG_RIP};
  for (unsigned i = 0; i < kRegCount; ++i) regs->r[i] = uintptr_t(saved.gregs[map[i]]);
#else
  for (unsigned i = 0; i <= kRegLr; ++i) regs->r[i] = uintptr_t(saved.x[i]);
  regs->r[kRegSp] = uintptr_t(saved.sp);
  regs->r[kRegPc] = uintptr_t(saved.pc);
#endif
  for (unsigned i = 0; i < kRegCount; ++i) regs->valid[i] = true;
}

const SavedRegs& saved_regs_of(const mcontext_t& mc) noexcept {
  return *reinterpret_cast<const SavedRegs*>(reinterpret_cast<const char*>(&mc) + kSavedRegsOffset);
}

// A return into the signal trampoline (x86_64: glibc's __restore_rt; aarch64:
// the vDSO's __kernel_rt_sigreturn, or qemu-user's copy of it): the
// interrupted registers are in the ucontext the kernel put at the stack
// pointer (aarch64: after the siginfo). Loads them, so the walk goes on
// through signal handlers.
bool sigreturn_step(const ProcessSnapshot& snap, StackBounds* stack, Regs* regs) noexcept {
  if (!is_signal_trampoline(snap, regs->r[kRegPc])) return false;
#if defined(__x86_64__)
  uintptr_t uc = regs->r[kRegSp];
#else
  uintptr_t uc = regs->r[kRegSp] + sizeof(siginfo_t);
#endif
  if (!on_stack(*stack, regs->r[kRegSp])) return false;
  SavedRegs saved;
  if (!read_memory(snap, uc + offsetof(ucontext_t, uc_mcontext) + kSavedRegsOffset, &saved, sizeof saved))
    return false;
  load_context(saved, regs);
  const SnapshotMapping* m = find_mapping(snap, regs->r[kRegSp]);
  if (m == nullptr) return false;
  stack->lo = m->start;
  stack->hi = m->end;
  return true;
}

}  // namespace

bool is_signal_trampoline(const ProcessSnapshot& snap, uintptr_t pc) noexcept {
#if defined(__x86_64__)
  // mov $15, %rax; syscall
  static const unsigned char kSigreturn[] = {0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05};
#else
  // mov x8, #139 (rt_sigreturn); svc #0, little-endian
  static const unsigned char kSigreturn[] = {0x68, 0x11, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4};
#endif
  unsigned char code[sizeof kSigreturn];
  if (!read_memory(snap, pc, code, sizeof code)) return false;
  for (size_t i = 0; i < sizeof code; ++i)
    if (code[i] != kSigreturn[i]) return false;
  return true;
}

bool reserve_unwinder() noexcept {
  if (g_reserved.load(std::memory_order_acquire)) return true;
  g_hdrs = static_cast<EhFrameHdr*>(sys::mmap_anonymous(sizeof(EhFrameHdr) * kMaxModules, true));
  if (g_hdrs == nullptr) return false;
  g_reserved.store(true, std::memory_order_release);
  return true;
}

// CFI first, one frame-pointer step where a frame has none. On aarch64 the
// CFI is what tells a leaf (its caller still in x30, or saved by it) from a
// frame that called out and came back (x30 then points into the frame
// itself): taking x30 as the caller there repeats the frame's own function.
void unwind_thread(const ProcessSnapshot& snap, SnapshotThread* t) noexcept {
  t->frame_count = 0;
  bool kernel_regs = t->context == nullptr && t->kernel.has_regs();
  if ((t->context == nullptr && !kernel_regs) || !reserve_unwinder()) return;
  // The module cache belongs to one capture.
  if (g_hdrs_for != &snap || g_hdrs_captured_ns != snap.captured_ns) {
    for (uint32_t i = 0; i < snap.module_count; ++i) g_hdrs[i].state = HdrState::kUnknown;
    g_hdrs_for = &snap;
    g_hdrs_captured_ns = snap.captured_ns;
  }
  Regs regs;
  if (kernel_regs) {
    // A thread that did not stop: the kernel gives its sp and pc only. CFI
    // needs no more while each frame's CFA is sp-based (syscall wrappers
    // are), and recovers callee-saved registers from the stack as it goes;
    // the walk ends where a rule needs a register nobody knows.
    for (unsigned i = 0; i < kRegCount; ++i) {
      regs.r[i] = 0;
      regs.valid[i] = false;
    }
    regs.r[kRegSp] = t->kernel.sp;
    regs.r[kRegPc] = t->kernel.pc;
    regs.valid[kRegSp] = regs.valid[kRegPc] = true;
  } else {
    load_context(saved_regs_of(t->context->ucontext.uc_mcontext), &regs);
  }
  // After a signal frame the next PC is an interrupted instruction, not a
  // return address: it is looked up as is, like the first frame's.
  StackBounds stack{t->stack_lo, t->stack_hi};
  for (bool exact_pc = true; t->frame_count < kMaxFrames;) {
    uintptr_t pc = regs.r[kRegPc];
    if (pc == 0) break;
    t->frames[t->frame_count++] = pc;
    uintptr_t sp = regs.r[kRegSp];
    if (!exact_pc && sigreturn_step(snap, &stack, &regs)) {
      // The interrupted code's stack pointer may be on another stack; the
      // frame count bounds the walk there.
      exact_pc = true;
      continue;
    }
    bool end = false;
    if (!cfi_step(snap, &regs, exact_pc, &end) && !fp_step(snap, stack, exact_pc, &regs)) break;
    if (end) break;
    if (!exact_pc && pc == uintptr_t(panicstop_call_on_stack_return)) {
      // A handler's switch to a panicstop stack: the caller is on the stack
      // the signal arrived on, wherever that lies.
      const SnapshotMapping* m = find_mapping(snap, regs.r[kRegSp]);
      if (m == nullptr) break;
      stack = StackBounds{m->start, m->end};
      exact_pc = false;
      continue;
    }
    // The stack only grows down: a caller's frame is above its callee's; a
    // leaf's caller may share its stack pointer.
    if (regs.r[kRegSp] <= sp && !(exact_pc && regs.r[kRegSp] == sp)) break;
    if (!on_stack(stack, regs.r[kRegSp])) break;
    exact_pc = false;
  }
}

}  // namespace panicstop::detail
