#include "dump/core_plan.hpp"

#include <cerrno>
#include <fcntl.h>
#include <link.h>
#include <sys/uio.h>

#include "dump/elf_notes.hpp"
#include "snapshot/memory.hpp"
#include "stop/proc_dir.hpp"
#include "sys/format.hpp"
#include "sys/syscall.hpp"

namespace panicstop::detail::core {
namespace {

// Anonymous parts of the program's data (a large .bss) are kept only up to
// this much per range; the loader's own records are always small.
constexpr uintptr_t kMaxDataRange = 8u << 20;
// Other libraries' data (libc's thread lists that libthread_db walks, their
// .bss) is kept when it is this small, per segment.
constexpr uintptr_t kMaxLibraryDataRange = 1u << 20;
// File mappings are all-or-nothing; a link_map name inside a huge read-only
// mapping is not worth the whole mapping.
constexpr uintptr_t kMaxWholeFileMapping = 4u << 20;
constexpr uint32_t kDefaultCoredumpFilter = 0x33;
#if defined(__x86_64__)
constexpr uint16_t kMachine = EM_X86_64;
#elif defined(__aarch64__)
constexpr uint16_t kMachine = EM_AARCH64;
#endif

enum class Kind : uint8_t { kSkip, kVdso, kFile, kAnon };

Kind kind_of(const ProcessSnapshot& s, const SnapshotMapping& m) noexcept {
  const char* path = s.path(m.path_offset);
  if (!m.read) return Kind::kSkip;
  if (sys::equals(path, "[vdso]")) return Kind::kVdso;
  if (sys::starts_with(path, "[vvar") || sys::equals(path, "[vsyscall]")) return Kind::kSkip;
  // Device memory (GPU, MMIO) may have side effects on read and is not ours.
  if (sys::starts_with(path, "/dev/") && !sys::starts_with(path, "/dev/shm/") &&
      !sys::starts_with(path, "/dev/zero"))
    return Kind::kSkip;
  return is_file_mapping(s, m) ? Kind::kFile : Kind::kAnon;
}

// Reads memory without ever faulting: checked against the snapshot's readable
// mappings, then copied by the kernel (process_vm_readv on ourselves reports
// EFAULT where a plain load would raise SIGBUS, e.g. past the end of a file).
bool peek(const ProcessSnapshot& s, uintptr_t addr, void* out, size_t len) noexcept {
  if (!memory_readable(s, addr, len)) return false;
  struct iovec local = {out, len};
  struct iovec remote = {reinterpret_cast<void*>(addr), len};
  long r = sys::raw_syscall(SYS_process_vm_readv, s.pid, &local, 1, &remote, 1, 0);
  if (r == long(len)) return true;
  if (r == -ENOSYS || r == -EPERM) return read_memory(s, addr, out, len);
  return false;
}

class Planner {
 public:
  explicit Planner(const PlanInputs& in) noexcept : in_(in), s_(*in.snap) {}

  PlanSummary run() noexcept {
    count_ = s_.mapping_count < in_.plan_capacity ? s_.mapping_count : in_.plan_capacity;
    for (uint32_t i = 0; i < count_; ++i) in_.plans[i] = MappingPlan{0, 0, Want::kNone};
    if (in_.full) plan_full();
    plan_stacks();
    for (uint32_t i = 0; i < count_; ++i) {
      Kind k = kind_of(s_, s_.mappings[i]);
      if (k == Kind::kVdso) raise(i, Want::kWhole);
      if (k == Kind::kFile && s_.mappings[i].file_offset == 0 && is_elf(s_.mappings[i].start)) {
        raise(i, Want::kHeader);
        mark_library_data(s_.mappings[i].start);
      }
    }
    PlanSummary summary;
    plan_loader_data(&summary);
    for (uint32_t i = 0; i < count_; ++i)
      if (segment_for(in_, i).present) ++summary.segment_count;
    return summary;
  }

 private:
  uint64_t auxv(uint64_t type) const noexcept {
    for (uint32_t i = 0; i + 1 < s_.auxv_words; i += 2) {
      if (s_.auxv[i] == AT_NULL) break;
      if (s_.auxv[i] == type) return s_.auxv[i + 1];
    }
    return 0;
  }

  uintptr_t floor(uintptr_t a) const noexcept { return a & ~uintptr_t(in_.page_size - 1); }
  uintptr_t ceil(uintptr_t a) const noexcept { return floor(a + in_.page_size - 1); }

  int32_t index_of(uintptr_t addr) const noexcept {
    const SnapshotMapping* m = find_mapping(s_, addr);
    if (m == nullptr) return -1;
    auto i = int32_t(m - s_.mappings);
    return uint32_t(i) < count_ ? i : -1;
  }

