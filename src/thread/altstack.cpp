#include "thread/altstack.hpp"

#include <atomic>
#include <csignal>
#include <cstdint>
#include <sys/mman.h>
#include <ucontext.h>

#include "sys/syscall.hpp"
#include "thread/slot.hpp"

namespace panicstop::detail {

namespace {

inline constexpr size_t kPoolEntries = kMaxThreads;
inline constexpr size_t kGuardSize = 4096;

unsigned char* g_pool = nullptr;
// tid of the thread using each stack; 0 = free.
std::atomic<int32_t>* g_owner = nullptr;
std::atomic<size_t> g_high_water{0};
__thread int32_t tls_altstack_index __attribute__((tls_model("initial-exec"))) = -1;

bool has_altstack() noexcept {
  stack_t cur{};
  if (sys::raw_syscall(SYS_sigaltstack, nullptr, &cur) != 0) return true;  // cannot tell: leave it alone
  return (cur.ss_flags & SS_DISABLE) == 0;
}

// An entry whose owner no longer exists can be reused. A reused tid makes a dead
// entry look alive: that only costs one stack.
bool take(size_t i, int tid) noexcept {
  int32_t owner = g_owner[i].load(std::memory_order_relaxed);
  if (owner != 0 && sys::tgkill(sys::getpid(), owner, 0) != -ESRCH) return false;
  return g_owner[i].compare_exchange_strong(owner, tid, std::memory_order_acq_rel);
}

}  // namespace

bool reserve_altstacks() noexcept {
  if (__atomic_load_n(&g_pool, __ATOMIC_ACQUIRE) != nullptr) return true;
  void* owners = sys::mmap_anonymous(sizeof(std::atomic<int32_t>) * kPoolEntries, false);
  void* pool = sys::mmap_anonymous(kAltStackSize * kPoolEntries, /*noreserve=*/true);
  if (owners == nullptr || pool == nullptr) return false;
  // 2 GiB of address space, almost all of it never touched: keep it out of
  // kernel cores and gcore, which would otherwise write it out as zeros.
  sys::raw_syscall(SYS_madvise, pool, kAltStackSize * kPoolEntries, MADV_DONTDUMP);
  g_owner = static_cast<std::atomic<int32_t>*>(owners);
  // Publish the pool last: a thread that sees it also sees the owner table.
  __atomic_store_n(&g_pool, static_cast<unsigned char*>(pool), __ATOMIC_RELEASE);
  return true;
}

void ensure_altstack(void* interrupted_ucontext) noexcept {
  if (__atomic_load_n(&g_pool, __ATOMIC_ACQUIRE) == nullptr) return;
  int tid = sys::gettid();
  // The index may be another thread's: a raw clone() without CLONE_SETTLS
  // shares its creator's TLS (and the kernel gave it no alternate stack).
  int32_t mine = tls_altstack_index;
  if (mine >= 0 && g_owner[mine].load(std::memory_order_relaxed) == tid) return;
  if (has_altstack()) return;
  size_t index = kPoolEntries;
  size_t i = g_high_water.load(std::memory_order_relaxed);
  while (i < kPoolEntries) {
    if (g_high_water.compare_exchange_weak(i, i + 1, std::memory_order_acq_rel)) {
      if (take(i, tid)) {
        // A guard page under each stack: an overflow of the altstack faults
        // instead of writing into the neighbour's.
        sys::mprotect(g_pool + i * kAltStackSize, kGuardSize, PROT_NONE);
        index = i;
      }
      break;
    }
  }
  for (size_t j = 0; index == kPoolEntries && j < kPoolEntries; ++j)
    if (take(j, tid)) index = j;
  if (index == kPoolEntries) return;
  stack_t st{};
  st.ss_sp = g_pool + index * kAltStackSize + kGuardSize;
  st.ss_size = kAltStackSize - kGuardSize;
  if (sys::raw_syscall(SYS_sigaltstack, &st, nullptr) != 0) {
    g_owner[index].store(0, std::memory_order_release);
    return;
  }
  if (mine < 0) tls_altstack_index = int32_t(index);  // never the creator's
  if (interrupted_ucontext != nullptr) static_cast<ucontext_t*>(interrupted_ucontext)->uc_stack = st;
}

void release_altstack() noexcept {
  int32_t index = tls_altstack_index;
  if (index < 0) return;
  stack_t st{};
  st.ss_flags = SS_DISABLE;
  if (sys::raw_syscall(SYS_sigaltstack, &st, nullptr) != 0) return;  // still on it: keep it
  tls_altstack_index = -1;
  g_owner[index].store(0, std::memory_order_release);
}

void adopt_altstack_after_fork() noexcept {
  int32_t index = tls_altstack_index;
  if (index >= 0 && g_owner != nullptr) g_owner[index].store(sys::gettid(), std::memory_order_release);
}

}  // namespace panicstop::detail
