// WITNESS's lock-order graph over lock classes (FreeBSD's w_rmatrix): direct
// edges "A was held while B was taken" plus their transitive closure as
// bitsets, so "is A -> B already known" is one bit test without a lock. The
// first sighting of each edge keeps both sites and a stack for reports. All
// storage is static; updates hold an InternalSpinLock.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lockclass/lock_class.hpp"
#include "lockclass/site.hpp"

namespace panicstop::detail {

inline constexpr int kWitnessStackDepth = 16;

struct Stack {
  int depth = 0;
  int tid = 0;
  uintptr_t pc[kWitnessStackDepth] = {};
};

// The first sighting of an edge from -> to.
struct EdgeRecord {
  uint16_t from = 0;
  uint16_t to = 0;
  Site from_site;
  Site to_site;
  Stack stack;
};

// reach[a] bit b: a -> ... -> b is known (the transitive closure). Written
// under the graph lock, read without it: a stale read only sends the reader to
// the locked slow path.
inline constexpr uint32_t kOrderWords = kMaxLockClasses / 64;
extern uint64_t g_order_reach[kMaxLockClasses][kOrderWords];

// Is `from -> ... -> to` already in the graph? Lock-free; untracked classes
// count as known (they are never checked).
inline bool order_known(uint16_t from, uint16_t to) noexcept {
  if (from >= kMaxLockClasses || to >= kMaxLockClasses) return true;
  return (__atomic_load_n(&g_order_reach[from][to / 64], __ATOMIC_RELAXED) >> (to % 64)) & 1;
}

enum class AddResult { kAdded, kKnown, kReversal, kBusy };

// Adds from -> to unless the opposite order is known (kReversal: nothing is
// added) or the graph lock is held by this thread (kBusy). `stack` is kept with
// the edge the first time it is seen.
AddResult order_add(uint16_t from, uint16_t to, const Site& from_site, const Site& to_site,
                    const Stack& stack) noexcept;

// The shortest known path from -> ... -> to as class indices (path[0] == from),
// at most max entries. Returns its length (0 if none or the graph is busy).
size_t order_path(uint16_t from, uint16_t to, uint16_t* path, size_t max) noexcept;

// The record of the direct edge from -> to, or nullptr.
const EdgeRecord* order_edge(uint16_t from, uint16_t to) noexcept;

// True the first time it is called with a given key (kind, a, b), false after:
// reports are printed once per key. Lock-free; once its table is full every key
// counts as seen.
bool first_report(uint8_t kind, uint16_t a, uint16_t b) noexcept;

}  // namespace panicstop::detail