  // The mapping holding the stack at sp (stack_mapping()), or -1.
  int32_t index_of_stack(uintptr_t sp) const noexcept {
    const SnapshotMapping* m = stack_mapping(s_, sp);
    if (m == nullptr || kind_of(s_, *m) == Kind::kSkip) return -1;
    auto i = int32_t(m - s_.mappings);
    return uint32_t(i) < count_ ? i : -1;
  }

  void raise(uint32_t i, Want w) noexcept {
    MappingPlan& p = in_.plans[i];
    if (w == Want::kWhole) {
      p.want = Want::kWhole;
    } else if (w == Want::kHeader && p.want == Want::kNone) {
      p.want = Want::kHeader;
    }
  }

  // Marks [lo, hi) for dumping across however many mappings it spans: parts
  // of file mappings make the whole mapping dumped, anonymous ones a range.
  void mark(uintptr_t lo, uintptr_t hi, uintptr_t anon_limit) noexcept {
    if (hi <= lo) return;
    int32_t i = index_of(lo);
    for (; i >= 0 && uint32_t(i) < count_ && s_.mappings[i].start < hi; ++i) {
      const SnapshotMapping& m = s_.mappings[i];
      Kind k = kind_of(s_, m);
      if (k == Kind::kSkip) continue;
      if (k != Kind::kAnon) {
        uintptr_t size = m.end - m.start;
        if (k == Kind::kVdso || (size <= kMaxWholeFileMapping && size <= anon_limit)) raise(uint32_t(i), Want::kWhole);
        continue;
      }
      MappingPlan& p = in_.plans[i];
      if (p.want == Want::kWhole) continue;
      uintptr_t a = floor(lo > m.start ? lo : m.start);
      uintptr_t b = ceil(hi < m.end ? hi : m.end);
      if (b - a > anon_limit) continue;
      if (p.want == Want::kNone) {
        p = MappingPlan{a, b, Want::kRange};
      } else {
        if (a < p.lo) p.lo = a;
        if (b > p.hi) p.hi = b;
      }
      if (p.lo <= m.start && p.hi >= m.end) p.want = Want::kWhole;
    }
  }

  bool is_elf(uintptr_t addr) const noexcept {
    unsigned char magic[SELFMAG];
    return peek(s_, addr, magic, sizeof magic) && magic[0] == ELFMAG0 && magic[1] == ELFMAG1 &&
           magic[2] == ELFMAG2 && magic[3] == ELFMAG3;
  }

  void plan_stacks() noexcept {
    for (uint32_t t = 0; t < s_.thread_count; ++t) {
      // A thread that did not stop is written with the stack pointer the
      // kernel gave, and a debugger unwinds it from its stack like the others.
      const SavedContext* c = s_.threads[t].context;
      if (c != nullptr && !c->valid) continue;
      uintptr_t sp = thread_stack_pointer(s_.threads[t]);
      if (sp == 0) continue;
      // A stack overflow leaves SP in the guard page (or just below the
      // stack): the stack is then the mapping right above, all of it in use.
      int32_t i = index_of_stack(sp);
      if (i < 0) continue;
      // 128 bytes below SP: the x86_64 red zone, where a leaf function may
      // keep live data.
      uintptr_t lo = sp - 128 < s_.mappings[i].start ? s_.mappings[i].start : sp - 128;
      mark(lo, s_.mappings[i].end, ~uintptr_t(0));
    }
    // Thread control blocks (struct pthread), which libthread_db reads: those
    // of created threads sit at the top of their stacks, the main thread's
    // wherever the loader put it.
    if (in_.current_fs_base != 0) mark(in_.current_fs_base, in_.current_fs_base + 4096, kMaxDataRange);
    for (uint32_t t = 0; t < s_.thread_count; ++t) {
      const SavedContext* c = s_.threads[t].context;
      uint64_t tls = c != nullptr && c->valid ? saved_tls_base(*c) : 0;
      if (tls != 0) mark(uintptr_t(tls), uintptr_t(tls) + 4096, kMaxDataRange);
    }
  }

