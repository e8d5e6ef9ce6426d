// The writers' reserved memory: one anonymous mapping per writer, made once at
// install (or, failing that, at the first dump), even when two threads race.
#pragma once

#include <atomic>
#include <cstddef>

#include "sys/syscall.hpp"

namespace panicstop::detail {

// The mapping held in slot, made now if there is none yet: the winner of a
// race keeps its mapping, the loser unmaps its own and gets the winner's.
// nullptr only when mmap fails. Raw system calls only. noreserve: address
// space only, committed page by page as the writer fills it (for tables sized
// for the worst case).
inline unsigned char* reserve_once(std::atomic<unsigned char*>& slot, size_t bytes, bool noreserve = false) noexcept {
  unsigned char* mem = slot.load(std::memory_order_acquire);
  if (mem != nullptr) return mem;
  auto* fresh = static_cast<unsigned char*>(sys::mmap_anonymous(bytes, noreserve));
  if (fresh == nullptr) return nullptr;
  unsigned char* expected = nullptr;
  if (slot.compare_exchange_strong(expected, fresh, std::memory_order_acq_rel)) return fresh;
  sys::munmap(fresh, bytes);
  return expected;
}

}  // namespace panicstop::detail
