#include "lockclass/hold_hooks.hpp"

#include <atomic>

#include "panicstop/lockprof.hpp"
#include "sys/syscall.hpp"

namespace panicstop::detail {

// lockprof_active()'s switch (include/panicstop/lockprof.hpp).
bool g_lockprof_on = false;

namespace {
std::atomic<HoldObserver> g_hold_observer{nullptr};
std::atomic<HeldSiteLookup> g_held_site{nullptr};
}  // namespace

void set_hold_observer(HoldObserver fn) noexcept { g_hold_observer.store(fn, std::memory_order_release); }

void report_hold(const LockObject* lo, const Site& site, int64_t hold_ticks) noexcept {
  HoldObserver fn = g_hold_observer.load(std::memory_order_acquire);
  if (fn != nullptr) fn(lo, site, hold_ticks);
}

void set_held_site_lookup(HeldSiteLookup fn) noexcept { g_held_site.store(fn, std::memory_order_release); }

bool held_site(const LockObject* lo, Site* site) noexcept {
  HeldSiteLookup fn = g_held_site.load(std::memory_order_acquire);
  return fn != nullptr && fn(lo, site);
}

int64_t lockprof_ticks() noexcept {
#if defined(__x86_64__)
  return int64_t(__builtin_ia32_rdtsc());
#elif defined(__aarch64__)
  uint64_t v;
  __asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
  return int64_t(v);
#else
  return sys::monotonic_ns();
#endif
}

}  // namespace panicstop::detail