  // The writable data, RELRO and dynamic section of the module whose program
  // headers are at phdr (bias: its load address). Returns the PT_DYNAMIC
  // address or 0.
  uintptr_t mark_module_data(uintptr_t phdr, uint64_t phnum, uintptr_t bias,
                             uintptr_t limit = kMaxDataRange) noexcept {
    uintptr_t dynamic = 0;
    for (uint64_t k = 0; k < phnum && k < 256; ++k) {
      Elf64_Phdr ph;
      if (!peek(s_, phdr + k * sizeof ph, &ph, sizeof ph)) break;
      bool wanted = (ph.p_type == PT_LOAD && (ph.p_flags & PF_W) != 0) || ph.p_type == PT_GNU_RELRO ||
                    ph.p_type == PT_DYNAMIC;
      if (wanted) mark(bias + ph.p_vaddr, bias + ph.p_vaddr + ph.p_memsz, limit);
      if (ph.p_type == PT_DYNAMIC) dynamic = bias + ph.p_vaddr;
    }
    return dynamic;
  }

  // Any mapped ELF file whose header is at start: its small writable data.
  void mark_library_data(uintptr_t start) noexcept {
    Elf64_Ehdr eh;
    if (!peek(s_, start, &eh, sizeof eh) || eh.e_ident[EI_CLASS] != ELFCLASS64) return;
    if (eh.e_type != ET_DYN && eh.e_type != ET_EXEC) return;
    // A shared object's first PT_LOAD is at link address 0 and maps at start.
    mark_module_data(start + eh.e_phoff, eh.e_phnum, eh.e_type == ET_DYN ? start : 0, kMaxLibraryDataRange);
  }

  // Bias of the executable: AT_PHDR minus PT_PHDR's link-time address (0 for
  // a non-PIE program without PT_PHDR).
  uintptr_t exe_bias(uintptr_t phdr, uint64_t phnum) const noexcept {
    for (uint64_t k = 0; k < phnum && k < 256; ++k) {
      Elf64_Phdr ph;
      if (!peek(s_, phdr + k * sizeof ph, &ph, sizeof ph)) break;
      if (ph.p_type == PT_PHDR) return phdr - ph.p_vaddr;
    }
    return 0;
  }

  void plan_loader_data(PlanSummary* summary) noexcept {
    uintptr_t phdr = auxv(AT_PHDR);
    uint64_t phnum = auxv(AT_PHNUM);
    uintptr_t dynamic = 0;
    if (phdr != 0) {
      int32_t i = index_of(phdr);
      if (i >= 0) {
        summary->exe_dev_major = s_.mappings[i].dev_major;
        summary->exe_dev_minor = s_.mappings[i].dev_minor;
        summary->exe_inode = s_.mappings[i].inode;
      }
      dynamic = mark_module_data(phdr, phnum, exe_bias(phdr, phnum));
    }
    uintptr_t ld_base = auxv(AT_BASE);
    Elf64_Ehdr eh;
    if (ld_base != 0 && peek(s_, ld_base, &eh, sizeof eh) && is_elf(ld_base))
      mark_module_data(ld_base + eh.e_phoff, eh.e_phnum, ld_base);
    if (dynamic != 0) mark_link_maps(dynamic);
  }

  // r_debug (found through the executable's DT_DEBUG) and every link_map node
  // with its name: what gdb, lldb, eu-stack and drgn walk to list libraries.
  void mark_link_maps(uintptr_t dynamic) noexcept {
    uintptr_t r_debug_addr = 0;
    for (uint32_t k = 0; k < 4096; ++k) {
      Elf64_Dyn d;
      if (!peek(s_, dynamic + k * sizeof d, &d, sizeof d) || d.d_tag == DT_NULL) break;
      if (d.d_tag == DT_DEBUG) r_debug_addr = d.d_un.d_ptr;
    }
    if (r_debug_addr == 0) return;
    struct r_debug rd;
    if (!peek(s_, r_debug_addr, &rd, sizeof rd)) return;
    mark(r_debug_addr, r_debug_addr + sizeof rd, kMaxDataRange);
    auto node = reinterpret_cast<uintptr_t>(rd.r_map);
    for (uint32_t n = 0; node != 0 && n < 65536; ++n) {
      struct link_map lm;
      if (!peek(s_, node, &lm, sizeof lm)) break;
      mark(node, node + sizeof lm, kMaxDataRange);
      if (const char* name = readable_string(s_, lm.l_name, 4096)) {
        auto a = reinterpret_cast<uintptr_t>(name);
        mark(a, a + sys::bounded_strlen(name, 4096) + 1, kMaxDataRange);
      }
      node = reinterpret_cast<uintptr_t>(lm.l_next);
    }
  }

