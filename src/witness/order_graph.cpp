#include "witness/order_graph.hpp"

namespace panicstop::detail {

uint64_t g_order_reach[kMaxLockClasses][kOrderWords];

namespace {

constexpr uint32_t kWords = kOrderWords;
constexpr uint32_t kMaxEdgeRecords = 4096;
constexpr uint32_t kEdgeHashSlots = 8192;  // power of two
constexpr uint32_t kReportedSlots = 4096;  // power of two

InternalSpinLock g_graph_lock;
uint64_t (&g_reach)[kMaxLockClasses][kWords] = g_order_reach;
uint64_t g_child[kMaxLockClasses][kWords];  // direct edges; under g_graph_lock
EdgeRecord g_edges[kMaxEdgeRecords];
uint32_t g_edge_count = 0;
uint16_t g_edge_hash[kEdgeHashSlots];  // record index + 1; 0 = empty
std::atomic<uint64_t> g_reported[kReportedSlots];

inline bool test_bit(const uint64_t* set, uint16_t b) noexcept {
  return (__atomic_load_n(&set[b / 64], __ATOMIC_RELAXED) >> (b % 64)) & 1;
}
inline void or_word(uint64_t* set, uint32_t w, uint64_t bits) noexcept {
  __atomic_fetch_or(&set[w], bits, __ATOMIC_RELAXED);
}

uint32_t edge_hash(uint16_t from, uint16_t to) noexcept {
  uint32_t k = (uint32_t(from) << 16) | to;
  k *= 2654435761u;
  return (k >> 16) & (kEdgeHashSlots - 1);
}

// Under g_graph_lock.
EdgeRecord* find_edge(uint16_t from, uint16_t to) noexcept {
  for (uint32_t i = edge_hash(from, to), n = 0; n < kEdgeHashSlots; i = (i + 1) & (kEdgeHashSlots - 1), ++n) {
    uint16_t r = g_edge_hash[i];
    if (r == 0) return nullptr;
    EdgeRecord* e = &g_edges[r - 1];
    if (e->from == from && e->to == to) return e;
  }
  return nullptr;
}

void remember_edge(uint16_t from, uint16_t to, const Site& fs, const Site& ts, const Stack& stack) noexcept {
  if (g_edge_count >= kMaxEdgeRecords) return;  // the edge still counts; only its sites are lost
  for (uint32_t i = edge_hash(from, to);; i = (i + 1) & (kEdgeHashSlots - 1)) {
    if (g_edge_hash[i] != 0) continue;
    EdgeRecord& e = g_edges[g_edge_count];
    e.from = from;
    e.to = to;
    e.from_site = fs;
    e.to_site = ts;
    e.stack = stack;
    g_edge_hash[i] = uint16_t(++g_edge_count);
    return;
  }
}

}  // namespace

AddResult order_add(uint16_t from, uint16_t to, const Site& from_site, const Site& to_site,
                    const Stack& stack) noexcept {
  if (from >= kMaxLockClasses || to >= kMaxLockClasses) return AddResult::kKnown;
  if (!g_graph_lock.try_acquire()) return AddResult::kBusy;
  AddResult result;
  if (test_bit(g_reach[from], to)) {
    result = AddResult::kKnown;
  } else if (test_bit(g_reach[to], from)) {
    result = AddResult::kReversal;
  } else {
    or_word(g_child[from], to / 64, uint64_t(1) << (to % 64));
    remember_edge(from, to, from_site, to_site, stack);
    // Every class that reaches `from` (and `from` itself) now reaches `to` and
    // everything `to` reaches.
    uint64_t gained[kWords];
    for (uint32_t w = 0; w < kWords; ++w) gained[w] = __atomic_load_n(&g_reach[to][w], __ATOMIC_RELAXED);
    gained[to / 64] |= uint64_t(1) << (to % 64);
    uint16_t n = lock_class_count();
    for (uint16_t x = 1; x < n; ++x) {
      if (x != from && !test_bit(g_reach[x], from)) continue;
      for (uint32_t w = 0; w < kWords; ++w)
        if (gained[w] != 0) or_word(g_reach[x], w, gained[w]);
    }
    result = AddResult::kAdded;
  }
  g_graph_lock.release();
  return result;
}

size_t order_path(uint16_t from, uint16_t to, uint16_t* path, size_t max) noexcept {
  if (from >= kMaxLockClasses || to >= kMaxLockClasses || max == 0) return 0;
  if (!g_graph_lock.try_acquire()) return 0;
  // Breadth-first over direct edges; static scratch is fine under the lock.
  static uint16_t queue[kMaxLockClasses];
  static uint16_t parent[kMaxLockClasses];  // 0 = unvisited (class 0 never exists)
  for (auto& p : parent) p = 0;
  size_t head = 0, tail = 0;
  queue[tail++] = from;
  parent[from] = from;
  bool found = from == to;
  while (head < tail && !found) {
    uint16_t x = queue[head++];
    for (uint32_t w = 0; w < kWords && !found; ++w) {
      uint64_t bits = g_child[x][w];
      while (bits != 0) {
        uint16_t y = uint16_t(w * 64 + __builtin_ctzll(bits));
        bits &= bits - 1;
        if (parent[y] != 0) continue;
        parent[y] = x;
        queue[tail++] = y;
        if (y == to) {
          found = true;
          break;
        }
      }
    }
  }
  size_t len = 0;
  if (found) {
    uint16_t rev[kMaxLockClasses];
    size_t n = 0;
    for (uint16_t y = to;; y = parent[y]) {
      rev[n++] = y;
      if (y == from) break;
    }
    for (size_t i = 0; i < n && len < max; ++i) path[len++] = rev[n - 1 - i];
  }
  g_graph_lock.release();
  return len;
}

const EdgeRecord* order_edge(uint16_t from, uint16_t to) noexcept {
  if (!g_graph_lock.try_acquire()) return nullptr;
  const EdgeRecord* e = find_edge(from, to);
  g_graph_lock.release();
  return e;  // records are never modified once written
}

bool first_report(uint8_t kind, uint16_t a, uint16_t b) noexcept {
  uint64_t key = (uint64_t(kind) << 32) | (uint64_t(a) << 16) | b;
  key |= uint64_t(1) << 40;  // never 0
  uint32_t i = uint32_t((key * 0x9e3779b97f4a7c15ull) >> 52) & (kReportedSlots - 1);
  for (uint32_t n = 0; n < kReportedSlots; ++n, i = (i + 1) & (kReportedSlots - 1)) {
    uint64_t seen = g_reported[i].load(std::memory_order_relaxed);
    if (seen == key) return false;
    if (seen == 0) {
      if (g_reported[i].compare_exchange_strong(seen, key, std::memory_order_relaxed)) return true;
      if (seen == key) return false;
    }
  }
  return false;
}

}  // namespace panicstop::detail
