#include "snapshot/elf_image.hpp"

#include <elf.h>
#include <link.h>

#include "snapshot/memory.hpp"

namespace panicstop::detail {

namespace {

using Ehdr = ElfW(Ehdr);
using Phdr = ElfW(Phdr);

#if defined(__x86_64__)
constexpr uint16_t kMachine = EM_X86_64;
#elif defined(__aarch64__)
constexpr uint16_t kMachine = EM_AARCH64;
#endif

// A program header count beyond this is garbage, not an image.
constexpr uint16_t kMaxPhdrs = 256;

bool read_phdr(const ProcessSnapshot& snap, const ElfImage& image, uint16_t i, Phdr* out) noexcept {
  return read_value(snap, image.phdrs + uintptr_t(i) * sizeof(Phdr), out);
}

}  // namespace

bool read_elf_image(const ProcessSnapshot& snap, uintptr_t base, ElfImage* out) noexcept {
  Ehdr eh;
  if (!read_value(snap, base, &eh)) return false;
  if (eh.e_ident[EI_MAG0] != ELFMAG0 || eh.e_ident[EI_MAG1] != ELFMAG1 || eh.e_ident[EI_MAG2] != ELFMAG2 ||
      eh.e_ident[EI_MAG3] != ELFMAG3 || eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != kMachine)
    return false;
  if (eh.e_phentsize != sizeof(Phdr) || eh.e_phnum == 0 || eh.e_phnum > kMaxPhdrs) return false;
  ElfImage image;
  image.base = base;
  image.phdrs = base + eh.e_phoff;
  image.phnum = eh.e_phnum;
  bool have_load = false;
  uint64_t lowest_offset = 0;
  for (uint16_t i = 0; i < image.phnum; ++i) {
    Phdr ph;
    if (!read_phdr(snap, image, i, &ph)) return false;
    if (ph.p_type != PT_LOAD) continue;
    // The segment with the lowest file offset is the one mapped at base:
    // file offset p_offset lives at base + p_offset = load_bias + p_vaddr.
    if (!have_load || ph.p_offset < lowest_offset) {
      have_load = true;
      lowest_offset = ph.p_offset;
      image.load_bias = base + ph.p_offset - ph.p_vaddr;
    }
  }
  if (!have_load) return false;
  *out = image;
  return true;
}

bool find_segment(const ProcessSnapshot& snap, const ElfImage& image, uint32_t type, uintptr_t* addr,
                  size_t* size) noexcept {
  for (uint16_t i = 0; i < image.phnum; ++i) {
    Phdr ph;
    if (!read_phdr(snap, image, i, &ph)) return false;
    if (ph.p_type != type) continue;
    *addr = image.load_bias + ph.p_vaddr;
    *size = ph.p_memsz;
    return true;
  }
  return false;
}

uint32_t read_build_id(const ProcessSnapshot& snap, const ElfImage& image, uint8_t* out, uint32_t cap) noexcept {
  for (uint16_t i = 0; i < image.phnum; ++i) {
    Phdr ph;
    if (!read_phdr(snap, image, i, &ph)) return 0;
    if (ph.p_type != PT_NOTE) continue;
    uintptr_t align = ph.p_align == 8 ? 8 : 4;
    uintptr_t p = image.load_bias + ph.p_vaddr;
    uintptr_t end = p + ph.p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      ElfW(Nhdr) nh;
      if (!read_value(snap, p, &nh)) break;
      uintptr_t name = p + sizeof nh;
      uintptr_t desc = name + ((nh.n_namesz + align - 1) & ~(align - 1));
      uintptr_t next = desc + ((nh.n_descsz + align - 1) & ~(align - 1));
      if (next > end || next <= p) break;
      char owner[4];
      if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && read_memory(snap, name, owner, 4) &&
          owner[0] == 'G' && owner[1] == 'N' && owner[2] == 'U' && owner[3] == '\0') {
        uint32_t n = nh.n_descsz < cap ? nh.n_descsz : cap;
        if (!read_memory(snap, desc, out, n)) return 0;
        return n;
      }
      p = next;
    }
  }
  return 0;
}

}  // namespace panicstop::detail
