#include "thread/altstack.hpp"

#include <atomic>
#include <csignal>
#include <cstdint>
#include <sys/mman.h>
#include <ucontext.h>

#include "sys/syscall.hpp"
#include "thread/altstack_pool.hpp"
#include "thread/slot.hpp"

namespace panicstop::detail {

namespace altstack_pool {

unsigned char* g_pool = nullptr;
unsigned char* g_emergency = nullptr;
std::atomic<int32_t>* g_owner = nullptr;
std::atomic<bool> g_emergency_taken[kEmergencyStacks];
std::atomic<size_t> g_high_water{0};
__thread int32_t tls_index __attribute__((tls_model("initial-exec"))) = -1;

}  // namespace altstack_pool

using namespace altstack_pool;

namespace {

bool has_altstack() noexcept {
  stack_t cur{};
  if (sys::raw_syscall(SYS_sigaltstack, nullptr, &cur) != 0) return true;  // cannot tell: leave it alone
  return (cur.ss_flags & SS_DISABLE) == 0;
}

}  // namespace

bool reserve_altstacks() noexcept {
  if (__atomic_load_n(&g_pool, __ATOMIC_ACQUIRE) != nullptr) return true;
  void* owners = sys::mmap_anonymous(sizeof(std::atomic<int32_t>) * kEntries, false);
  // One stack's worth of untouched pages below the first guard page: the
  // guard must not border whatever the kernel placed beneath the pool, where
  // a program scanning its own memory (redis's crash-time memory test reads
  // a little past the end of a region) would fault on it.
  auto* reserved = static_cast<unsigned char*>(sys::mmap_named(kAltStackSize * (kEntries + 1), "panicstop-altstacks"));
  void* pool = reserved != nullptr ? reserved + kAltStackSize : nullptr;
  void* emergency = sys::mmap_named(kAltStackSize * kEmergencyStacks, "panicstop-altstacks");
  if (owners == nullptr || pool == nullptr || emergency == nullptr) return false;
  // 2 GiB of address space, almost all of it never touched: keep it out of
  // kernel cores and gcore, which would otherwise write it out as zeros.
  sys::raw_syscall(SYS_madvise, reserved, kAltStackSize * (kEntries + 1), MADV_DONTDUMP);
  sys::raw_syscall(SYS_madvise, emergency, kAltStackSize * kEmergencyStacks, MADV_DONTDUMP);
  for (size_t i = 0; i < kEmergencyStacks; ++i)
    sys::mprotect(static_cast<unsigned char*>(emergency) + i * kAltStackSize, kGuardSize, PROT_NONE);
  g_owner = static_cast<std::atomic<int32_t>*>(owners);
  __atomic_store_n(&g_emergency, static_cast<unsigned char*>(emergency), __ATOMIC_RELEASE);
  // Publish the pool last: a thread that sees it also sees the rest.
  __atomic_store_n(&g_pool, static_cast<unsigned char*>(pool), __ATOMIC_RELEASE);
  return true;
}

void ensure_altstack(void* interrupted_ucontext) noexcept {
  if (__atomic_load_n(&g_pool, __ATOMIC_ACQUIRE) == nullptr) return;
  int tid = sys::gettid();
  // The index may be another thread's: a raw clone() without CLONE_SETTLS
  // shares its creator's TLS (and the kernel gave it no alternate stack).
  int32_t mine = tls_index;
  if (mine >= 0 && g_owner[mine].load(std::memory_order_relaxed) == tid) return;
  if (has_altstack()) return;
  size_t index = claim(tid);
  if (index == kEntries) return;
  stack_t st{};
  st.ss_sp = usable_bottom(g_pool + index * kAltStackSize);
  st.ss_size = kUsableSize;
  if (sys::raw_syscall(SYS_sigaltstack, &st, nullptr) != 0) {
    g_owner[index].store(0, std::memory_order_release);
    return;
  }
  if (mine < 0) tls_index = int32_t(index);  // never the creator's
  if (interrupted_ucontext != nullptr) static_cast<ucontext_t*>(interrupted_ucontext)->uc_stack = st;
}

void release_altstack() noexcept {
  int32_t index = tls_index;
  if (index < 0) return;
  stack_t st{};
  st.ss_flags = SS_DISABLE;
  if (sys::raw_syscall(SYS_sigaltstack, &st, nullptr) != 0) return;  // still on it: keep it
  tls_index = -1;
  g_owner[index].store(0, std::memory_order_release);
}

void adopt_altstack_after_fork() noexcept {
  int32_t index = tls_index;
  if (index >= 0 && g_owner != nullptr) g_owner[index].store(sys::gettid(), std::memory_order_release);
}

}  // namespace panicstop::detail
