// The alternate-stack pool is reserved, not committed: only the stacks of
// live threads are accessible, each keeps an inaccessible guard page, a stack
// goes back (and its mapping merges away) when its thread exits, install
// works under a tight RLIMIT_AS, and a full core leaves the unused pool out.
#include <elf.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "panicstop/panic.hpp"
#include "panicstop/thread.hpp"
#include "support/child_process.hpp"
#include "thread/altstack.hpp"
#include "thread/altstack_pool.hpp"
#include "thread/slot.hpp"

namespace {

using panicstop::testing::ChildResult;
using panicstop::testing::TempDir;
using panicstop::testing::value_of;
namespace pool = panicstop::detail::altstack_pool;
using panicstop::detail::kAltStackSize;

struct Mapping {
  uintptr_t lo = 0, hi = 0;
  bool readable = false, writable = false;
};

std::vector<Mapping> read_maps() {
  std::vector<Mapping> out;
  std::ifstream in("/proc/self/maps");
  std::string line;
  while (std::getline(in, line)) {
    Mapping m;
    char perms[8] = {};
    if (sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR " %4s", &m.lo, &m.hi, perms) != 3) continue;
    m.readable = perms[0] == 'r';
    m.writable = perms[1] == 'w';
    out.push_back(m);
  }
  return out;
}

// The pool's entries (not the pad, the emergency stacks or the owner array).
uintptr_t pool_lo() { return reinterpret_cast<uintptr_t>(pool::g_pool); }
uintptr_t pool_hi() { return pool_lo() + pool::g_entries * kAltStackSize; }

struct PoolView {
  size_t lines = 0;           // mappings that overlap the pool
  size_t writable_bytes = 0;  // of the pool
  size_t owned = 0;           // entries with an owner
  size_t open_guards = 0;     // owned entries whose guard page is accessible
};

PoolView view_pool() {
  PoolView v;
  std::vector<Mapping> maps = read_maps();
  for (const Mapping& m : maps) {
    uintptr_t lo = m.lo > pool_lo() ? m.lo : pool_lo();
    uintptr_t hi = m.hi < pool_hi() ? m.hi : pool_hi();
    if (lo >= hi) continue;
    ++v.lines;
    if (m.writable) v.writable_bytes += hi - lo;
  }
  for (size_t i = 0; i < pool::g_entries; ++i) {
    if (pool::g_owner[i].load() == 0) continue;
    ++v.owned;
    uintptr_t guard = pool_lo() + i * kAltStackSize;
    for (const Mapping& m : maps)
      if (m.lo <= guard && guard < m.hi && (m.readable || m.writable)) ++v.open_guards;
  }
  return v;
}

// Threads that start, do `first` if given, say so, and wait until told to end.
class Crowd {
 public:
  explicit Crowd(int n, void (*first)() = nullptr) {
    for (int i = 0; i < n; ++i)
      threads_.emplace_back([this, first] {
        if (first != nullptr) first();
        ready_.fetch_add(1);
        while (!go_.load()) std::this_thread::yield();
      });
    while (ready_.load() < n) std::this_thread::yield();
  }
  ~Crowd() {
    go_.store(true);
    for (std::thread& t : threads_) t.join();
  }

 private:
  std::atomic<int> ready_{0};
  std::atomic<bool> go_{false};
  std::vector<std::thread> threads_;
};

int* volatile g_null = nullptr;  // opaque: a literal null store would become a trap instruction

bool skip_without_start_hook() { return !panicstop::detail::thread_start_hook_active(); }

// A sanitizer's shadow memory is terabytes of reserved address space: no
// RLIMIT_AS fits it, and a full core would hold it.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitizer = true;
#else
constexpr bool kSanitizer = false;
#endif
#else
constexpr bool kSanitizer = false;
#endif

