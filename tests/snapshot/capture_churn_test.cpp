// A crash while threads are created and exit continuously (a thread-per-task
// server): the dumps must still hold every module and the stacks of the
// threads that were there, whatever the threads that come and go do meanwhile.
#include <gtest/gtest.h>

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <regex>
#include <string>
#include <thread>

#include "panicstop/panic.hpp"
#include "snapshot/crash_dumps.hpp"
#include "support/reports.hpp"
#include "sys/syscall.hpp"

namespace panicstop {
namespace {

using testing::crash_with_dumps;

std::atomic<uint64_t> g_tasks_done{0};
std::atomic<int> g_witness_tid{0};
std::atomic<uintptr_t> g_witness_stack{0};
std::atomic<uint32_t> g_forever{0};

void* short_task(void*) {
  g_tasks_done.fetch_add(1, std::memory_order_relaxed);
  return nullptr;
}

// Creates detached threads that exit at once, as fast as it can, forever.
void spawn_forever() {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  for (;;) {
    pthread_t t;
    if (pthread_create(&t, &attr, short_task, nullptr) != 0) sched_yield();
  }
}

__attribute__((noinline)) void witness_parked_here() {
  volatile int on_stack = 0;
  g_witness_stack.store(reinterpret_cast<uintptr_t>(&on_stack));
  g_witness_tid.store(sys::gettid());
  while (true) sys::futex_wait(&g_forever, 0);
}

__attribute__((noinline)) void crash_amid_churn() {
  int* null = nullptr;
  __asm__ volatile("" : "+r"(null));  // the compiler cannot prove it null
  *null = 1;
  __asm__ volatile("" ::: "memory");
}

[[noreturn]] void churn_and_crash() {
  install();
  std::thread(witness_parked_here).detach();
  for (int i = 0; i < 4; ++i) std::thread(spawn_forever).detach();
  // Crash while the churn is in full swing: thousands of threads have come
  // and gone (each has left mappings behind: cached stacks, guard pages), and
  // new ones keep starting and ending.
  while (g_witness_tid.load() == 0 || g_tasks_done.load() < 8000) sched_yield();
  printf("witness=%d stack=0x%lx\n", g_witness_tid.load(), static_cast<unsigned long>(g_witness_stack.load()));
  fflush(stdout);
  crash_amid_churn();
  _exit(3);
}

TEST(CaptureChurn, ModulesAndStacksAreCompleteWhileThreadsComeAndGo) {
  // The race is timing-dependent: several crashes, every one must be complete.
  for (int run = 0; run < 5; ++run) {
    SCOPED_TRACE("run " + std::to_string(run));
    testing::TempDir dir;
    testing::CrashDumps d = crash_with_dumps(dir.path(), churn_and_crash, {{"PANICSTOP_STOP_TIMEOUT_MS", "2000"}});
    ASSERT_FALSE(d.child.hung) << d.child.output;
    ASSERT_FALSE(d.report.empty()) << d.child.describe() << "\n" << d.child.output;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(d.child.output, m, std::regex(R"(witness=(\d+) stack=0x([0-9a-f]+))")));
    int witness = std::stoi(m[1]);
    uintptr_t witness_stack = uintptr_t(std::stoull(m[2], nullptr, 16));

    EXPECT_TRUE(testing::lists_module(d.report, "libc.so")) << d.report.substr(0, 500) << d.report.substr(d.report.find("\nmodules:"));
    // The crashing stack unwinds past the faulting function into its caller.
    size_t at = d.report.find("[panicking]");
    ASSERT_NE(at, std::string::npos) << d.report.substr(0, 4000);
    std::string lead = d.report.substr(d.report.rfind("\nthread ", at) + 1);
    lead = lead.substr(0, lead.find("\nthread "));
    EXPECT_NE(lead.find("crash_amid_churn"), std::string::npos) << lead;
    EXPECT_NE(lead.find("churn_and_crash"), std::string::npos) << lead;
    // A thread that was there all along: stopped, unwound, its stack in the core.
    std::string block = testing::thread_block(d.report, witness);
    EXPECT_NE(block.find("[stopped]"), std::string::npos) << block;
    EXPECT_NE(testing::stack_of(d.report, witness).find("witness_parked_here"), std::string::npos) << block;
    ASSERT_FALSE(d.core_path.empty()) << d.child.output;
    EXPECT_TRUE(testing::core_has_memory_at(d.core_path, witness_stack));
    if (HasFailure()) break;
  }
}

}  // namespace
}  // namespace panicstop
