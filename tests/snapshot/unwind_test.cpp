#include "snapshot/unwind.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "panicstop/panic.hpp"
#include "panicstop/thread.hpp"
#include "snapshot/crash_dumps.hpp"
#include "snapshot/parked_threads.hpp"
#include "support/faults.hpp"
#include "snapshot/symbolize.hpp"
#include "support/child_process.hpp"

namespace panicstop {
namespace testing {

// The directives around each hand-written function below: global but hidden,
// typed as a function for the symbolizer, with its CFI block. "%function"
// is the spelling gas takes on both x86-64 and aarch64.
#define PANICSTOP_TEST_ASM_BEGIN(name) \
  ".globl " #name "\n.hidden " #name "\n.type " #name ", %function\n" #name ":\n  .cfi_startproc\n"
#define PANICSTOP_TEST_ASM_END(name) "  .cfi_endproc\n.size " #name ", .-" #name "\n"

#if defined(__x86_64__)
// Sleeps in the futex while *word == seen, with rbp zeroed: hand-written so it
// has no frame pointer on any compiler, and CFI saying where the caller's rbp
// was saved. Only a CFI unwinder gets past it to its callers.
extern "C" void panicstop_test_park_without_frame_pointer(const void* word, uint32_t seen);
__asm__(
    ".text\n"
    PANICSTOP_TEST_ASM_BEGIN(panicstop_test_park_without_frame_pointer)
    "  push %rbp\n"
    "  .cfi_def_cfa_offset 16\n"
    "  .cfi_offset %rbp, -16\n"
    "  xor %ebp, %ebp\n"
    "  mov %esi, %edx\n"        // futex value: seen
    "  mov $128, %esi\n"        // FUTEX_WAIT_PRIVATE
    "  xor %r10d, %r10d\n"      // no timeout
    "1:\n"
    "  cmp (%rdi), %edx\n"
    "  jne 2f\n"
    "  mov $202, %eax\n"        // SYS_futex
    "  syscall\n"
    "  jmp 1b\n"
    "2:\n"
    "  pop %rbp\n"
    "  .cfi_def_cfa_offset 8\n"
    "  ret\n"
    PANICSTOP_TEST_ASM_END(panicstop_test_park_without_frame_pointer));

__attribute__((noinline)) void park_in_delta() {
  panicstop_test_park_without_frame_pointer(&g_park_release, g_park_release.load());
  __asm__ volatile("" ::: "memory");
}
#endif

#if defined(__aarch64__)
// Real aarch64 frames for the two cases x30 can mislead an unwinder in.
// A leaf: waits in the futex without ever saving x29/x30, so its caller is
// found in x30 and nowhere on the stack.
extern "C" void panicstop_test_park_leaf(const void* word, uint32_t seen);
// A non-leaf that saves its frame record, calls out and comes back, then
// waits: x30 then points into the function itself, not at its caller.
extern "C" void panicstop_test_park_after_call(const void* word, uint32_t seen);
extern "C" void panicstop_test_return_at_once();
__asm__(
    // Waits in the futex while [x9] == w1, then falls through; clobbers
    // x0-x3, x8, x10.
    ".macro panicstop_test_futex_loop\n"
    "1:\n"
    "  ldr w10, [x9]\n"
    "  cmp w10, w1\n"
    "  b.ne 2f\n"
    "  mov x0, x9\n"
    "  mov w2, w1\n"             // futex value: seen
    "  mov w1, #128\n"           // FUTEX_WAIT_PRIVATE
    "  mov x3, #0\n"             // no timeout
    "  mov x8, #98\n"            // SYS_futex
    "  svc #0\n"
    "  mov w1, w2\n"
    "  b 1b\n"
    "2:\n"
    ".endm\n"
    ".text\n"
    ".p2align 2\n"
    PANICSTOP_TEST_ASM_BEGIN(panicstop_test_return_at_once)
    "  ret\n"
    PANICSTOP_TEST_ASM_END(panicstop_test_return_at_once)
    PANICSTOP_TEST_ASM_BEGIN(panicstop_test_park_leaf)
    "  mov x9, x0\n"
    "  panicstop_test_futex_loop\n"
    "  ret\n"
    PANICSTOP_TEST_ASM_END(panicstop_test_park_leaf)
    PANICSTOP_TEST_ASM_BEGIN(panicstop_test_park_after_call)
    "  stp x29, x30, [sp, #-32]!\n"
    "  .cfi_def_cfa_offset 32\n"
    "  .cfi_offset x29, -32\n"
    "  .cfi_offset x30, -24\n"
    "  mov x29, sp\n"
    "  stp x0, x1, [sp, #16]\n"
    "  bl panicstop_test_return_at_once\n"
    "  ldp x9, x1, [sp, #16]\n"
    "  panicstop_test_futex_loop\n"
    "  ldp x29, x30, [sp], #32\n"
    "  .cfi_def_cfa_offset 0\n"
    "  .cfi_restore x29\n"
    "  .cfi_restore x30\n"
    "  ret\n"
    PANICSTOP_TEST_ASM_END(panicstop_test_park_after_call));

__attribute__((noinline)) void park_in_leaf_caller() {
  panicstop_test_park_leaf(&g_park_release, g_park_release.load());
  __asm__ volatile("" ::: "memory");
}
__attribute__((noinline)) void park_in_after_call_caller() {
  panicstop_test_park_after_call(&g_park_release, g_park_release.load());
  __asm__ volatile("" ::: "memory");
}
#endif

}  // namespace testing

namespace {

using detail::ProcessSnapshot;
using testing::ParkedThreads;

std::vector<std::string> frame_names(const ProcessSnapshot& s, const detail::SnapshotThread& t) {
  std::vector<std::string> names;
  for (uint32_t i = 0; i < t.frame_count; ++i) {
    detail::SymbolInfo info;
    detail::symbolize(s, t.frames[i], i > 0, &info);
    names.push_back(info.has_name ? info.name : "??");
  }
  return names;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += "\n  " + n;
  return out;
}

bool has_frame(const std::vector<std::string>& names, const char* needle) {
  for (const auto& n : names)
    if (n.find(needle) != std::string::npos) return true;
  return false;
}

const detail::SnapshotThread* find_thread(const ProcessSnapshot& s, int tid) {
  for (uint32_t i = 0; i < s.thread_count; ++i)
    if (s.threads[i].tid == tid) return &s.threads[i];
  return nullptr;
}

// Parks `count` threads in `bodies` (thread i in bodies[i % size]), stops
// them, captures a snapshot and, with the symbolizer open, calls
// check(snapshot, i, thread) for each parked thread; then restarts them.
template <typename Check>
void check_parked_threads(size_t count, std::vector<ParkedThreads::Body> bodies, Check check) {
  ASSERT_TRUE(detail::reserve_snapshot());
  ParkedThreads parked(count, std::move(bodies));
  ASSERT_TRUE(parked.stop());
  ProcessSnapshot* s = detail::capture_snapshot();
  ASSERT_NE(s, nullptr);
  detail::symbolizer_begin(*s);
  for (size_t i = 0; i < parked.tids().size(); ++i) {
    const detail::SnapshotThread* t = find_thread(*s, parked.tids()[i]);
    EXPECT_NE(t, nullptr) << "parked thread " << parked.tids()[i] << " is not in the snapshot";
    if (t != nullptr) check(*s, i, *t);
  }
  detail::symbolizer_end();
  parked.restart();
}

TEST(Unwind, EveryParkedThreadShowsItsFunction) {
  const char* expected[] = {"park_in_alpha", "park_in_beta", "park_in_gamma"};
  check_parked_threads(6, {testing::park_in_alpha, testing::park_in_beta, testing::park_in_gamma},
                       [&](const ProcessSnapshot& s, size_t i, const detail::SnapshotThread& t) {
                         std::vector<std::string> names = frame_names(s, t);
                         EXPECT_TRUE(has_frame(names, "park_until_released")) << joined(names);
                         EXPECT_TRUE(has_frame(names, expected[i % 3])) << joined(names);
                         // Past the park function into std::thread's machinery and libc.
                         EXPECT_GE(t.frame_count, 4u) << joined(names);
                       });
}

#if defined(__x86_64__)
TEST(Unwind, CfiWalksPastAFunctionWithoutFramePointer) {
  check_parked_threads(2, {testing::park_in_delta},
                       [](const ProcessSnapshot& s, size_t, const detail::SnapshotThread& t) {
                         ASSERT_NE(t.context, nullptr);
                         EXPECT_EQ(t.context->ucontext.uc_mcontext.gregs[REG_RBP], 0);
                         std::vector<std::string> names = frame_names(s, t);
                         ASSERT_FALSE(names.empty());
                         EXPECT_NE(names[0].find("park_without_frame_pointer"), std::string::npos) << joined(names);
                         EXPECT_TRUE(has_frame(names, "park_in_delta")) << joined(names);
                         EXPECT_GE(t.frame_count, 4u) << joined(names);
                       });
}
#endif

// No function follows itself in a backtrace of threads parked without
// recursion: a repeat is a return address read twice.
void expect_no_repeated_function(const std::vector<std::string>& names) {
  for (size_t i = 1; i < names.size(); ++i) {
    if (names[i] == "??") continue;
    EXPECT_NE(names[i], names[i - 1]) << "frame " << i << " repeats:" << joined(names);
  }
}

TEST(Unwind, NoParkedThreadRepeatsAFrame) {
  check_parked_threads(3, {testing::park_in_alpha, testing::park_in_beta, testing::park_in_gamma},
                       [](const ProcessSnapshot& s, size_t, const detail::SnapshotThread& t) {
                         expect_no_repeated_function(frame_names(s, t));
                       });
}

#if defined(__aarch64__)
// Frame 0 in `park_fn`, frame 1 its caller: whether the caller's address is
// still in x30 (a leaf) or only on the stack (x30 overwritten by a call).
void expect_caller_after(void (*body)(), const char* park_fn, const char* caller) {
  check_parked_threads(2, {body}, [&](const ProcessSnapshot& s, size_t, const detail::SnapshotThread& t) {
    std::vector<std::string> names = frame_names(s, t);
    ASSERT_GE(names.size(), 3u) << joined(names);
    EXPECT_NE(names[0].find(park_fn), std::string::npos) << joined(names);
    EXPECT_NE(names[1].find(caller), std::string::npos) << joined(names);
    expect_no_repeated_function(names);
  });
}

TEST(Unwind, Aarch64LeafCallerIsTheLinkRegister) {
  expect_caller_after(testing::park_in_leaf_caller, "panicstop_test_park_leaf", "park_in_leaf_caller");
}

TEST(Unwind, Aarch64StaleLinkRegisterIsNotTheCaller) {
  expect_caller_after(testing::park_in_after_call_caller, "panicstop_test_park_after_call",
                      "park_in_after_call_caller");
}

// glibc's blocking calls (pause, nanosleep) call out to the cancellation
// helpers before their system call: the case the report showed twice.
std::atomic<bool> g_pause_done{false};
__attribute__((noinline)) void park_in_pause() {
  while (!g_pause_done.load()) pause();
  __asm__ volatile("" ::: "memory");
}

TEST(Unwind, Aarch64LibcPauseIsShownOnce) {
  ASSERT_TRUE(detail::reserve_snapshot());
  struct sigaction sa {}, old {};
  sa.sa_handler = [](int) {};
  sigaction(SIGUSR2, &sa, &old);
  g_pause_done = false;
  {
    ParkedThreads parked(2, {park_in_pause});
    ASSERT_TRUE(parked.stop());
    ProcessSnapshot* s = detail::capture_snapshot();
    ASSERT_NE(s, nullptr);
    detail::symbolizer_begin(*s);
    for (int tid : parked.tids()) {
      std::vector<std::string> names = frame_names(*s, *find_thread(*s, tid));
      EXPECT_TRUE(has_frame(names, "park_in_pause")) << joined(names);
      expect_no_repeated_function(names);
    }
    detail::symbolizer_end();
    parked.restart();
    // Wake the pausing threads until each has left (its task is gone).
    g_pause_done = true;
    for (int tid : parked.tids())
      while (testing::kernel_state(tid) != '?') {
        sys::tgkill(getpid(), tid, SIGUSR2);
        std::this_thread::yield();
      }
  }
  sigaction(SIGUSR2, &old, nullptr);
}
#endif

// A thread stopped inside a signal handler: the walk goes through the
// handler, the signal trampoline, and on into the code it interrupted.
__attribute__((noinline)) void park_in_handler(int) {
  testing::park_in_gamma();
  __asm__ volatile("" ::: "memory");  // not a tail call: keep the handler's frame
}

TEST(Unwind, WalksThroughASignalHandler) {
  ASSERT_TRUE(detail::reserve_snapshot());
  struct sigaction sa {}, old {};
  sa.sa_handler = park_in_handler;
  sigaction(SIGUSR1, &sa, &old);
  ParkedThreads parked(1, {testing::park_in_alpha});
  int tid = parked.tids()[0];
  sys::tgkill(getpid(), tid, SIGUSR1);
  // The handler runs asynchronously: stop and look until it is parked.
  ProcessSnapshot* s = nullptr;
  std::vector<std::string> names;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    while (testing::kernel_state(tid) != 'S') std::this_thread::yield();
    ASSERT_TRUE(parked.stop());
    s = detail::capture_snapshot();
    ASSERT_NE(s, nullptr);
    detail::symbolizer_begin(*s);
    names = frame_names(*s, *find_thread(*s, tid));
    detail::symbolizer_end();
    parked.restart();
    if (has_frame(names, "park_in_gamma")) break;  // the handler has started
  }
  EXPECT_TRUE(has_frame(names, "park_in_handler")) << joined(names);
  EXPECT_TRUE(has_frame(names, "park_in_alpha")) << joined(names);
  size_t gamma = 0, alpha = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].find("park_in_gamma") != std::string::npos) gamma = i;
    if (names[i].find("park_in_alpha") != std::string::npos) alpha = i;
  }
  EXPECT_LT(gamma, alpha) << joined(names);
  // The interrupted PC itself (inside the first futex_wait) is only found
  // through the ucontext: a frame-pointer guess skips it.
  size_t waits = 0;
  for (const auto& n : names) waits += n.find("futex_wait") != std::string::npos;
  EXPECT_EQ(waits, 2u) << joined(names);
  sigaction(SIGUSR1, &old, nullptr);
}

