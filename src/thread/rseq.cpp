// Letting go of the rseq area and taking it back: see rseq.hpp. Raw system
// calls only: this runs in the fault handler.
#include "thread/rseq.hpp"

#include <sys/syscall.h>

#include "sys/syscall.hpp"

#ifndef RSEQ_FLAG_UNREGISTER
#define RSEQ_FLAG_UNREGISTER 1
#endif

namespace panicstop::detail {

RseqLayout g_rseq_layout;

namespace {

void* area() noexcept { return static_cast<char*>(__builtin_thread_pointer()) + g_rseq_layout.offset; }

}  // namespace

RseqHold let_go_of_rseq() noexcept {
  RseqHold hold{};
#ifdef SYS_rseq
  if (g_rseq_layout.size == 0) return hold;
  hold.let_go = sys::raw_syscall(SYS_rseq, area(), g_rseq_layout.size, RSEQ_FLAG_UNREGISTER,
                                 g_rseq_layout.signature) == 0;
#endif
  return hold;
}

void take_back_rseq(RseqHold hold) noexcept {
#ifdef SYS_rseq
  if (hold.let_go) sys::raw_syscall(SYS_rseq, area(), g_rseq_layout.size, 0, g_rseq_layout.signature);
#else
  (void)hold;
#endif
}

}  // namespace panicstop::detail
