#include "snapshot/unwind.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "snapshot/parked_threads.hpp"
#include "snapshot/symbolize.hpp"

namespace panicstop {
namespace testing {

#if defined(__x86_64__)
// Sleeps in the futex with rbp zeroed, in a function built without a frame
// pointer that saved its caller's rbp on the stack (the clobber makes the
// compiler do so, and say where in its CFI): only a CFI unwinder gets past it.
__attribute__((noinline, optimize("omit-frame-pointer"))) void park_without_frame_pointer() {
  uint32_t seen = g_park_release.load();
  while (g_park_release.load() == seen) {
    long ret;
    register long r10 __asm__("r10") = 0;
    __asm__ volatile(
        "xor %%ebp, %%ebp\n\t"
        "syscall"
        : "=a"(ret)
        : "a"(long(SYS_futex)), "D"(&g_park_release), "S"(long(128 /* FUTEX_WAIT_PRIVATE */)), "d"(long(seen)),
          "r"(r10)
        : "rcx", "r11", "rbp", "memory");
    (void)ret;
  }
  __asm__ volatile("" ::: "memory");
}
__attribute__((noinline)) void park_in_delta() {
  park_without_frame_pointer();
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

TEST(Unwind, EveryParkedThreadShowsItsFunction) {
  ASSERT_TRUE(detail::reserve_snapshot());
  ParkedThreads parked(6, {testing::park_in_alpha, testing::park_in_beta, testing::park_in_gamma});
  ASSERT_TRUE(parked.stop());
  ProcessSnapshot* s = detail::capture_snapshot();
  ASSERT_NE(s, nullptr);
  detail::symbolizer_begin(*s);
  const char* expected[] = {"park_in_alpha", "park_in_beta", "park_in_gamma"};
  for (size_t i = 0; i < parked.tids().size(); ++i) {
    const detail::SnapshotThread* t = find_thread(*s, parked.tids()[i]);
    ASSERT_NE(t, nullptr);
    std::vector<std::string> names = frame_names(*s, *t);
    EXPECT_TRUE(has_frame(names, "park_until_released")) << joined(names);
    EXPECT_TRUE(has_frame(names, expected[i % 3])) << joined(names);
    // Past the park function into std::thread's machinery and libc.
    EXPECT_GE(t->frame_count, 4u) << joined(names);
  }
  detail::symbolizer_end();
  parked.restart();
}

#if defined(__x86_64__)
TEST(Unwind, CfiWalksPastAFunctionWithoutFramePointer) {
  ASSERT_TRUE(detail::reserve_snapshot());
  ParkedThreads parked(2, {testing::park_in_delta});
  ASSERT_TRUE(parked.stop());
  ProcessSnapshot* s = detail::capture_snapshot();
  ASSERT_NE(s, nullptr);
  detail::symbolizer_begin(*s);
  for (int tid : parked.tids()) {
    const detail::SnapshotThread* t = find_thread(*s, tid);
    ASSERT_NE(t, nullptr);
    ASSERT_NE(t->context, nullptr);
    EXPECT_EQ(t->context->ucontext.uc_mcontext.gregs[REG_RBP], 0);
    std::vector<std::string> names = frame_names(*s, *t);
    ASSERT_FALSE(names.empty());
    EXPECT_NE(names[0].find("park_without_frame_pointer"), std::string::npos) << joined(names);
    EXPECT_TRUE(has_frame(names, "park_in_delta")) << joined(names);
    EXPECT_GE(t->frame_count, 4u) << joined(names);
  }
  detail::symbolizer_end();
  parked.restart();
}
#endif

// Garbage registers and a garbage stack give a short backtrace, never a fault
// or a loop.
TEST(Unwind, SurvivesGarbageRegisters) {
  ProcessSnapshot* s = detail::capture_snapshot();
  ASSERT_NE(s, nullptr);
  static detail::SavedContext ctx;
  std::mt19937_64 rng(42);
  std::vector<uint64_t> fake_stack(4096);
  for (int round = 0; round < 2000; ++round) {
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

}  // namespace
}  // namespace panicstop
