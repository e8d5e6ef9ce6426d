// Lock profiling table: (class, site) -> counters, open addressing over a
// static array. Entries are claimed under a small lock and never freed (reset
// zeroes the counters only), so readers and counters need no lock at all.
#include "lockprof/lockprof.hpp"

#include <atomic>

#include "panicstop/lockprof.hpp"
#include "panicstop/panic.hpp"
#include "panicstop/config.hpp"
#include "sys/format.hpp"
#include "sys/heap_sort.hpp"
#include "sys/syscall.hpp"
#include "lockclass/hold_hooks.hpp"
#include "lockclass/lock_class.hpp"
#include "lockclass/site.hpp"

namespace panicstop {

namespace detail {

namespace {

constexpr uint32_t kMaxEntries = 4096;  // power of two

struct Entry {
  std::atomic<uint32_t> ready{0};
  uint16_t class_index = 0;
  uint32_t line = 0;
  const char* file = nullptr;
  uintptr_t return_address = 0;
  std::atomic<uint64_t> acquisitions{0};
  std::atomic<uint64_t> contested{0};
  std::atomic<uint64_t> wait_total{0};  // ticks
  std::atomic<uint64_t> wait_max{0};
  std::atomic<uint64_t> hold_total{0};
  std::atomic<uint64_t> hold_max{0};
};

Entry g_entries[kMaxEntries];
InternalSpinLock g_insert_lock;
std::atomic<uint64_t> g_dropped{0};
// ns = ticks * g_mult >> 32; 1:1 until calibrated.
uint64_t g_mult = uint64_t(1) << 32;

uint32_t hash_site(uint16_t c, const Site& s) noexcept {
  uint64_t h = (uint64_t(c) << 32) ^ (s.file != nullptr ? reinterpret_cast<uintptr_t>(s.file) + s.line : s.return_address);
  h *= 0x9e3779b97f4a7c15ull;
  return uint32_t(h >> 40) & (kMaxEntries - 1);
}

bool same_site(const Entry& e, uint16_t c, const Site& s) noexcept {
  if (e.class_index != c) return false;
  if (s.file != nullptr) return e.file == s.file && e.line == s.line;
  return e.file == nullptr && e.return_address == s.return_address;
}

Entry* entry_for(const LockObject* lo, const Site& site) noexcept {
  uint16_t c = lock_class_of(lo);
  if (c == kUntrackedClass) return nullptr;
  uint32_t start = hash_site(c, site);
  for (int pass = 0; pass < 2; ++pass) {
    for (uint32_t n = 0, i = start; n < kMaxEntries; ++n, i = (i + 1) & (kMaxEntries - 1)) {
      Entry& e = g_entries[i];
      if (e.ready.load(std::memory_order_acquire) == 0) {
        if (pass == 0) break;  // not present: insert under the lock
        e.class_index = c;
        e.file = site.file;
        e.line = site.file != nullptr ? site.line : 0;
        e.return_address = site.file != nullptr ? 0 : site.return_address;
        e.ready.store(1, std::memory_order_release);
        g_insert_lock.release();
        return &e;
      }
      if (same_site(e, c, site)) {
        if (pass == 1) g_insert_lock.release();
        return &e;
      }
    }
    if (pass == 0 && !g_insert_lock.try_acquire()) break;
    if (pass == 1) g_insert_lock.release();
  }
  g_dropped.fetch_add(1, std::memory_order_relaxed);
  return nullptr;
}

void raise_max(std::atomic<uint64_t>& max, uint64_t v) noexcept {
  uint64_t seen = max.load(std::memory_order_relaxed);
  while (v > seen && !max.compare_exchange_weak(seen, v, std::memory_order_relaxed)) {
  }
}

inline bool profiled(const LockObject* lo) noexcept {
  return lockprof_active() && (lo->options & kNoProfile) == 0 && !panicking();
}

}  // namespace

uint64_t lockprof_ticks_to_ns(int64_t ticks) noexcept {
  if (ticks <= 0) return 0;
  return uint64_t((__uint128_t(uint64_t(ticks)) * __atomic_load_n(&g_mult, __ATOMIC_RELAXED)) >> 32);
}

void lockprof_calibrate() noexcept {
  int64_t t0 = sys::monotonic_ns();
  int64_t c0 = lockprof_ticks();
  sys::sleep_ns(5 * 1000 * 1000);
  int64_t t1 = sys::monotonic_ns();
  int64_t c1 = lockprof_ticks();
  if (c1 > c0 && t1 > t0)
    __atomic_store_n(&g_mult, uint64_t((__uint128_t(uint64_t(t1 - t0)) << 32) / uint64_t(c1 - c0)), __ATOMIC_RELAXED);
}

void lockprof_contested(const LockObject* lo, int64_t start_ticks, const void* return_address) noexcept {
  if (!profiled(lo)) return;
  uint64_t wait = uint64_t(lockprof_ticks() - start_ticks);
  Site site;
  // With witness on, the release counts the acquisition (with its hold time)
  // under the same site; otherwise this is the only record of it.
  bool counted_at_release = held_site(lo, &site);
  if (!counted_at_release) {
    site = Site{};
    site.return_address = reinterpret_cast<uintptr_t>(return_address);
  }
  Entry* e = entry_for(lo, site);
  if (e == nullptr) return;
  if (!counted_at_release) e->acquisitions.fetch_add(1, std::memory_order_relaxed);
  e->contested.fetch_add(1, std::memory_order_relaxed);
  e->wait_total.fetch_add(wait, std::memory_order_relaxed);
  raise_max(e->wait_max, wait);
}

void lockprof_hold(const LockObject* lo, const Site& site, int64_t hold_ticks) noexcept {
  if (!profiled(lo)) return;
  Entry* e = entry_for(lo, site);
  if (e == nullptr) return;
  uint64_t hold = hold_ticks > 0 ? uint64_t(hold_ticks) : 0;
  e->acquisitions.fetch_add(1, std::memory_order_relaxed);
  e->hold_total.fetch_add(hold, std::memory_order_relaxed);
  raise_max(e->hold_max, hold);
}

namespace {

// A consistent copy of the table, sorted, for the report functions.
struct Snapshot {
  uint32_t count;
  LockProfileRow rows[kMaxEntries];
};
Snapshot g_snapshot;
InternalSpinLock g_snapshot_lock;

bool before(const LockProfileRow& a, const LockProfileRow& b) noexcept {
  if (a.wait_total_ns != b.wait_total_ns) return a.wait_total_ns > b.wait_total_ns;
  if (a.contested != b.contested) return a.contested > b.contested;
  return a.acquisitions > b.acquisitions;
}

// Call with g_snapshot_lock held.
void take_snapshot() noexcept {
  uint32_t n = 0;
  for (auto& e : g_entries) {
    if (e.ready.load(std::memory_order_acquire) == 0) continue;
    uint64_t acq = e.acquisitions.load(std::memory_order_relaxed);
    uint64_t con = e.contested.load(std::memory_order_relaxed);
    if (acq == 0 && con == 0) continue;
    LockProfileRow& r = g_snapshot.rows[n++];
    r.name = lock_class_name(e.class_index);
    r.file = e.file;
    r.line = e.line;
    r.return_address = e.return_address;
    r.acquisitions = acq;
    r.contested = con;
    r.wait_total_ns = lockprof_ticks_to_ns(int64_t(e.wait_total.load(std::memory_order_relaxed)));
    r.wait_max_ns = lockprof_ticks_to_ns(int64_t(e.wait_max.load(std::memory_order_relaxed)));
    r.hold_total_ns = lockprof_ticks_to_ns(int64_t(e.hold_total.load(std::memory_order_relaxed)));
    r.hold_max_ns = lockprof_ticks_to_ns(int64_t(e.hold_max.load(std::memory_order_relaxed)));
  }
  g_snapshot.count = n;
  sys::heap_sort(g_snapshot.rows, n, before);  // no qsort here: it may allocate
}

}  // namespace

}  // namespace detail

void lockprof_enable(bool on) noexcept {
  // WITNESS reports hold times through the hook; registered before the
  // switch goes on, so no hold is lost to a missing observer.
  if (on) detail::set_hold_observer(detail::lockprof_hold);
  if (on) detail::lockprof_calibrate();
  __atomic_store_n(&detail::g_lockprof_on, on, __ATOMIC_RELAXED);
}

bool lockprof_enabled() noexcept { return detail::lockprof_active(); }

void lockprof_reset() noexcept {
  for (auto& e : detail::g_entries) {
    e.acquisitions.store(0, std::memory_order_relaxed);
    e.contested.store(0, std::memory_order_relaxed);
    e.wait_total.store(0, std::memory_order_relaxed);
    e.wait_max.store(0, std::memory_order_relaxed);
    e.hold_total.store(0, std::memory_order_relaxed);
    e.hold_max.store(0, std::memory_order_relaxed);
  }
  detail::g_dropped.store(0, std::memory_order_relaxed);
}

uint64_t lockprof_dropped() noexcept { return detail::g_dropped.load(std::memory_order_relaxed); }

size_t lockprof_report(LockProfileRow* rows, size_t max_rows) noexcept {
  using namespace detail;
  if (!g_snapshot_lock.try_acquire()) return 0;
  take_snapshot();
  size_t n = g_snapshot.count < max_rows ? g_snapshot.count : max_rows;
  for (size_t i = 0; i < n; ++i) rows[i] = g_snapshot.rows[i];
  g_snapshot_lock.release();
  return n;
}

bool lockprof_write_report(int fd) noexcept {
  using namespace detail;
  if (!g_snapshot_lock.try_acquire()) return false;
  take_snapshot();
  char buf[1024];
  sys::FixedWriter w(buf, sizeof buf);
  w.format("lock profile: %u sites, sorted by total wait (ns)%s\n", g_snapshot.count,
           PANICSTOP_WITNESS_BUILT_IN != 0 ? "" : "; acquisitions and hold times need witness built in");
  w.str("   wait_total     wait_max  contested acquisitions   hold_total     hold_max  lock @ site\n");
  bool ok = sys::write_all(fd, w.data(), w.size());
  for (uint32_t i = 0; ok && i < g_snapshot.count; ++i) {
    const LockProfileRow& r = g_snapshot.rows[i];
    w.clear();
    w.udec(r.wait_total_ns, 13).ch(' ').udec(r.wait_max_ns, 12).ch(' ').udec(r.contested, 10).ch(' ');
    w.udec(r.acquisitions, 12).ch(' ').udec(r.hold_total_ns, 12).ch(' ').udec(r.hold_max_ns, 12).str("  ");
    w.str(r.name).str(" @ ");
    Site s;
    s.file = r.file;
    s.line = r.line;
    s.return_address = r.return_address;
    write_site(w, s);
    w.ch('\n');
    ok = sys::write_all(fd, w.data(), w.size());
  }
  if (ok && lockprof_dropped() > 0) {
    w.clear();
    w.format("(%llu records dropped: table full)\n", static_cast<unsigned long long>(lockprof_dropped()));
    ok = sys::write_all(fd, w.data(), w.size());
  }
  g_snapshot_lock.release();
  return ok;
}

}  // namespace panicstop