TEST(AltStackPool, OnlyLiveThreadsStacksAreWritableAndEachKeepsItsGuard) {
  if (skip_without_start_hook()) GTEST_SKIP() << "pthread_create is not interposed in this build (sanitizer)";
  constexpr int kThreads = 32;
  ChildResult r = panicstop::testing::run_in_child([] {
    if (!panicstop::install()) _exit(3);
    {
      Crowd crowd(kThreads);
      PoolView v = view_pool();
      printf("live_owned=%zu\nlive_writable=%zu\nlive_open_guards=%zu\n", v.owned, v.writable_bytes, v.open_guards);
    }
    PoolView v = view_pool();
    printf("after_owned=%zu\nafter_writable=%zu\n", v.owned, v.writable_bytes);
    fflush(stdout);
  });
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  long long owned = value_of(r.output, "live_owned");
  // The main thread and the crowd; nothing else runs in the child.
  EXPECT_GE(owned, kThreads + 1) << r.output;
  EXPECT_LE(owned, kThreads + 2) << r.output;
  EXPECT_EQ(value_of(r.output, "live_writable"), owned * (long long)pool::kUsableSize) << r.output;
  EXPECT_EQ(value_of(r.output, "live_open_guards"), 0) << r.output;
  long long after = value_of(r.output, "after_owned");
  EXPECT_LE(after, 2) << "the crowd's stacks went back when it exited\n" << r.output;
  EXPECT_EQ(value_of(r.output, "after_writable"), after * (long long)pool::kUsableSize) << r.output;
}

// A write barrier's fault: its handler, installed without SA_ONSTACK, opens
// the page and returns. panicstop runs it on the faulting stack, with the
// thread's second pool stack registered meanwhile (thread/altstack.hpp).
void open_the_page(int, siginfo_t* info, void*) {
  uintptr_t page = reinterpret_cast<uintptr_t>(info->si_addr) & ~uintptr_t(4095);
  mprotect(reinterpret_cast<void*>(page), 4096, PROT_READ | PROT_WRITE);
}

void fault_through_a_handler_on_the_faulting_stack() {
  void* page = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  static_cast<volatile char*>(page)[0] = 1;
  munmap(page, 4096);
}

TEST(AltStackPool, AThreadsSecondStackGoesBackWhenItExits) {
  if (skip_without_start_hook()) GTEST_SKIP() << "pthread_create is not interposed in this build (sanitizer)";
  constexpr int kThreads = 32;
  ChildResult r = panicstop::testing::run_in_child([] {
    if (!panicstop::install()) _exit(3);
    struct sigaction sa {};
    sa.sa_sigaction = open_the_page;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, nullptr);
    for (int wave = 0; wave < 3; ++wave) {
      Crowd crowd(kThreads, fault_through_a_handler_on_the_faulting_stack);
      printf("live_owned=%zu\n", view_pool().owned);
    }
    printf("after_owned=%zu\nhigh_water=%zu\n", view_pool().owned, pool::g_high_water.load());
    fflush(stdout);
  });
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_GE(value_of(r.output, "live_owned"), 2 * kThreads + 1) << "each faulting thread holds two\n" << r.output;
  EXPECT_LE(value_of(r.output, "after_owned"), 2) << r.output;
  // Given back, not left to a dead owner: later waves reuse them.
  EXPECT_LE(value_of(r.output, "high_water"), 2 * kThreads + 4) << r.output;
}

TEST(AltStackPool, MappingCountStaysFlatAsAThousandThreadsComeAndGo) {
  if (skip_without_start_hook()) GTEST_SKIP() << "pthread_create is not interposed in this build (sanitizer)";
  ChildResult r = panicstop::testing::run_in_child([] {
    if (!panicstop::install()) _exit(3);
    size_t pool_before = view_pool().lines;
    { Crowd warm_up(20); }  // fills the C library's cache of thread stacks
    size_t all_before = read_maps().size();
    for (int wave = 0; wave < 50; ++wave) Crowd crowd(20);
    printf("pool_before=%zu\npool_after=%zu\nall_before=%zu\nall_after=%zu\n", pool_before, view_pool().lines,
           all_before, read_maps().size());
    fflush(stdout);
  });
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  // The freed stacks merged back into the inaccessible rest of the pool.
  EXPECT_LE(value_of(r.output, "pool_after"), value_of(r.output, "pool_before") + 2) << r.output;
  // Everything else in the process: the C library's stack cache may differ by
  // a few stacks (two mappings each) from one wave to the next.
  EXPECT_LE(value_of(r.output, "all_after"), value_of(r.output, "all_before") + 16) << r.output;
}