// Garbage registers and a garbage stack give a short backtrace, never a fault
// or a loop.
TEST(Unwind, SurvivesGarbageRegisters) {
  ProcessSnapshot* s = detail::capture_snapshot();
  ASSERT_NE(s, nullptr);
  static detail::SavedContext ctx;
  std::mt19937_64 rng(42);
  std::vector<uint64_t> fake_stack(4096);
  for (int round = 0; round < 1000; ++round) {
    for (auto& w : fake_stack) {
      // Mix pointers into real code, into the fake stack, and noise.
      switch (rng() % 4) {
        case 0: w = rng(); break;
        case 1: w = reinterpret_cast<uintptr_t>(&fake_stack[rng() % fake_stack.size()]); break;
        case 2: w = s->modules[rng() % s->module_count].start + rng() % 0x10000; break;
        default: w = 0; break;
      }
    }
    ctx = detail::SavedContext{};
    ctx.valid = true;
#if defined(__x86_64__)
    for (int r = 0; r < NGREG; ++r) ctx.ucontext.uc_mcontext.gregs[r] = greg_t(fake_stack[rng() % fake_stack.size()]);
    ctx.ucontext.uc_mcontext.gregs[REG_RSP] = greg_t(reinterpret_cast<uintptr_t>(&fake_stack[rng() % 4000]));
    ctx.ucontext.uc_mcontext.gregs[REG_RBP] = greg_t(reinterpret_cast<uintptr_t>(&fake_stack[rng() % 4000]));
    ctx.ucontext.uc_mcontext.gregs[REG_RIP] =
        greg_t(s->modules[rng() % s->module_count].start + rng() % 0x100000);
#elif defined(__aarch64__)
    for (auto& r : ctx.ucontext.uc_mcontext.regs) r = fake_stack[rng() % fake_stack.size()];
    ctx.ucontext.uc_mcontext.sp = reinterpret_cast<uintptr_t>(&fake_stack[rng() % 4000]);
    ctx.ucontext.uc_mcontext.regs[29] = reinterpret_cast<uintptr_t>(&fake_stack[rng() % 4000]);
    ctx.ucontext.uc_mcontext.pc = s->modules[rng() % s->module_count].start + rng() % 0x100000;
#endif
    detail::SnapshotThread t;
    t.context = &ctx;
    t.stack_lo = reinterpret_cast<uintptr_t>(fake_stack.data());
    t.stack_hi = t.stack_lo + fake_stack.size() * sizeof(uint64_t);
    detail::unwind_thread(*s, &t);
    ASSERT_LE(t.frame_count, detail::kMaxFrames);
    ASSERT_GE(t.frame_count, 1u);
  }
}

