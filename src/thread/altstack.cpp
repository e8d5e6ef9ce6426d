#include "thread/altstack.hpp"

#include <atomic>
#include <csignal>
#include <fcntl.h>
#include <cstdint>
#include <sys/mman.h>
#include <sys/resource.h>
#include <ucontext.h>

#include "sys/syscall.hpp"
#include "thread/altstack_pool.hpp"
#include "thread/slot.hpp"

namespace panicstop::detail {

namespace altstack_pool {

unsigned char* g_pool = nullptr;
size_t g_entries = 0;
unsigned char* g_emergency = nullptr;
std::atomic<int32_t>* g_owner = nullptr;
std::atomic<bool> g_emergency_taken[kEmergencyStacks];
std::atomic<size_t> g_high_water{0};
std::atomic<size_t> g_reclaim_cursor{0};
__thread int32_t tls_index __attribute__((tls_model("initial-exec"))) = -1;
__thread int32_t tls_spare_index __attribute__((tls_model("initial-exec"))) = -1;

}  // namespace altstack_pool

using namespace altstack_pool;

namespace {

constexpr size_t kPage = 4096;
// Below this many entries the pool is not worth having: install fails instead.
constexpr size_t kMinEntries = 8;
// Under a finite RLIMIT_AS (which counts reserved address space, committed or
// not) the pool takes at most this fraction of the limit. Each thread also
// needs a stack of its own, by default 8 MiB, 64 times an entry: 1/16 of
// the limit still gives four times more entries than threads that fit.
constexpr uint64_t kAddressSpaceShare = 16;
// Each stack handed out costs the process two mappings (its guard page and
// its usable part), and each thread's own stack two more: with one pool
// stack per thread, a process would run out of mappings (vm.max_map_count,
// 65530 by default) at about a quarter of that many threads, half as many as
// it could make without panicstop, and pthread_create would fail. The pool
// holds at most an eighth of max_map_count entries, so its stacks take at
// most a quarter of the mappings; threads beyond it run without one
// (threads_without_altstack()).
constexpr uint64_t kMapCountShare = 8;
constexpr uint64_t kDefaultMaxMapCount = 65530;  // the kernel's default, when /proc cannot say
// Live threads that asked for a pool stack and found none.
std::atomic<size_t> g_refused{0};
__thread bool tls_refused __attribute__((tls_model("initial-exec"))) = false;

bool has_altstack() noexcept {
  stack_t cur{};
  if (sys::raw_syscall(SYS_sigaltstack, nullptr, &cur) != 0) return true;  // cannot tell: leave it alone
  return (cur.ss_flags & SS_DISABLE) == 0;
}

size_t owners_bytes(size_t entries) noexcept {
  return (sizeof(std::atomic<int32_t>) * entries + kPage - 1) / kPage * kPage;
}

size_t reservation_bytes(size_t entries) noexcept {
  return kAltStackSize * (1 + kEmergencyStacks + entries) + owners_bytes(entries);
}

size_t address_space_entries() noexcept;

uint64_t max_map_count() noexcept {
  // By path: the thread layer sits below the stop layer's procfs descriptor.
  const uint64_t v =
      sys::read_decimal_and_close(sys::openat(AT_FDCWD, "/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC));
  return v > 0 ? v : kDefaultMaxMapCount;
}

// How many entries to try first: all of them, unless RLIMIT_AS or the
// mapping count limit calls for fewer.
size_t wanted_entries() noexcept {
  size_t by_maps = size_t(max_map_count() / kMapCountShare);
  if (by_maps < kMinEntries) by_maps = kMinEntries;
  size_t by_space = address_space_entries();
  return by_maps < by_space ? by_maps : by_space;
}

// How many entries fit the address space limit: all of them, unless RLIMIT_AS is finite.
size_t address_space_entries() noexcept {
  struct {
    uint64_t cur, max;
  } limit{};
  if (sys::raw_syscall(SYS_prlimit64, 0, RLIMIT_AS, nullptr, &limit) != 0 || limit.cur == ~uint64_t(0))
    return kMaxEntries;
  uint64_t share = limit.cur / kAddressSpaceShare;
  size_t fits = share > reservation_bytes(0) ? size_t((share - reservation_bytes(0)) / (kAltStackSize + 4)) : 0;
  if (fits < kMinEntries) return kMinEntries;
  return fits < kMaxEntries ? fits : kMaxEntries;
}

// Gives the whole reservation its anon_vma while it is still one mapping, so
// that every piece split off it later shares it and merges back (see
// altstack_pool.hpp). The page is touched once and dropped.
void share_one_anon_vma(unsigned char* base) noexcept {
  if (sys::mprotect(base, kPage, PROT_READ | PROT_WRITE) != 0) return;
  *reinterpret_cast<volatile unsigned char*>(base) = 0;
  sys::mprotect(base, kPage, PROT_NONE);
  sys::raw_syscall(SYS_madvise, base, kPage, MADV_DONTNEED);
}

}  // namespace

bool reserve_altstacks() noexcept {
  if (__atomic_load_n(&g_pool, __ATOMIC_ACQUIRE) != nullptr) return true;
  // A smaller pool rather than none: under a tight RLIMIT_AS or a crowded
  // address space, halve until the reservation fits.
  size_t entries = wanted_entries();
  unsigned char* base = nullptr;
  for (; entries >= kMinEntries; entries /= 2)
    if ((base = static_cast<unsigned char*>(sys::mmap_unlisted(reservation_bytes(entries), PROT_NONE))) != nullptr)
      break;
  if (base == nullptr) return false;
  size_t bytes = reservation_bytes(entries);
  share_one_anon_vma(base);
  // Kept out of kernel cores and gcore: live stacks are a few pages at most,
  // and the rest is never touched.
  sys::raw_syscall(SYS_madvise, base, bytes, MADV_DONTDUMP);
  // One stack's worth of readable, untouched pages below the first guard
  // page: the guard must not border whatever the kernel placed beneath the
  // reservation, where a program scanning its own memory (redis's crash-time
  // memory test reads a little past the end of a region) would fault on it.
  unsigned char* emergency = base + kAltStackSize;
  unsigned char* pool = emergency + kEmergencyStacks * kAltStackSize;
  unsigned char* owners = pool + entries * kAltStackSize;
  bool ok = sys::mprotect(base, kAltStackSize, PROT_READ | PROT_WRITE) == 0 &&
            sys::mprotect(owners, owners_bytes(entries), PROT_READ | PROT_WRITE) == 0;
  for (size_t i = 0; ok && i < kEmergencyStacks; ++i)
    ok = sys::mprotect(usable_bottom(emergency + i * kAltStackSize), kUsableSize, PROT_READ | PROT_WRITE) == 0;
  if (!ok) {
    sys::munmap(base, bytes);
    return false;
  }
  g_owner = reinterpret_cast<std::atomic<int32_t>*>(owners);
  g_entries = entries;
  __atomic_store_n(&g_emergency, emergency, __ATOMIC_RELEASE);
  // Publish the pool last: a thread that sees it also sees the rest.
  __atomic_store_n(&g_pool, pool, __ATOMIC_RELEASE);
  return true;
}

namespace {

// Entry i as a registration: its usable part.
stack_t entry_stack(size_t i) noexcept {
  stack_t st{};
  st.ss_sp = usable_bottom(g_pool + i * kAltStackSize);
  st.ss_size = kUsableSize;
  return st;
}

// Whether pool entry index is the calling thread's (tid) own: TLS shared with
// a raw clone() names its creator's.
bool owned(int32_t index, int tid) noexcept {
  return index >= 0 && g_owner[index].load(std::memory_order_relaxed) == tid;
}

}  // namespace

void ensure_altstack(void* interrupted_ucontext) noexcept {
  if (__atomic_load_n(&g_pool, __ATOMIC_ACQUIRE) == nullptr) return;
  int tid = sys::gettid();
  // The index may be another thread's: a raw clone() without CLONE_SETTLS
  // shares its creator's TLS (and the kernel gave it no alternate stack).
  int32_t mine = tls_index;
  if (owned(mine, tid)) return;
  if (has_altstack()) return;
  size_t index = claim(tid);
  if (index == kNoEntry) {
    if (!tls_refused) {
      tls_refused = true;
      g_refused.fetch_add(1, std::memory_order_relaxed);
    }
    return;
  }
  stack_t st = entry_stack(index);
  if (sys::raw_syscall(SYS_sigaltstack, &st, nullptr) != 0) {
    give_back(index);
    return;
  }
  if (mine < 0) tls_index = int32_t(index);  // never the creator's
  if (tls_refused) {
    tls_refused = false;
    g_refused.fetch_sub(1, std::memory_order_relaxed);
  }
  if (interrupted_ucontext != nullptr) static_cast<ucontext_t*>(interrupted_ucontext)->uc_stack = st;
}

bool other_altstack(const stack_t& current, stack_t* other) noexcept {
  if (__atomic_load_n(&g_pool, __ATOMIC_ACQUIRE) == nullptr) return false;
  int tid = sys::gettid();
  int32_t own = tls_index, spare = tls_spare_index;
  if (!owned(own, tid)) return false;
  if (current.ss_sp == entry_stack(size_t(own)).ss_sp) {
    if (!owned(spare, tid)) {
      size_t claimed = claim(tid);
      if (claimed == kNoEntry) return false;
      spare = tls_spare_index = int32_t(claimed);
    }
    *other = entry_stack(size_t(spare));
    return true;
  }
  if (owned(spare, tid) && current.ss_sp == entry_stack(size_t(spare)).ss_sp) {
    *other = entry_stack(size_t(own));
    return true;
  }
  return false;
}

void release_altstack() noexcept {
  if (tls_refused) {
    tls_refused = false;
    g_refused.fetch_sub(1, std::memory_order_relaxed);
  }
  int32_t index = tls_index;
  if (index < 0 || g_owner == nullptr) return;
  // TLS shared with a raw clone() may name the other thread's entry.
  if (!owned(index, sys::gettid())) return;
  // Every signal blocked until the stack is given back: a handler entered
  // in between (a stop of all threads) finds the thread without a
  // sigaltstack, registers the pool stack it runs on and keeps it
  // (handler_stack.hpp), which would leave a given-back, inaccessible stack
  // registered: the kernel could not deliver the next signal and would kill
  // the process.
  uint64_t all = ~uint64_t(0), old = 0;
  sys::rt_sigprocmask(SIG_SETMASK, &all, &old);
  stack_t st{};
  st.ss_flags = SS_DISABLE;
  if (sys::raw_syscall(SYS_sigaltstack, &st, nullptr) == 0) {  // else still on it: keep it
    tls_index = -1;
    give_back(size_t(index));
    int32_t spare = tls_spare_index;
    tls_spare_index = -1;
    if (owned(spare, sys::gettid())) give_back(size_t(spare));
  }
  sys::rt_sigprocmask(SIG_SETMASK, &old, nullptr);
}

size_t threads_without_altstack() noexcept { return g_refused.load(std::memory_order_relaxed); }

size_t altstack_pool_entries() noexcept { return __atomic_load_n(&g_pool, __ATOMIC_ACQUIRE) != nullptr ? g_entries : 0; }

void adopt_altstack_after_fork() noexcept {
  g_refused.store(tls_refused ? 1 : 0, std::memory_order_relaxed);
  if (g_owner == nullptr) return;
  for (int32_t index : {tls_index, tls_spare_index})
    if (index >= 0) g_owner[index].store(sys::gettid(), std::memory_order_release);
}

}  // namespace panicstop::detail
