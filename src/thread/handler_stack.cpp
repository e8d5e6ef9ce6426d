// The handlers' entry wrapper (handler_stack.hpp). Crash path: raw system
// calls, no calls at all before the switch, and nothing of its own on the
// foreign stack but registers and return addresses: its state lives at the top
// of the stack it switches to.
#include "thread/handler_stack.hpp"

// The budget on a foreign stack holds only when the helpers below (and the
// raw system-call wrappers) are inlined into the entry: unoptimized, each is
// a call with a frame of its own and a program's 4 KiB sigaltstack overflows.
// src/CMakeLists.txt passes -O2 for this file in every build type; a build
// that loses that flag fails here instead of at the first signal.
#if !defined(__OPTIMIZE__)
#error "thread/handler_stack.cpp must be compiled with optimization (-O2): see src/CMakeLists.txt"
#endif
// The same for inlining: -O2 does not undo a -fno-inline of the user's flags,
// under which std::atomic's members and altstack_pool's helpers become calls
// (the sys:: wrappers and the helpers below are always_inline, those are
// not). src/CMakeLists.txt turns inlining back on for this file; gcc and
// clang define __NO_INLINE__ while it is off.
#if defined(__NO_INLINE__)
#error "thread/handler_stack.cpp must be compiled with inlining on (not -fno-inline): see src/CMakeLists.txt"
#endif

#include <atomic>
#include <cstdint>
#include <ucontext.h>

#include "sys/syscall.hpp"
#include "thread/altstack_pool.hpp"