TEST(AltStackPool, InstallUnderATightAddressSpaceLimitSucceedsAndACrashStillDumps) {
  if (kSanitizer) GTEST_SKIP() << "the sanitizer's shadow memory exceeds any such limit";
  TempDir dir;
  ChildResult r = panicstop::testing::run_in_child(
      [] {
        // The limit must apply to the reservation, not find it made already.
        if (pool::g_pool != nullptr) _exit(4);
        struct rlimit limit = {1500000ull * 1024, 1500000ull * 1024};  // ulimit -v 1500000
        if (setrlimit(RLIMIT_AS, &limit) != 0) _exit(5);
        bool ok = panicstop::install();
        printf("install=%d\nentries=%zu\n", ok ? 1 : 0, pool::g_entries);
        fflush(stdout);
        std::thread([] { *g_null = 1; }).join();
      },
      panicstop::testing::with_env({{"PANICSTOP_DUMP_DIR", dir.path()}}, 60000));
  ASSERT_FALSE(r.hung) << r.output;
  EXPECT_EQ(value_of(r.output, "install"), 1) << r.describe() << "\n" << r.output;
  EXPECT_GT(value_of(r.output, "entries"), 0) << r.output;
  EXPECT_TRUE(r.signaled && r.term_signal == SIGSEGV) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("panic: fatal signal SIGSEGV"), std::string::npos) << r.output;
  bool report = false, core = false;
  for (const std::string& name : dir.list()) {
    report = report || name.ends_with(".txt");
    core = core || name.ends_with(".core");
  }
  EXPECT_TRUE(report && core) << r.output;
}

TEST(AltStackPool, AFullCoreLeavesTheUnusedPoolOut) {
  if (kSanitizer) GTEST_SKIP() << "a full core would hold the sanitizer's shadow memory";
  TempDir dir;
  ChildResult r = panicstop::testing::run_in_child(
      [] {
        if (!panicstop::install()) _exit(3);
        printf("pool_lo=%" PRIuPTR "\npool_hi=%" PRIuPTR "\n", pool_lo(), pool_hi());
        fflush(stdout);
        *g_null = 1;
      },
      panicstop::testing::with_env({{"PANICSTOP_DUMP_DIR", dir.path()},
                                    {"PANICSTOP_DUMP", "core"},
                                    {"PANICSTOP_CORE", "full"},
                                    {"PANICSTOP_CORE_LIMIT", "ignore"}},
                                   120000));
  ASSERT_FALSE(r.hung) << r.output;
  ASSERT_TRUE(r.signaled && r.term_signal == SIGSEGV) << r.describe() << "\n" << r.output;
  std::string core;
  for (const std::string& name : dir.list())
    if (name.ends_with(".core")) core = dir.path() + "/" + name;
  ASSERT_FALSE(core.empty()) << r.output;
  auto lo = uint64_t(value_of(r.output, "pool_lo"));
  auto hi = uint64_t(value_of(r.output, "pool_hi"));
  ASSERT_LT(lo, hi) << r.output;

  // Only the program headers are read: the core may be large when this fails.
  FILE* f = fopen(core.c_str(), "rb");
  ASSERT_NE(f, nullptr);
  Elf64_Ehdr eh{};
  ASSERT_EQ(fread(&eh, sizeof eh, 1, f), 1u);
  uint64_t in_pool = 0;
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph{};
    ASSERT_EQ(fseek(f, long(eh.e_phoff + uint64_t(i) * eh.e_phentsize), SEEK_SET), 0);
    ASSERT_EQ(fread(&ph, sizeof ph, 1, f), 1u);
    if (ph.p_type != PT_LOAD || ph.p_filesz == 0) continue;
    uint64_t a = ph.p_vaddr > lo ? ph.p_vaddr : lo;
    uint64_t b = ph.p_vaddr + ph.p_filesz < hi ? ph.p_vaddr + ph.p_filesz : hi;
    if (a < b) in_pool += b - a;
  }
  fclose(f);
  // One thread ran: its stack is the only part of the pool worth dumping.
  EXPECT_LE(in_pool, 2 * kAltStackSize) << "bytes of the pool in the core";
}

