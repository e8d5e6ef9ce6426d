// The registry from signal handlers: a thread made with a raw clone() (no
// CLONE_SETTLS) shares the TLS of the thread that made it, so the slot TLS
// names is not its own. Its crash must still be reported as its own, with
// its own registers, and the thread it shares TLS with keeps its own.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mman.h>

#include <atomic>
#include <csignal>
#include <string>

#include "panicstop/panicstop.hpp"
#include "support/child_process.hpp"
#include "support/reports.hpp"
#include "sys/format.hpp"
#include "sys/syscall.hpp"

namespace panicstop {
namespace {

using testing::run_in_child;
using testing::thread_block;
using testing::TempDir;
using testing::with_env;

std::string only_report(const TempDir& dir) {
  for (const auto& name : dir.list())
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".txt") == 0)
      return testing::read_file(dir.path() + "/" + name);
  return "";
}


std::atomic<uint32_t> g_go{0};
std::atomic<uint32_t> g_never{0};
volatile uintptr_t g_address = 0x10;  // opaque to the compiler's bounds checks

// Runs on the clone: raw system calls only (errno and every other TLS
// variable are main's).
__attribute__((noinline)) int clone_writes_to_0x10(void*) {
  while (g_go.load() == 0) sys::futex_wait(&g_go, 0);
  *reinterpret_cast<volatile int*>(g_address) = 1;
  return 0;
}

// Lets the clone crash from here, so that main is inside this function
// whenever the stop catches it.
__attribute__((noinline)) void main_waits_for_the_clone() {
  g_go.store(1);
  sys::futex_wake(&g_go, 1);
  for (;;) sys::futex_wait(&g_never, 0);
}

TEST(RawClone, ACrashInARawCloneThreadIsReportedAsItsOwn) {
  TempDir dumps;
  auto r = run_in_child(
      [] {
        install();
        set_thread_name("clone-main");  // main has a slot, which TLS names for the clone too
        constexpr size_t kStack = 1 << 20;
        void* stack = mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (stack == MAP_FAILED) _exit(90);
        int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
        int tid = clone(clone_writes_to_0x10, static_cast<char*>(stack) + kStack, flags, nullptr);
        if (tid <= 0) _exit(91);
        char line[64];
        size_t n = sys::format(line, sizeof line, "clone=%d main=%d\n", tid, sys::gettid());
        sys::write_all(2, line, n);
        main_waits_for_the_clone();
      },
      with_env({{"PANICSTOP_DUMP", "text"}, {"PANICSTOP_DUMP_DIR", dumps.path()}}));
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_TRUE(r.signaled && r.term_signal == SIGSEGV) << r.describe() << r.output;
  size_t at = r.output.find("clone=");
  ASSERT_NE(at, std::string::npos) << r.output;
  int clone_tid = 0, main_tid = 0;
  ASSERT_EQ(sscanf(r.output.c_str() + at, "clone=%d main=%d", &clone_tid, &main_tid), 2) << r.output;
  std::string report = only_report(dumps);
  ASSERT_FALSE(report.empty()) << r.output;
  EXPECT_NE(report.find("\npanicking thread " + std::to_string(clone_tid) + " "), std::string::npos) << report;
  std::string crashed = thread_block(report, clone_tid);
  EXPECT_NE(crashed.find("[panicking]"), std::string::npos) << report;
  EXPECT_NE(crashed.find("clone_writes_to_0x10"), std::string::npos) << report;
  EXPECT_NE(crashed.find("fault address 0x10"), std::string::npos) << report;
  std::string main_block = thread_block(report, main_tid);
  EXPECT_NE(main_block.find("(clone-main) [stopped]"), std::string::npos) << report;
  EXPECT_NE(main_block.find("main_waits_for_the_clone"), std::string::npos) << report;
  EXPECT_EQ(main_block.find("clone_writes_to_0x10"), std::string::npos) << report;
}

}  // namespace
}  // namespace panicstop
