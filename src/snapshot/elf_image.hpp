// ELF images as they are mapped in the frozen process: the header and program
// headers read from memory (never through dl_iterate_phdr or dladdr, which take
// the loader's lock), every read checked against the snapshot's mappings.
#pragma once

#include <cstddef>
#include <cstdint>

#include "snapshot/snapshot.hpp"

namespace panicstop::detail {

struct ElfImage {
  uintptr_t base = 0;       // where the ELF header is mapped
  uintptr_t load_bias = 0;  // runtime address minus link-time address
  uintptr_t phdrs = 0;      // runtime address of the program headers
  uint16_t phnum = 0;
};

// Reads the image whose ELF header is mapped at base (the start of its mapping
// at file offset 0). False if that memory is unreadable or not an ELF header of
// this machine's class.
bool read_elf_image(const ProcessSnapshot& snap, uintptr_t base, ElfImage* out) noexcept;

// The runtime address and memory size of the first program header of the given
// type (PT_GNU_EH_FRAME, PT_DYNAMIC, ...). False if there is none.
bool find_segment(const ProcessSnapshot& snap, const ElfImage& image, uint32_t type, uintptr_t* addr,
                  size_t* size) noexcept;

// Copies the NT_GNU_BUILD_ID from the image's PT_NOTE segments into out (at
// most cap bytes) and returns its length, 0 if there is none.
uint32_t read_build_id(const ProcessSnapshot& snap, const ElfImage& image, uint8_t* out, uint32_t cap) noexcept;

}  // namespace panicstop::detail
