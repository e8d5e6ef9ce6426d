// The ELF core writer: chooses what memory goes into the core (core_plan),
// lays the file out, and streams headers, notes and memory through one
// reserved buffer. See dump/elf_core.hpp and docs/DESIGN.md, section 6.
#include "dump/elf_core.hpp"

#if defined(__x86_64__)
#include <asm/prctl.h>
#endif
#include <atomic>
#include <elf.h>
#include <fcntl.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "dump/core_plan.hpp"
#include "dump/core_sink.hpp"
#include "dump/elf_notes.hpp"
#include "dump/reserve.hpp"
#include "snapshot/memory.hpp"
#include "stop/proc_dir.hpp"
#include "sys/syscall.hpp"

namespace panicstop::detail {

namespace {

constexpr size_t kIoBufferBytes = 256 * 1024;
constexpr size_t kScratchBytes = 8192;
constexpr size_t kPagemapBytes = 4096;

struct Reserved {
  unsigned char* io;
  unsigned char* scratch;
  uint64_t* pagemap;         // [kPagemapBytes / 8]
  core::MappingPlan* plans;  // [snapshot_mapping_capacity()], address space only until used
};

std::atomic<unsigned char*> g_memory{nullptr};
std::atomic<unsigned char*> g_plan_memory{nullptr};
std::atomic<bool> g_ready{false};
Reserved g_reserved;

constexpr size_t reserved_bytes() noexcept {
  return kIoBufferBytes + kScratchBytes + kPagemapBytes;
}

uint64_t auxv_value(const ProcessSnapshot& snap, uint64_t type) noexcept {
  for (uint32_t i = 0; i + 1 < snap.auxv_words; i += 2) {
    if (snap.auxv[i] == AT_NULL) break;
    if (snap.auxv[i] == type) return snap.auxv[i + 1];
  }
  return 0;
}

uint32_t pkru_offset() noexcept {
#if defined(__x86_64__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(0xd, 9, &eax, &ebx, &ecx, &edx) && eax == 8) return ebx;
#endif
  return 0;
}

uint64_t current_fs_base() noexcept {
#if defined(__x86_64__)
  unsigned long base = 0;
  if (sys::raw_syscall(SYS_arch_prctl, ARCH_GET_FS, &base) == 0) return base;
#endif
  return 0;
}


// Writes a segment's bytes. For private anonymous memory, runs of pages that
// /proc/self/pagemap shows neither present nor swapped were never touched: they
// read as zeros and become holes, so a full core of a process with large
// reserved-but-unused regions (this library's own slots among them) stays
// small on disk.
void write_segment(core::CoreSink& out, const core::Segment& seg, int pagemap_fd, uint64_t page) noexcept {
  constexpr uint64_t kPresent = uint64_t(1) << 63, kSwapped = uint64_t(1) << 62;
  if (!seg.zero_if_absent || pagemap_fd < 0) {
    out.memory(seg.start, size_t(seg.file_size));
    return;
  }
  uintptr_t addr = seg.start;
  const uintptr_t end = seg.start + seg.file_size;
  const size_t per_read = kPagemapBytes / sizeof(uint64_t);
  while (addr < end) {
    size_t pages = size_t((end - addr) / page);
    if (pages > per_read) pages = per_read;
    long got = sys::pread(pagemap_fd, g_reserved.pagemap, pages * 8, long(addr / page * 8));
    if (got < 8) {  // pagemap unusable here: plain copy of the rest
      out.memory(addr, size_t(end - addr));
      return;
    }
    pages = size_t(got) / 8;
    size_t i = 0;
    while (i < pages) {
      bool touched = (g_reserved.pagemap[i] & (kPresent | kSwapped)) != 0;
      size_t j = i + 1;
      while (j < pages && ((g_reserved.pagemap[j] & (kPresent | kSwapped)) != 0) == touched) ++j;
      size_t bytes = (j - i) * page;
      if (touched)
        out.memory(addr, bytes);
      else
        out.hole(bytes);
      addr += bytes;
      i = j;
    }
  }
}

}  // namespace

bool reserve_elf_core() noexcept {
  if (g_ready.load(std::memory_order_acquire)) return true;
  unsigned char* mem = reserve_once(g_memory, reserved_bytes());
  if (mem == nullptr) return false;
  // One plan per entry of the snapshot's mapping table, which is sized for
  // vm.max_map_count: reserved, committed only as far as a dump fills it.
  unsigned char* plans = reserve_once(g_plan_memory, sizeof(core::MappingPlan) * snapshot_mapping_capacity(),
                                      /*noreserve=*/true);
  if (plans == nullptr) return false;
  g_reserved.io = mem;
  g_reserved.scratch = mem + kIoBufferBytes;
  g_reserved.pagemap = reinterpret_cast<uint64_t*>(mem + kIoBufferBytes + kScratchBytes);
  g_reserved.plans = reinterpret_cast<core::MappingPlan*>(plans);
  g_ready.store(true, std::memory_order_release);
  return true;
}

bool write_elf_core(const CrashRecord& rec, const DumpOptions& o, int fd) noexcept {
  const ProcessSnapshot& snap = rec.snap();
  if (!reserve_elf_core() || !g_ready.load(std::memory_order_acquire)) return false;
  uint64_t page = auxv_value(snap, AT_PAGESZ);
  if (page == 0 || (page & (page - 1)) != 0) page = 4096;

  core::PlanInputs pin;
  pin.snap = &snap;
  pin.full = o.core == CoreKind::kFull;
  pin.page_size = page;
  pin.current_tid = sys::gettid();
  pin.current_fs_base = current_fs_base();
  pin.plans = g_reserved.plans;
  pin.plan_capacity = snapshot_mapping_capacity();
  core::PlanSummary summary = core::plan_core_memory(pin);

  core::NoteInputs nin;
  nin.rec = &rec;
  nin.snap = &snap;
  nin.page_size = page;
  nin.exe_dev_major = summary.exe_dev_major;
  nin.exe_dev_minor = summary.exe_dev_minor;
  nin.exe_inode = summary.exe_inode;
  nin.current_tid = pin.current_tid;
  nin.current_fs_base = pin.current_fs_base;
  nin.pkru_offset = pkru_offset();
  nin.scratch = g_reserved.scratch;
  nin.scratch_size = kScratchBytes;

  core::CoreSink counter(-1, nullptr, 0);
  core::emit_notes(nin, counter);
  const uint64_t notes_size = counter.offset();

  const uint32_t phnum = 1 + summary.segment_count;
  const uint64_t phdrs_end = sizeof(Elf64_Ehdr) + uint64_t(phnum) * sizeof(Elf64_Phdr);
  core::ElfHeaders headers = core::elf_headers_for(phnum, phdrs_end);
  const uint64_t notes_offset = phdrs_end + (headers.extended ? sizeof(Elf64_Shdr) : 0);
  const uint64_t data_offset = (notes_offset + notes_size + page - 1) & ~(page - 1);

  core::CoreSink out(fd, g_reserved.io, kIoBufferBytes);
  out.put(&headers.ehdr, sizeof headers.ehdr);

  Elf64_Phdr note{};
  note.p_type = PT_NOTE;
  note.p_offset = notes_offset;
  note.p_filesz = notes_size;
  note.p_align = 4;  // 8 garbles the notes for elfutils and drgn
  out.put(&note, sizeof note);

  uint64_t offset = data_offset;
  for (uint32_t i = 0; i < snap.mapping_count && i < pin.plan_capacity; ++i) {
    core::Segment seg = core::segment_for(pin, i);
    if (!seg.present) continue;
    Elf64_Phdr ph{};
    ph.p_type = PT_LOAD;
    ph.p_flags = seg.flags;
    ph.p_offset = offset;
    ph.p_vaddr = seg.start;
    ph.p_memsz = seg.end - seg.start;
    ph.p_filesz = seg.file_size;
    ph.p_align = page;
    out.put(&ph, sizeof ph);
    offset += seg.file_size;
  }
  if (headers.extended) out.put(&headers.shdr, sizeof headers.shdr);

  core::emit_notes(nin, out);
  if (out.offset() != notes_offset + notes_size) return false;  // a bug: never write a lying core
  out.zeros(size_t(data_offset - out.offset()));

  long pagemap = proc_open(ProcScope::kProcess, "pagemap", O_RDONLY);
  for (uint32_t i = 0; i < snap.mapping_count && i < pin.plan_capacity; ++i) {
    core::Segment seg = core::segment_for(pin, i);
    if (seg.present && seg.file_size > 0) write_segment(out, seg, int(pagemap), page);
  }
  if (pagemap >= 0) sys::close(int(pagemap));
  return out.finish() && out.offset() == offset;
}

}  // namespace panicstop::detail
