#include "witness/report.hpp"

#include <unwind.h>

#include <atomic>
#include <new>

#include "panicstop/panic.hpp"
#include "panicstop/witness.hpp"
#include "sys/syscall.hpp"

namespace panicstop {

namespace detail {
namespace {

InternalSpinLock g_report_lock;
char g_report_buffer[16384];
alignas(sys::FixedWriter) unsigned char g_writer_storage[sizeof(sys::FixedWriter)];
std::atomic<uint64_t> g_report_count{0};

struct UnwindState {
  Stack* st;
  int skip;
};

_Unwind_Reason_Code unwind_step(struct _Unwind_Context* ctx, void* arg) {
  auto* s = static_cast<UnwindState*>(arg);
  uintptr_t ip = _Unwind_GetIP(ctx);
  if (ip == 0) return _URC_END_OF_STACK;
  if (s->skip > 0) {
    --s->skip;
    return _URC_NO_REASON;
  }
  if (s->st->depth >= kWitnessStackDepth) return _URC_END_OF_STACK;
  s->st->pc[s->st->depth++] = ip;
  return _URC_NO_REASON;
}

}  // namespace

void capture_stack(Stack* st, int skip) noexcept {
  st->depth = 0;
  st->tid = current_tid();
  UnwindState s{st, skip + 1};  // +1: capture_stack itself
  _Unwind_Backtrace(unwind_step, &s);
}

void write_stack(sys::FixedWriter& w, const Stack& st) noexcept {
  if (st.depth == 0) {
    w.str("   (no stack)\n");
    return;
  }
  for (int i = 0; i < st.depth; ++i) {
    w.str("   #").udec(uint64_t(i)).ch(' ');
    write_address(w, st.pc[i]);
    w.ch('\n');
  }
}

Report::Report() noexcept {
  if (!g_report_lock.try_acquire()) return;
  w_ = new (g_writer_storage) sys::FixedWriter(g_report_buffer, sizeof g_report_buffer);
}

Report::~Report() {
  if (w_ != nullptr && !finished_) g_report_lock.release();
}

void Report::finish(const char* headline) noexcept {
  if (w_ == nullptr || finished_) return;
  finished_ = true;
  if (w_->truncated()) w_->str("\n(report truncated)\n");
  if (sys::stderr_takes_messages()) sys::write_all(2, w_->data(), w_->size());
  g_report_count.fetch_add(1, std::memory_order_relaxed);
  g_report_lock.release();
  if (witness_action() == WitnessAction::kPanic) panic("witness: %s", headline);
}

}  // namespace detail

uint64_t witness_report_count() noexcept { return detail::g_report_count.load(std::memory_order_relaxed); }

}  // namespace panicstop
