#include "snapshot/unwind.hpp"

#include "snapshot/memory.hpp"
#include "snapshot/registers.hpp"

namespace panicstop::detail {

bool reserve_unwinder() noexcept { return true; }

void unwind_thread(const ProcessSnapshot& snap, SnapshotThread* t) noexcept {
  t->frame_count = 0;
  if (t->context == nullptr) return;
  uintptr_t pc = context_pc(*t->context);
  uintptr_t fp = context_fp(*t->context);
  t->frames[t->frame_count++] = pc;
  while (t->frame_count < kMaxFrames && fp >= t->stack_lo && fp + 16 <= t->stack_hi) {
    uintptr_t next[2];
    if (!read_memory(snap, fp, next, sizeof next) || next[1] == 0) break;
    t->frames[t->frame_count++] = next[1];
    if (next[0] <= fp) break;
    fp = next[0];
  }
}

}  // namespace panicstop::detail
