// Reading the frozen process's memory through the snapshot, without faulting.
//
// Every read the snapshot, the unwinder and the writers make of memory they do
// not own (ELF headers, .eh_frame, stacks, lock objects, names) is checked
// against the snapshot's mappings first: only readable mappings count, and the
// kernel's [vvar] pages (readable in maps, but parts of them raise SIGBUS) never
// do. A garbage pointer therefore gives "unreadable", never a fault.
#pragma once

#include <cstddef>
#include <cstdint>

#include "snapshot/snapshot.hpp"

namespace panicstop::detail {

// The mapping containing addr, or nullptr. Binary search; mappings are sorted.
const SnapshotMapping* find_mapping(const ProcessSnapshot& snap, uintptr_t addr) noexcept;

// Are all bytes [addr, addr + len) inside safely readable mappings (which may
// be several adjacent ones)?
bool memory_readable(const ProcessSnapshot& snap, uintptr_t addr, size_t len) noexcept;

// Copies len bytes from addr into out if memory_readable; false otherwise.
bool read_memory(const ProcessSnapshot& snap, uintptr_t addr, void* out, size_t len) noexcept;

template <typename T>
inline bool read_value(const ProcessSnapshot& snap, uintptr_t addr, T* out) noexcept {
  return read_memory(snap, addr, out, sizeof(T));
}

// A NUL-terminated string at addr, if readable with its terminator within max
// bytes; else nullptr.
const char* readable_string(const ProcessSnapshot& snap, const char* s, size_t max) noexcept;

}  // namespace panicstop::detail
