// The pool behind altstack.hpp, shared with the handlers' entry wrapper
// (handler_stack.cpp). The wrapper may run on a foreign stack of a few hundred
// free bytes, so everything it needs before it has switched stacks is inline
// here: plain loads, atomics and raw system calls, no calls.
//
// Layout of the one reservation (reserve_altstacks), lowest address first:
//   pad        kAltStackSize, readable and writable, never touched;
//   emergency  kEmergencyStacks stacks, each a guard page and kUsableSize
//              bytes, readable and writable from install on;
//   pool       g_entries stacks of the same shape, all inaccessible
//              (PROT_NONE) until handed out: claim() makes the usable part of
//              an entry readable and writable, give_back() makes it
//              inaccessible again and drops its pages;
//   owners     g_entries tids (g_owner), page-rounded.
// Only what is handed out is ever committed. The reservation comes from
// sys::mmap_unlisted: anonymous memory (pages dropped by MADV_DONTNEED go back
// to the system) that memory testers walking their anonymous mappings pass by,
// as they must: a handler may be running on one of these stacks meanwhile.
//
// Every piece of the reservation shares one anon_vma (reserve_altstacks faults
// one page in before anything is split), so when an entry goes back to
// PROT_NONE the kernel merges it with its inaccessible neighbours: the
// mapping count follows the threads alive, not the threads that ever were.
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

// The most entries the pool has: one per thread the registry can tell apart.
inline constexpr size_t kMaxEntries = kMaxThreads;
inline constexpr size_t kGuardSize = 4096;
// Stacks for handlers of threads that find the pool exhausted, one thread at a
// time each.
inline constexpr size_t kEmergencyStacks = 4;
// claim()'s answer when no entry is free.
inline constexpr size_t kNoEntry = ~size_t(0);

extern unsigned char* g_pool;       // g_entries stacks of kAltStackSize, each with a guard page at its bottom
extern size_t g_entries;            // written before g_pool is published, never after
extern unsigned char* g_emergency;  // kEmergencyStacks more, guarded the same way
extern std::atomic<int32_t>* g_owner;  // tid of the thread using each pool stack; 0 = free
extern std::atomic<bool> g_emergency_taken[kEmergencyStacks];
extern std::atomic<size_t> g_high_water;  // entries at and above it have never been handed out
extern std::atomic<size_t> g_reclaim_cursor;  // where the next search for a dead owner's entry starts
// Entries a claim checks for a dead owner (one tgkill each) once none is free:
// checking all of them would cost every thread beyond the pool a system call
// per entry on each signal, which with thousands of such threads made a stop
// of all threads take minutes. A dead owner's entry is found within
// g_entries / kReclaimProbes claims.
inline constexpr size_t kReclaimProbes = 8;
// The calling thread's pool entry, -1 if none. A thread made by a raw clone
// shares its creator's TLS, so only g_owner says whether the entry is its own.
extern __thread int32_t tls_index __attribute__((tls_model("initial-exec")));
// The calling thread's second pool entry (other_altstack()), -1 if none.
extern __thread int32_t tls_spare_index __attribute__((tls_model("initial-exec")));

inline unsigned char* usable_bottom(unsigned char* stack) noexcept { return stack + kGuardSize; }
inline constexpr size_t kUsableSize = kAltStackSize - kGuardSize;

// An entry whose owner no longer exists can be reused. A reused tid makes a
// dead entry look alive: that only costs one stack.
__attribute__((always_inline)) inline bool take(size_t i, int tid) noexcept {
  int32_t owner = g_owner[i].load(std::memory_order_relaxed);
  if (owner != 0 && sys::tgkill(sys::getpid(), owner, 0) != -ESRCH) return false;
  return g_owner[i].compare_exchange_strong(owner, tid, std::memory_order_acq_rel);
}

// Makes a taken entry's stack usable; its guard page stays inaccessible. One
// system call, and nothing if the entry was a dead owner's (already usable).
// False when the kernel refuses (no memory for the split): the entry is then
// given back.
__attribute__((always_inline)) inline bool open_entry(size_t i) noexcept {
  return sys::mprotect(usable_bottom(g_pool + i * kAltStackSize), kUsableSize, PROT_READ | PROT_WRITE) == 0;
}

// Gives tid a pool entry, usable: one handed out before and freed since, else
// a fresh one, else one whose owner is gone. Returns kNoEntry when every entry
// is in use.
__attribute__((always_inline)) inline size_t claim(int tid) noexcept {
  size_t entries = g_entries;
  size_t found = kNoEntry;
  size_t high = g_high_water.load(std::memory_order_acquire);
  for (size_t i = 0; i < high && i < entries && found == kNoEntry; ++i) {
    int32_t free_entry = 0;
    if (g_owner[i].load(std::memory_order_relaxed) == 0 &&
        g_owner[i].compare_exchange_strong(free_entry, tid, std::memory_order_acq_rel))
      found = i;
  }
  while (found == kNoEntry && high < entries) {
    if (g_high_water.compare_exchange_weak(high, high + 1, std::memory_order_acq_rel)) {
      if (take(high, tid)) found = high;
      break;
    }
  }
  if (found == kNoEntry && entries > 0) {
    size_t from = g_reclaim_cursor.fetch_add(kReclaimProbes, std::memory_order_relaxed);
    for (size_t k = 0; found == kNoEntry && k < kReclaimProbes && k < entries; ++k)
      if (take((from + k) % entries, tid)) found = (from + k) % entries;
  }
  if (found == kNoEntry) return kNoEntry;
  if (!open_entry(found)) {
    g_owner[found].store(0, std::memory_order_release);
    return kNoEntry;
  }
  return found;
}

// Returns entry i to the pool: its pages go back to the system and it is
// inaccessible again (and merges with its free neighbours) before anyone can
// claim it. The caller owns the entry and no longer runs on it.
__attribute__((always_inline)) inline void give_back(size_t i) noexcept {
  unsigned char* usable = usable_bottom(g_pool + i * kAltStackSize);
  sys::raw_syscall(SYS_madvise, usable, kUsableSize, MADV_DONTNEED);
  sys::mprotect(usable, kUsableSize, PROT_NONE);
  g_owner[i].store(0, std::memory_order_release);
}

}  // namespace panicstop::detail::altstack_pool