// Sanitizer builds hand the main thread no pool stack at install (the
// sanitizer's runtime owns its signal setup), so these two have nothing to
// look at there.
constexpr const char* kNoMainPoolStack = "a sanitizer build gives the main thread no pool stack at install";

TEST(AltStackPool, AWriteToAStacksGuardPageFaults) {
  if (kSanitizer) GTEST_SKIP() << kNoMainPoolStack;
  ChildResult r = panicstop::testing::run_in_child(
      [] {
        if (!panicstop::install()) _exit(3);
        int32_t mine = pool::tls_index;
        if (mine < 0) _exit(4);
        // The guard page of the main thread's own stack: what a handler that
        // overflows it would write next.
        *reinterpret_cast<volatile char*>(pool::g_pool + size_t(mine) * kAltStackSize + pool::kGuardSize - 1) = 1;
        _exit(0);
      },
      panicstop::testing::with_env({{"PANICSTOP_DUMP", "none"}}));
  ASSERT_FALSE(r.hung) << r.output;
  EXPECT_TRUE(r.signaled && r.term_signal == SIGSEGV) << r.describe() << "\n" << r.output;
}

// The "DEV" field of the /proc/self/maps line that holds addr, or "".
std::string device_of(uintptr_t addr) {
  std::ifstream in("/proc/self/maps");
  std::string line;
  while (std::getline(in, line)) {
    uintptr_t lo = 0, hi = 0;
    char perms[8] = {}, device[16] = {};
    unsigned long long offset = 0;
    if (sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR " %4s %llx %15s", &lo, &hi, perms, &offset, device) != 5)
      continue;
    if (lo <= addr && addr < hi) return device;
  }
  return "";
}

// redis's crash-time memory test rewrites every writable mapping on device
// 00:00 (anonymous) while other threads run; the stacks panicstop's handlers
// run on and the thread slots they write must not be among them.
TEST(AltStackPool, TheHandlersStacksAndTheSlotsAreNotListedAsAnonymousMemory) {
  if (kSanitizer) GTEST_SKIP() << kNoMainPoolStack;
  ChildResult r = panicstop::testing::run_in_child([] {
    if (!panicstop::install()) _exit(3);
    panicstop::set_thread_name("main");  // claims a slot
    int32_t mine = pool::tls_index;
    if (mine < 0 || panicstop::detail::slot_array() == nullptr) _exit(4);
    uintptr_t stack = reinterpret_cast<uintptr_t>(pool::usable_bottom(pool::g_pool + size_t(mine) * kAltStackSize));
    printf("stack_device=%s\nslots_device=%s\n", device_of(stack).c_str(),
           device_of(reinterpret_cast<uintptr_t>(panicstop::detail::slot_array())).c_str());
    fflush(stdout);
  });
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  for (const char* key : {"stack_device=", "slots_device="}) {
    size_t at = r.output.find(key);
    ASSERT_NE(at, std::string::npos) << r.output;
    std::string device = r.output.substr(at + strlen(key), r.output.find('\n', at) - at - strlen(key));
    EXPECT_FALSE(device.empty()) << key << r.output;
    EXPECT_NE(device, "00:00") << key << r.output;
  }
}

}  // namespace