  void plan_full() noexcept {
    uint32_t filter = read_coredump_filter();
    for (uint32_t i = 0; i < count_; ++i) {
      const SnapshotMapping& m = s_.mappings[i];
      Kind k = kind_of(s_, m);
      if (k == Kind::kSkip) continue;
      const char* path = s_.path(m.path_offset);
      bool huge = sys::starts_with(path, "/anon_hugepage");
      uint32_t bit;
      if (huge)
        bit = m.shared ? 6 : 5;
      else if (k == Kind::kAnon || k == Kind::kVdso)
        bit = m.shared ? 1 : 0;
      // A written private file mapping (.data, relocated RELRO) holds
      // anonymous pages: the kernel dumps it under the anonymous bit too.
      else if (!m.shared && m.write)
        bit = 0;
      else
        bit = m.shared ? 3 : 2;
      if ((filter >> bit) & 1)
        raise(i, Want::kWhole);
      else if (k == Kind::kFile && (filter >> 4) & 1 && m.file_offset == 0 && is_elf(m.start))
        raise(i, Want::kHeader);
    }
  }

  const PlanInputs& in_;
  const ProcessSnapshot& s_;
  uint32_t count_ = 0;
};

}  // namespace

uint32_t read_coredump_filter() noexcept {
  long fd = proc_open(ProcScope::kProcess, "coredump_filter", O_RDONLY);
  if (fd < 0) return kDefaultCoredumpFilter;
  char buf[32];
  long n = sys::read(int(fd), buf, sizeof buf);
  sys::close(int(fd));
  if (n <= 0) return kDefaultCoredumpFilter;
  size_t len = 0;
  while (len < size_t(n) && buf[len] != '\n') ++len;
  uint64_t v = 0;
  if (!sys::parse_hex_u64(buf, len, &v)) return kDefaultCoredumpFilter;
  return uint32_t(v);
}

ElfHeaders elf_headers_for(uint32_t phnum, uint64_t shdr_offset) noexcept {
  ElfHeaders h{};
  Elf64_Ehdr& e = h.ehdr;
  e.e_ident[EI_MAG0] = ELFMAG0;
  e.e_ident[EI_MAG1] = ELFMAG1;
  e.e_ident[EI_MAG2] = ELFMAG2;
  e.e_ident[EI_MAG3] = ELFMAG3;
  e.e_ident[EI_CLASS] = ELFCLASS64;
  e.e_ident[EI_DATA] = ELFDATA2LSB;
  e.e_ident[EI_VERSION] = EV_CURRENT;
  e.e_ident[EI_OSABI] = ELFOSABI_NONE;
  e.e_type = ET_CORE;
  e.e_machine = kMachine;
  e.e_version = EV_CURRENT;
  e.e_phoff = sizeof(Elf64_Ehdr);
  e.e_ehsize = sizeof(Elf64_Ehdr);
  e.e_phentsize = sizeof(Elf64_Phdr);
  // Past 65534 segments the count moves to section header 0 (as the kernel does).
  if (phnum >= PN_XNUM) {
    h.extended = true;
    e.e_phnum = PN_XNUM;
    e.e_shoff = shdr_offset;
    e.e_shentsize = sizeof(Elf64_Shdr);
    e.e_shnum = 1;
    e.e_shstrndx = SHN_UNDEF;
    h.shdr.sh_type = SHT_NULL;
    h.shdr.sh_size = 1;
    h.shdr.sh_info = phnum;
  } else {
    e.e_phnum = uint16_t(phnum);
  }
  return h;
}

PlanSummary plan_core_memory(const PlanInputs& in) noexcept { return Planner(in).run(); }

Segment segment_for(const PlanInputs& in, uint32_t i) noexcept {
  Segment seg;
  const ProcessSnapshot& s = *in.snap;
  if (i >= s.mapping_count || i >= in.plan_capacity) return seg;
  const SnapshotMapping& m = s.mappings[i];
  const MappingPlan& p = in.plans[i];
  Kind k = kind_of(s, m);
  if (k == Kind::kSkip) return seg;
  seg.flags = (m.read ? PF_R : 0) | (m.write ? PF_W : 0) | (m.exec ? PF_X : 0);
  seg.start = m.start;
  seg.end = m.end;
  uint64_t size = m.end - m.start;
  switch (p.want) {
    case Want::kWhole: seg.file_size = size; break;
    case Want::kHeader: seg.file_size = in.page_size < size ? in.page_size : size; break;
    case Want::kRange:
      if (k == Kind::kAnon) {
        seg.start = p.lo;
        seg.end = p.hi;
        seg.file_size = p.hi - p.lo;
      }
      break;
    case Want::kNone: break;
  }
  seg.zero_if_absent = k == Kind::kAnon && !m.shared;
  // An anonymous segment without contents would read as zeros: leave it out.
  seg.present = k == Kind::kFile || seg.file_size > 0;
  return seg;
}

}  // namespace panicstop::detail::core
