#include "snapshot/memory.hpp"

#include "sys/format.hpp"

namespace panicstop::detail {

namespace {

bool safely_readable(const ProcessSnapshot& snap, const SnapshotMapping& m) noexcept {
  return m.read && !sys::starts_with(snap.path(m.path_offset), "[vvar");
}

}  // namespace

const SnapshotMapping* find_mapping(const ProcessSnapshot& snap, uintptr_t addr) noexcept {
  uint32_t lo = 0, hi = snap.mapping_count;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    const SnapshotMapping& m = snap.mappings[mid];
    if (addr < m.start)
      hi = mid;
    else if (addr >= m.end)
      lo = mid + 1;
    else
      return &m;
  }
  return nullptr;
}

const SnapshotMapping* stack_mapping(const ProcessSnapshot& snap, uintptr_t sp) noexcept {
  const SnapshotMapping* m = find_mapping(snap, sp);
  if (m != nullptr && safely_readable(snap, *m)) return m;
  const SnapshotMapping* above = nullptr;
  if (m != nullptr) {
    // A guard: the stack is the mapping it guards.
    above = m + 1 < snap.mappings + snap.mapping_count && m[1].start == m->end ? m + 1 : nullptr;
  } else {
    // In no mapping: the first one above sp (mappings are sorted).
    uint32_t lo = 0, hi = snap.mapping_count;
    while (lo < hi) {
      uint32_t mid = lo + (hi - lo) / 2;
      if (snap.mappings[mid].start <= sp)
        lo = mid + 1;
      else
        hi = mid;
    }
    above = lo < snap.mapping_count ? &snap.mappings[lo] : nullptr;
  }
  if (above == nullptr || above->start - sp > kStackOverflowReach || !safely_readable(snap, *above)) return nullptr;
  return above;
}

bool memory_readable(const ProcessSnapshot& snap, uintptr_t addr, size_t len) noexcept {
  if (len == 0) return true;
  if (addr + len < addr) return false;
  uintptr_t end = addr + len;
  const SnapshotMapping* m = find_mapping(snap, addr);
  while (m != nullptr) {
    if (!safely_readable(snap, *m)) return false;
    if (end <= m->end) return true;
    const SnapshotMapping* next = m + 1;
    if (next >= snap.mappings + snap.mapping_count || next->start != m->end) return false;
    m = next;
  }
  return false;
}

bool read_memory(const ProcessSnapshot& snap, uintptr_t addr, void* out, size_t len) noexcept {
  if (!memory_readable(snap, addr, len)) return false;
  const auto* src = reinterpret_cast<const volatile unsigned char*>(addr);
  auto* dst = static_cast<unsigned char*>(out);
  for (size_t i = 0; i < len; ++i) dst[i] = src[i];
  return true;
}

const char* readable_string(const ProcessSnapshot& snap, const char* s, size_t max) noexcept {
  auto addr = reinterpret_cast<uintptr_t>(s);
  if (s == nullptr) return nullptr;
  // Check page by page so a string ending just before an unmapped page passes.
  size_t checked = 0;
  while (checked < max) {
    uintptr_t here = addr + checked;
    size_t chunk = 4096 - (here & 4095);
    if (chunk > max - checked) chunk = max - checked;
    if (!memory_readable(snap, here, chunk)) return nullptr;
    for (size_t i = 0; i < chunk; ++i)
      if (s[checked + i] == '\0') return s;
    checked += chunk;
  }
  return nullptr;
}

}  // namespace panicstop::detail
