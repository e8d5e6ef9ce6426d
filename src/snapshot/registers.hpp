// The few registers the snapshot and the unwinder need, from a saved context.
#pragma once

#include <cstdint>
#include <ucontext.h>

#include "thread/slot.hpp"

namespace panicstop::detail {

#if defined(__x86_64__)
inline uintptr_t context_pc(const SavedContext& c) noexcept { return uintptr_t(c.ucontext.uc_mcontext.gregs[REG_RIP]); }
inline uintptr_t context_sp(const SavedContext& c) noexcept { return uintptr_t(c.ucontext.uc_mcontext.gregs[REG_RSP]); }
inline uintptr_t context_fp(const SavedContext& c) noexcept { return uintptr_t(c.ucontext.uc_mcontext.gregs[REG_RBP]); }
#elif defined(__aarch64__)
inline uintptr_t context_pc(const SavedContext& c) noexcept { return uintptr_t(c.ucontext.uc_mcontext.pc); }
inline uintptr_t context_sp(const SavedContext& c) noexcept { return uintptr_t(c.ucontext.uc_mcontext.sp); }
inline uintptr_t context_fp(const SavedContext& c) noexcept { return uintptr_t(c.ucontext.uc_mcontext.regs[29]); }
#endif

// The stack pointer a thread saved, preferring the explicit field.
inline uintptr_t saved_stack_pointer(const SavedContext& c) noexcept {
  return c.stack_pointer != 0 ? c.stack_pointer : context_sp(c);
}

}  // namespace panicstop::detail
