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

// How far below its stack a stack overflow's stack pointer may be: in the
// gap the kernel keeps below a growing main stack (256 pages), or in a
// thread's guard (glibc's default is a page; runtimes set more).
inline constexpr uintptr_t kStackOverflowReach = uintptr_t(1) << 20;

// The mapping that holds the stack at sp: the safely readable one containing
// sp, or, where a stack overflow left sp in an unreadable guard or in the
// gap below the stack, the readable mapping right above it (adjacent to the
// guard; for a gap, starting within kStackOverflowReach of sp): a frame
// whose push faulted has its callers there. nullptr for any other sp.
const SnapshotMapping* stack_mapping(const ProcessSnapshot& snap, uintptr_t sp) noexcept;

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
