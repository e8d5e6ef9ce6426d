#include "support/faults.hpp"

#include <ucontext.h>

#include <cstdint>

asm(".text\n.globl panicstop_test_load_at_entry\n.type panicstop_test_load_at_entry,@function\n"
    "panicstop_test_load_at_entry:\n"
#if defined(__x86_64__)
    "  movq (%rdi), %rax\n  ret\n"
#elif defined(__aarch64__)
    "  ldr x0, [x0]\n  ret\n"
#endif
    ".size panicstop_test_load_at_entry, .-panicstop_test_load_at_entry\n");

namespace panicstop::testing {

void (*resume_at)() = nullptr;
bool resume_as_called_from_the_fault = true;

void resume_elsewhere(int, siginfo_t*, void* ucontext) {
  auto* uc = static_cast<ucontext_t*>(ucontext);
#if defined(__x86_64__)
  uintptr_t from = resume_as_called_from_the_fault ? uintptr_t(uc->uc_mcontext.gregs[REG_RIP]) : 0;
  uintptr_t sp = ((uintptr_t(uc->uc_mcontext.gregs[REG_RSP]) - 256) & ~uintptr_t(15)) - 8;
  *reinterpret_cast<uintptr_t*>(sp) = from;  // the return address
  uc->uc_mcontext.gregs[REG_RSP] = greg_t(sp);
  uc->uc_mcontext.gregs[REG_RIP] = greg_t(reinterpret_cast<uintptr_t>(resume_at));
#elif defined(__aarch64__)
  uc->uc_mcontext.regs[30] = resume_as_called_from_the_fault ? uc->uc_mcontext.pc : 0;
  uc->uc_mcontext.sp = (uc->uc_mcontext.sp - 256) & ~uint64_t(15);
  uc->uc_mcontext.pc = reinterpret_cast<uintptr_t>(resume_at);
#endif
}

namespace {
volatile int g_overflow_depth_limit = 1 << 30;  // never reached: the stack ends first
}  // namespace

int overflow_the_stack(int depth) {
  volatile char frame[512];
  frame[0] = char(depth);
  if (depth > g_overflow_depth_limit) return frame[0];
  int r = overflow_the_stack(depth + 1);
  __asm__ volatile("" : "+r"(r));  // no accumulator loop: every call keeps its frame
  return r + frame[0];
}

}  // namespace panicstop::testing