TEST(Symbolize, NamesAFunctionOfThisProgram) {
  ProcessSnapshot* s = detail::capture_snapshot();
  ASSERT_NE(s, nullptr);
  detail::symbolizer_begin(*s);
  detail::SymbolInfo info;
  auto pc = reinterpret_cast<uintptr_t>(&testing::park_in_beta) + 2;
  ASSERT_TRUE(detail::symbolize(*s, pc, false, &info));
  EXPECT_NE(std::string(info.name).find("park_in_beta"), std::string::npos) << info.name;
  EXPECT_EQ(info.offset, 2u);
  ASSERT_NE(info.module, nullptr);
  EXPECT_TRUE(info.module->is_executable);
  // Nothing is mapped at address 16.
  EXPECT_FALSE(detail::symbolize(*s, 16, false, &info));
  EXPECT_EQ(info.module, nullptr);
  detail::symbolizer_end();
}

// A thread that overflows its stack faults with its stack pointer in the
// guard below the stack, an unreadable mapping of its own: the walk must go
// on into the stack above it, where every caller is. It stopped at frame 0
// when the walk's bounds were the guard (a Rust program's "thread 'deep' has
// overflowed its stack" showed one frame, gdb on the same core thousands).
TEST(Unwind, AStackOverflowInAThreadWalksOnAboveTheGuard) {
  testing::TempDir dir;
  testing::CrashDumps d = testing::crash_with_dumps(dir.path(), [] {
    install();
    std::thread([] {
      set_thread_name("deep");
      testing::say(std::to_string(testing::overflow_the_stack(0)));
    }).join();
  }, {{"PANICSTOP_DUMP", "text"}});
  ASSERT_FALSE(d.child.hung) << d.child.describe();
  ASSERT_NE(d.report.find("panic: fatal signal SIGSEGV"), std::string::npos) << d.child.output;
  ASSERT_NE(d.report.find("(deep) [panicking]"), std::string::npos) << d.report;
  size_t frames = 0;
  for (size_t at = d.report.find("overflow_the_stack"); at != std::string::npos;
       at = d.report.find("overflow_the_stack", at + 1))
    ++frames;
  EXPECT_GE(frames, 16u) << d.report.substr(0, 3000);
}

}  // namespace
}  // namespace panicstop