// void panicstop_call_on_stack(void* arg, void (*fn)(void*), void* top):
// calls fn(arg) with the stack pointer at top (16-byte aligned) and returns
// on the stack it was called on. The frame pointer keeps the caller's stack
// pointer and the CFA is defined from it, so an unwinder walks from fn back
// to the foreign stack, the kernel's signal frame and the interrupted code.
#if defined(__x86_64__)
asm(R"(
  .pushsection .text
  .p2align 4
  .globl panicstop_call_on_stack
  .hidden panicstop_call_on_stack
  .type panicstop_call_on_stack, @function
panicstop_call_on_stack:
  .cfi_startproc
  pushq %rbp
  .cfi_def_cfa_offset 16
  .cfi_offset %rbp, -16
  movq %rsp, %rbp
  .cfi_def_cfa_register %rbp
  movq %rdx, %rsp
  callq *%rsi
  .globl panicstop_call_on_stack_return
  .hidden panicstop_call_on_stack_return
panicstop_call_on_stack_return:
  movq %rbp, %rsp
  .cfi_def_cfa_register %rsp
  popq %rbp
  .cfi_def_cfa_offset 8
  .cfi_restore %rbp
  retq
  .cfi_endproc
  .size panicstop_call_on_stack, .-panicstop_call_on_stack
  .popsection
)");
#elif defined(__aarch64__)
asm(R"(
  .pushsection .text
  .p2align 2
  .globl panicstop_call_on_stack
  .hidden panicstop_call_on_stack
  .type panicstop_call_on_stack, %function
panicstop_call_on_stack:
  .cfi_startproc
  hint #34
  stp x29, x30, [sp, #-16]!
  .cfi_def_cfa_offset 16
  .cfi_offset x29, -16
  .cfi_offset x30, -8
  mov x29, sp
  .cfi_def_cfa_register x29
  mov sp, x2
  blr x1
  .globl panicstop_call_on_stack_return
  .hidden panicstop_call_on_stack_return
panicstop_call_on_stack_return:
  mov sp, x29
  .cfi_def_cfa_register sp
  ldp x29, x30, [sp], #16
  .cfi_def_cfa_offset 0
  .cfi_restore x29
  .cfi_restore x30
  ret
  .cfi_endproc
  .size panicstop_call_on_stack, .-panicstop_call_on_stack
  .popsection
)");
#else
#error "panicstop supports x86_64 and aarch64"
#endif

extern "C" void panicstop_call_on_stack(void* arg, void (*fn)(void*), void* top) noexcept;

namespace panicstop::detail {

using namespace altstack_pool;

namespace {

// One switched handler call. It sits at the top of the panicstop stack.
struct alignas(16) Switch {
  SignalHandler fn;
  int sig;
  siginfo_t* info;
  void* uc;
  uint64_t all_blocked;
  uint64_t handler_mask;  // the mask the kernel gave the handler
  stack_t ours;
  stack_t previous;
  int32_t pool_entry;  // -1: an emergency stack
  int32_t emergency;
  bool loan;           // the pool entry is the thread's for this call only
  bool registered;     // ours replaced `previous` as the sigaltstack
  bool keep;           // the thread had no sigaltstack: ours stays
};

__attribute__((always_inline)) inline uintptr_t stack_pointer() noexcept {
  uintptr_t sp;
#if defined(__x86_64__)
  asm volatile("movq %%rsp, %0" : "=r"(sp));
#else
  asm volatile("mov %0, sp" : "=r"(sp));
#endif
  return sp;
}

__attribute__((always_inline)) inline bool within(uintptr_t sp, const unsigned char* base, size_t bytes) noexcept {
  return sp > uintptr_t(base) && sp <= uintptr_t(base) + bytes;
}

void run_switched(void* arg) noexcept {
  auto* s = static_cast<Switch*>(arg);
  // Nested signals (a fault in the panic path, a hard stop during a soft
  // stop, the step watchdog) must land below this frame: with the foreign
  // stack still registered the kernel would put them at its top, over the
  // frame of the signal being handled. Every signal is blocked until then.
  s->registered = sys::raw_syscall(SYS_sigaltstack, &s->ours, &s->previous) == 0;
  auto* uc = static_cast<ucontext_t*>(s->uc);
  if (s->registered && s->pool_entry >= 0 && uc != nullptr && (uc->uc_stack.ss_flags & SS_DISABLE) != 0) {
    // No sigaltstack when the signal came (not even a disarmed one, which the
    // return would re-arm): keep ours, as ensure_altstack() would have, so
    // that a stack overflow of this thread can still be handled.
    s->keep = true;
    uc->uc_stack = s->ours;
  }
  sys::rt_sigprocmask(SIG_SETMASK, &s->handler_mask, nullptr);
  s->fn(s->sig, s->info, s->uc);
  sys::rt_sigprocmask(SIG_SETMASK, &s->all_blocked, nullptr);
}

// Apart from run_on_handler_stack so that its fast path is a jump to fn with
// no frame of its own.
__attribute__((noinline, no_stack_protector)) void switch_and_run(int sig, siginfo_t* info, void* uc,
                                                                   SignalHandler fn, unsigned char* pool) noexcept {
  int tid = sys::gettid();
  int32_t entry = tls_index;
  bool loan = false;
  if (entry < 0 || g_owner[entry].load(std::memory_order_relaxed) != tid) {
    size_t claimed = claim(tid);
    entry = claimed != kNoEntry ? int32_t(claimed) : -1;
    loan = entry >= 0;
  }
  int32_t emergency = -1;
  unsigned char* stack;
  if (entry >= 0) {
    stack = pool + size_t(entry) * kAltStackSize;
  } else {
    for (size_t i = 0; i < kEmergencyStacks && emergency < 0; ++i)
      if (!g_emergency_taken[i].exchange(true, std::memory_order_acquire)) emergency = int32_t(i);
    if (emergency < 0) return fn(sig, info, uc);  // nothing left: run where we are
    stack = g_emergency + size_t(emergency) * kAltStackSize;
  }

  auto* s = reinterpret_cast<Switch*>(stack + kAltStackSize - sizeof(Switch));
  s->fn = fn;
  s->sig = sig;
  s->info = info;
  s->uc = uc;
  s->all_blocked = ~uint64_t(0);
  s->ours.ss_sp = usable_bottom(stack);
  s->ours.ss_flags = 0;
  s->ours.ss_size = kUsableSize;
  s->pool_entry = entry;
  s->emergency = emergency;
  s->loan = loan;
  s->registered = false;
  s->keep = false;
  sys::rt_sigprocmask(SIG_SETMASK, &s->all_blocked, &s->handler_mask);
  panicstop_call_on_stack(s, run_switched, s);
  // Back on the foreign stack, signals still blocked: only from here may the
  // foreign stack be registered again (the kernel refuses to change the
  // sigaltstack of a thread running on it).
  if (s->registered && !s->keep) sys::raw_syscall(SYS_sigaltstack, &s->previous, nullptr);
  // s lives on the stack about to be given back: read it first.
  uint64_t mask = s->handler_mask;
  int32_t used_emergency = s->emergency;
  int32_t used_entry = s->pool_entry;
  bool returned = s->loan && !s->keep;
  bool kept = s->loan && s->keep;
  if (used_emergency >= 0) g_emergency_taken[used_emergency].store(false, std::memory_order_release);
  else if (returned) give_back(size_t(used_entry));
  // A thread that had no sigaltstack keeps the loan as its own stack: naming
  // it in TLS lets the thread give it back when it exits. Never over the
  // creator's entry in TLS shared with a raw clone().
  else if (kept && tls_index < 0) tls_index = used_entry;
  sys::rt_sigprocmask(SIG_SETMASK, &mask, nullptr);
}

}  // namespace

__attribute__((no_stack_protector)) void run_on_handler_stack(int sig, siginfo_t* info, void* uc,
                                                              SignalHandler fn) noexcept {
  unsigned char* pool = __atomic_load_n(&g_pool, __ATOMIC_ACQUIRE);
  uintptr_t sp = stack_pointer();
  if (pool == nullptr || within(sp, pool, g_entries * kAltStackSize) ||
      within(sp, g_emergency, kEmergencyStacks * kAltStackSize))
    return fn(sig, info, uc);
  return switch_and_run(sig, info, uc, fn, pool);
}

}  // namespace panicstop::detail
