// Which memory goes into the ELF core, one PT_LOAD per mapping (docs/DESIGN.md, section 6).
//
// mini: every thread's stack from page_floor(SP - 128) to the top of its
// mapping (for a thread that did not stop, the SP /proc gave), the vdso, the
// first page of every mapped ELF file, the executable's and ld.so's writable
// data, RELRO and dynamic section (so the debugger finds r_debug), and the
// r_debug / link_map nodes and their names (so it finds the shared
// libraries). Other file mappings get a segment with p_filesz 0: NT_FILE
// names their file, and tools read the bytes from there. Anonymous memory that
// is not needed gets no segment at all (an empty anonymous segment would read
// as zeros and mislead the debugger).
// full: the mini set plus every readable mapping that /proc/self/coredump_filter
// selects (anonymous private and shared, file private and shared, ELF headers,
// huge pages), like the kernel's own core.
//
// Only readable mappings are ever read, never [vvar] or [vsyscall] or device
// mappings; memory is inspected only through fault-safe reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <elf.h>

#include "snapshot/snapshot.hpp"

namespace panicstop::detail::core {

enum class Want : uint8_t { kNone = 0, kHeader, kRange, kWhole };

struct MappingPlan {
  uintptr_t lo, hi;  // kRange: the page-aligned part to dump
  Want want;
};

struct PlanInputs {
  const ProcessSnapshot* snap = nullptr;
  bool full = false;
  uint64_t page_size = 4096;
  int current_tid = 0;
  uint64_t current_fs_base = 0;
  MappingPlan* plans = nullptr;  // one per mapping
  uint32_t plan_capacity = 0;
};

struct PlanSummary {
  uint32_t segment_count = 0;
  // The executable's file, found through AT_PHDR (0 if unknown).
  uint32_t exe_dev_major = 0, exe_dev_minor = 0;
  uint64_t exe_inode = 0;
};

struct Segment {
  bool present = false;
  uintptr_t start = 0, end = 0;  // p_vaddr, p_vaddr + p_memsz
  uint64_t file_size = 0;        // bytes dumped from start
  uint32_t flags = 0;            // PF_R | PF_W | PF_X
  // Private anonymous memory: pages never touched (neither present nor
  // swapped in /proc/self/pagemap) are zero and may be written as holes.
  bool zero_if_absent = false;
};

// A thread's TLS base (x86_64 fs_base: its struct pthread, where libthread_db
// starts), as the thread saved it for itself when it stopped.
inline uint64_t saved_tls_base(const SavedContext& c) noexcept { return uint64_t(c.tls_base); }

// Fills in.plans and returns the number of PT_LOAD segments.
PlanSummary plan_core_memory(const PlanInputs& in) noexcept;
// The segment of mapping i after plan_core_memory (same answer every call).
Segment segment_for(const PlanInputs& in, uint32_t i) noexcept;

// /proc/self/coredump_filter, or the kernel default 0x33 if unreadable.
uint32_t read_coredump_filter() noexcept;

struct ElfHeaders {
  Elf64_Ehdr ehdr;
  Elf64_Shdr shdr;  // written only when extended
  bool extended;    // phnum >= PN_XNUM: e_phnum = PN_XNUM, real count in shdr.sh_info
};
// The ELF header of a core with phnum program headers; shdr_offset is where
// section header 0 goes if the count needs the extension.
ElfHeaders elf_headers_for(uint32_t phnum, uint64_t shdr_offset) noexcept;

}  // namespace panicstop::detail::core
