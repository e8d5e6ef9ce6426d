// The pool behind altstack.hpp, shared with the handlers' entry wrapper
// (handler_stack.cpp). The wrapper may run on a foreign stack of a few hundred
// free bytes, so everything it needs before it has switched stacks is inline
// here: plain loads, atomics and raw system calls, no calls.
#pragma once

#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>

#include "sys/syscall.hpp"
#include "thread/altstack.hpp"
#include "thread/slot.hpp"

namespace panicstop::detail::altstack_pool {

inline constexpr size_t kEntries = kMaxThreads;
inline constexpr size_t kGuardSize = 4096;
// Stacks for handlers of threads that find the pool exhausted, one thread at a
// time each.
inline constexpr size_t kEmergencyStacks = 4;

extern unsigned char* g_pool;       // kEntries stacks of kAltStackSize, each with a guard page at its bottom
extern unsigned char* g_emergency;  // kEmergencyStacks more, guarded the same way
extern std::atomic<int32_t>* g_owner;  // tid of the thread using each pool stack; 0 = free
extern std::atomic<bool> g_emergency_taken[kEmergencyStacks];
extern std::atomic<size_t> g_high_water;  // entries at and above it have never been handed out
// The calling thread's pool entry, -1 if none. A thread made by a raw clone
// shares its creator's TLS, so only g_owner says whether the entry is its own.
extern __thread int32_t tls_index __attribute__((tls_model("initial-exec")));

inline unsigned char* usable_bottom(unsigned char* stack) noexcept { return stack + kGuardSize; }
inline constexpr size_t kUsableSize = kAltStackSize - kGuardSize;

// An entry whose owner no longer exists can be reused. A reused tid makes a
// dead entry look alive: that only costs one stack.
__attribute__((always_inline)) inline bool take(size_t i, int tid) noexcept {
  int32_t owner = g_owner[i].load(std::memory_order_relaxed);
  if (owner != 0 && sys::tgkill(sys::getpid(), owner, 0) != -ESRCH) return false;
  return g_owner[i].compare_exchange_strong(owner, tid, std::memory_order_acq_rel);
}

// Gives tid a pool entry: one handed out before and freed since, else a fresh
// one, else one whose owner is gone. Returns kEntries when every entry is in use.
__attribute__((always_inline)) inline size_t claim(int tid) noexcept {
  size_t high = g_high_water.load(std::memory_order_acquire);
  for (size_t i = 0; i < high && i < kEntries; ++i) {
    int32_t free_entry = 0;
    if (g_owner[i].load(std::memory_order_relaxed) == 0 &&
        g_owner[i].compare_exchange_strong(free_entry, tid, std::memory_order_acq_rel))
      return i;
  }
  while (high < kEntries) {
    if (g_high_water.compare_exchange_weak(high, high + 1, std::memory_order_acq_rel)) {
      // Guarded before it is taken: the first loop of another thread may take
      // it first. An overflow of the stack then faults instead of writing into
      // the neighbour's.
      sys::mprotect(g_pool + high * kAltStackSize, kGuardSize, PROT_NONE);
      if (take(high, tid)) return high;
      break;
    }
  }
  for (size_t j = 0; j < kEntries; ++j)
    if (take(j, tid)) return j;
  return kEntries;
}

}  // namespace panicstop::detail::altstack_pool
