// A thread that sets its own small alternate signal stack (as Go-style
// runtimes, Rust's std and many servers do) still gets a panic with dumps, and
// a soft stop of it still returns: panicstop's handlers leave that stack for
// one of their own before doing any real work.
#include <gtest/gtest.h>
#include <execinfo.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "panicstop/kdb.hpp"
#include "panicstop/panic.hpp"
#include "support/child_process.hpp"
#include "thread/handler_stack.hpp"

namespace {

using panicstop::testing::ChildResult;
using panicstop::testing::TempDir;

constexpr unsigned char kFill = 0xa5;
constexpr size_t kPage = 4096;

// A stack of `size` bytes that ends on a page boundary, with an inaccessible
// page under it: a handler that overflows it faults instead of silently
// writing into whatever lies below.
unsigned char* map_small_stack(size_t size) {
  size_t span = (size + kPage - 1) / kPage * kPage;
  auto* base = static_cast<unsigned char*>(
      mmap(nullptr, span + kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (base == MAP_FAILED) _exit(20);
  mprotect(base, kPage, PROT_NONE);
  unsigned char* sp = base + kPage + span - size;
  memset(sp, kFill, size);
  return sp;
}

void set_own_altstack(unsigned char* sp, size_t size) {
  stack_t st{};
  st.ss_sp = sp;
  st.ss_size = size;
  if (sigaltstack(&st, nullptr) != 0) _exit(21);
}

size_t bytes_touched(const unsigned char* sp, size_t size) {
  size_t untouched = 0;
  while (untouched < size && sp[untouched] == kFill) ++untouched;
  return size - untouched;
}

volatile int g_keep_recursing = 1;  // opaque to the compiler, so the recursion is not "infinite"
int* volatile g_null = nullptr;      // opaque too: a literal null store would become a trap instruction

__attribute__((noinline)) void handler_stack_null_write() {
  *g_null = 1;
  asm volatile("" ::: "memory");
}

__attribute__((noinline)) int handler_stack_overflow(int depth) {
  volatile char frame[1024];
  frame[0] = char(depth);
  if (!g_keep_recursing) return frame[0];
  return handler_stack_overflow(depth + 1) + frame[0];
}

enum class Crash { kNullWrite, kOverflow };

ChildResult crash_with_altstack(size_t size, Crash how, const std::string& dir) {
  panicstop::testing::ChildOptions opts;
  opts.set_env = {{"PANICSTOP_DUMP_DIR", dir}};
  opts.unset_env = {"PANICSTOP_DUMP", "PANICSTOP_CORE"};
  return panicstop::testing::run_in_child(
      [size, how] {
        panicstop::install();
        std::thread([size, how] {
          set_own_altstack(map_small_stack(size), size);
          if (how == Crash::kNullWrite) handler_stack_null_write();
          else handler_stack_overflow(0);
        }).join();
      },
      opts);
}

void do_nothing(int, siginfo_t*, void*) {}

// The bytes of an alternate stack the kernel's signal frame takes (with this
// machine's XSAVE state), measured with a handler that does nothing.
size_t kernel_frame_bytes() {
  static size_t bytes = [] {
    size_t measured = 0;
    std::thread([&] {
      constexpr size_t kSize = 64 * 1024;
      unsigned char* sp = map_small_stack(kSize);
      set_own_altstack(sp, kSize);
      struct sigaction sa {}, old {};
      sa.sa_sigaction = do_nothing;
      sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
      sigaction(SIGUSR2, &sa, &old);
      raise(SIGUSR2);
      sigaction(SIGUSR2, &old, nullptr);
      measured = bytes_touched(sp, kSize);
      stack_t off{};
      off.ss_flags = SS_DISABLE;
      sigaltstack(&off, nullptr);
    }).join();
    return measured;
  }();
  return bytes;
}

constexpr size_t kWrapperBudget = panicstop::detail::kForeignStackBytes;

// The kernel's frame alone may not fit in a tiny stack (a large XSAVE state):
// then no handler can run on it at all, whatever the handler does.
#define SKIP_UNLESS_THE_FRAME_FITS(size)                                                             \
  do {                                                                                               \
    if (kernel_frame_bytes() + kWrapperBudget > (size))                                              \
      GTEST_SKIP() << "the kernel's signal frame takes " << kernel_frame_bytes() << " bytes here, " \
                   << "plus up to " << kWrapperBudget << " for the entry wrapper: more than " << (size); \
  } while (0)

void expect_panic_with_dumps(const ChildResult& r, const TempDir& dir, const char* site) {
  ASSERT_FALSE(r.hung) << r.describe() << "\n" << r.output;
  EXPECT_TRUE(r.signaled && r.term_signal == SIGSEGV) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("panic: fatal signal SIGSEGV"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("nested panic"), std::string::npos) << r.output;
  const std::string report = dir.file_ending(".txt");
  const std::string core = dir.file_ending(".core");
  ASSERT_FALSE(report.empty()) << r.output;
  ASSERT_FALSE(core.empty()) << r.output;
  EXPECT_EQ(panicstop::testing::read_file(core).substr(0, 4), "\x7f" "ELF");
  std::string text = panicstop::testing::read_file(report);
  EXPECT_NE(text.find(site), std::string::npos) << text;
}

class SmallAltStack : public ::testing::TestWithParam<size_t> {
 protected:
  void SetUp() override {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    GTEST_SKIP() << "sanitizers interpose signal handling";
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    GTEST_SKIP() << "sanitizers interpose signal handling";
#endif
#endif
  }
};

TEST_P(SmallAltStack, NullWriteIsAPanicWithDumps) {
  SKIP_UNLESS_THE_FRAME_FITS(GetParam());
  TempDir dir;
  ChildResult r = crash_with_altstack(GetParam(), Crash::kNullWrite, dir.path());
  expect_panic_with_dumps(r, dir, "handler_stack_null_write");
}

TEST_P(SmallAltStack, StackOverflowIsAPanicWithDumps) {
  SKIP_UNLESS_THE_FRAME_FITS(GetParam());
  TempDir dir;
  ChildResult r = crash_with_altstack(GetParam(), Crash::kOverflow, dir.path());
  expect_panic_with_dumps(r, dir, "handler_stack_overflow");
}

// A worker that spins on its own small sigaltstack until phase reaches 2,
// then says how much of that stack the signals it took used, next to what a
// handler that does nothing uses (the kernel's frame): the difference is the
// entry wrapper's use of a foreign stack.
struct SpinningWorker {
  std::atomic<int> phase{0};
  std::atomic<unsigned long> spins{0};
  std::atomic<int> tid{0};
  std::thread thread;

  explicit SpinningWorker(size_t size) {
    thread = std::thread([this, size] {
      unsigned char* sp = map_small_stack(size);
      set_own_altstack(sp, size);
      struct sigaction sa {}, old {};
      sa.sa_sigaction = do_nothing;
      sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
      sigaction(SIGUSR1, &sa, &old);
      raise(SIGUSR1);
      sigaction(SIGUSR1, &old, nullptr);
      size_t kernel_frame = bytes_touched(sp, size);
      memset(sp, kFill, size);
      tid.store(int(gettid()));
      phase.store(1);
      handler_stack_spin();
      size_t used = bytes_touched(sp, size);
      stack_t now{};
      sigaltstack(nullptr, &now);
      printf("kernel-frame=%zu used=%zu wrapper=%zd own-altstack=%d\n", kernel_frame, used,
             ssize_t(used) - ssize_t(kernel_frame), int(now.ss_sp == sp && now.ss_size == size));
      fflush(stdout);
    });
    while (phase.load() == 0) std::this_thread::yield();
  }

  __attribute__((noinline)) void handler_stack_spin() {
    while (phase.load() < 2) spins.fetch_add(1, std::memory_order_relaxed);
  }

  // The worker runs again: its counter moves.
  void finish_once_resumed() {
    unsigned long seen = spins.load();
    while (spins.load() == seen) std::this_thread::yield();
    phase.store(2);
    thread.join();
  }
};

void expect_resumed_within_budget(const ChildResult& r) {
  ASSERT_FALSE(r.hung) << r.describe() << "\n" << r.output;
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("own-altstack=1"), std::string::npos) << r.output;
  auto pos = r.output.find("wrapper=");
  ASSERT_NE(pos, std::string::npos) << r.output;
  long wrapper = strtol(r.output.c_str() + pos + 8, nullptr, 10);
  EXPECT_LE(wrapper, long(kWrapperBudget)) << r.output;
  if (getenv("PANICSTOP_TEST_SHOW_OUTPUT") != nullptr) fputs(r.output.c_str(), stderr);
}

// A live dump soft-stops the worker while it spins: the stop handler returns
// through the switch and the worker goes on.
TEST_P(SmallAltStack, SoftStopReturnsAndTheWorkerResumes) {
  SKIP_UNLESS_THE_FRAME_FITS(GetParam());
  TempDir dir;
  size_t size = GetParam();
  std::string path = dir.path();
  ChildResult r = panicstop::testing::run_in_child(
      [size, path] {
        panicstop::install();
        SpinningWorker worker(size);
        if (panicstop::live_dump(path.c_str()) <= 0) _exit(30);
        worker.finish_once_resumed();
      },
      {});
  expect_resumed_within_budget(r);
  EXPECT_FALSE(dir.list().empty()) << r.output;
}

// kdb's signal, taken by the worker on its small stack: the whole session
// (stopping the others, unwinding every thread, writing the report) runs in
// that handler, and the worker's own backtrace leads through the switch and
// the signal frame back to its loop.
TEST_P(SmallAltStack, KdbSignalOnTheWorkerRunsTheSessionAndReturns) {
  SKIP_UNLESS_THE_FRAME_FITS(GetParam());
  TempDir dir;
  size_t size = GetParam();
  std::string report = dir.path() + "/kdb.txt";
  ChildResult r = panicstop::testing::run_in_child(
      [size, report] {
        panicstop::install();
        SpinningWorker worker(size);
        tgkill(getpid(), worker.tid.load(), SIGUSR2);
        // This thread is stopped for the whole session, so once the report
        // has text the session is over or about to be.
        while (access(report.c_str(), F_OK) != 0 || panicstop::kdb_active()) std::this_thread::yield();
        worker.finish_once_resumed();
      },
      panicstop::testing::with_env({{"PANICSTOP_KDB_SIGNAL", "SIGUSR2"}, {"PANICSTOP_KDB_OUTPUT", report}}));
  expect_resumed_within_budget(r);
  std::string text = panicstop::testing::read_file(report);
  EXPECT_EQ(text.rfind("panic: (none) kdb: SIGUSR2 received\n", 0), 0u) << text.substr(0, 200);
  size_t handler = text.find("kdb_signal_handler");
  size_t trampoline = text.find("__restore_rt+0x0", handler == std::string::npos ? 0 : handler);
  size_t loop = text.find("handler_stack_spin", trampoline == std::string::npos ? 0 : trampoline);
  if (getenv("PANICSTOP_TEST_SHOW_OUTPUT") != nullptr) fputs(text.c_str(), stderr);
  EXPECT_NE(handler, std::string::npos) << text;
  EXPECT_NE(trampoline, std::string::npos) << text;
  EXPECT_NE(loop, std::string::npos) << text;
}

// libgcc's unwinder (glibc's backtrace()) walks from a handler running on
// the panicstop stack through the switch's CFI back to the code the signal
// interrupted on the thread's own stack.
void* g_frames[64];
int g_frame_count = 0;

void record_backtrace(int, siginfo_t*, void*) { g_frame_count = backtrace(g_frames, 64); }

__attribute__((noinline)) void handler_stack_raise() {
  raise(SIGUSR1);
  asm volatile("" ::: "memory");  // the call is not the last instruction: the return address stays inside
}

TEST_P(SmallAltStack, BacktraceFromAHandlerCrossesTheSwitch) {
  SKIP_UNLESS_THE_FRAME_FITS(GetParam());
  size_t size = GetParam();
  ChildResult r = panicstop::testing::run_in_child([size] {
    panicstop::install();
    void* warm[4];
    backtrace(warm, 4);  // loads libgcc_s here rather than in the handler
    std::thread([size] {
      set_own_altstack(map_small_stack(size), size);
      struct sigaction sa {};
      sa.sa_sigaction = panicstop::detail::handler_entry<record_backtrace>;
      sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
      sigaction(SIGUSR1, &sa, nullptr);
      handler_stack_raise();
      auto in = [](void* pc, const void* start, size_t len) {
        return uintptr_t(pc) > uintptr_t(start) && uintptr_t(pc) <= uintptr_t(start) + len;
      };
      bool through_switch = false, reached_caller = false;
      for (int i = 0; i < g_frame_count; ++i) {
        through_switch |= g_frames[i] == static_cast<void*>(panicstop_call_on_stack_return);
        reached_caller |= in(g_frames[i], reinterpret_cast<const void*>(&handler_stack_raise), 64);
      }
      printf("frames=%d through-switch=%d reached-caller=%d\n", g_frame_count, int(through_switch),
             int(reached_caller));
      fflush(stdout);
    }).join();
  });
  ASSERT_FALSE(r.hung) << r.describe() << "\n" << r.output;
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("through-switch=1 reached-caller=1"), std::string::npos) << r.output;
}

INSTANTIATE_TEST_SUITE_P(Sizes, SmallAltStack, ::testing::Values(size_t(12288), size_t(8192), size_t(4096), size_t(2048)),
                         [](const ::testing::TestParamInfo<size_t>& info) { return std::to_string(info.param); });

}  // namespace
