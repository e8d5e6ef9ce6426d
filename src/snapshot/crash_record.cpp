#include "snapshot/crash_record.hpp"

#include <csignal>

#include "snapshot/memory.hpp"
#include "stop/stop.hpp"

namespace panicstop::detail {

namespace {
CrashRecord g_record;
}  // namespace

uint32_t not_stopped_listed(const CrashFacts& facts) noexcept {
  if (facts.not_stopped_tids == nullptr) return 0;
  return facts.not_stopped_count < kMaxNotStoppedListed ? facts.not_stopped_count : uint32_t(kMaxNotStoppedListed);
}

bool listed_not_stopped(const CrashFacts& facts, int tid) noexcept {
  uint32_t n = not_stopped_listed(facts);
  for (uint32_t i = 0; i < n; ++i)
    if (facts.not_stopped_tids[i] == tid) return true;
  return false;
}

CrashRecord& reset_crash_record() noexcept {
  // Field by field: `g_record = CrashRecord{}` would build a 5 KB temporary
  // on the (alternate) stack first.
  CrashFacts& f = g_record.facts;
  f.message = nullptr;
  f.live_reason[0] = '\0';
  f.signo = f.si_code = 0;
  f.fault_address = 0;
  f.stop_enabled = true;
  f.threads_stopped = 0;
  f.start_ns = f.stopped_ns = 0;
  f.not_stopped_count = 0;
  f.not_stopped_tids = nullptr;
  f.nested_count = 0;
  f.note[0] = '\0';
  f.earlier_fault = {};
  g_record.snapshot = nullptr;
  return g_record;
}

bool capture_crash_record(CrashRecord& rec) noexcept {
  rec.snapshot = capture_snapshot();
  return rec.snapshot != nullptr;
}

void set_earlier_fault(CrashRecord& rec, const ResumedFault& fault) noexcept {
  if (fault.sig == 0 || rec.snapshot == nullptr) return;
  const ProcessSnapshot& s = *rec.snapshot;
  for (uint32_t i = 0; i < s.thread_count; ++i) {
    const SnapshotThread& t = s.threads[i];
    if (!t.is_panicking) continue;
    for (uint32_t k = 0; k < t.frame_count; ++k) {
      if (t.frames[k] == fault.pc) {
        rec.facts.earlier_fault = fault;
        return;
      }
    }
  }
}

void set_stack_overflow(CrashRecord& rec) noexcept {
  CrashFacts& f = rec.facts;
  if (rec.snapshot == nullptr || (f.signo != SIGSEGV && f.signo != SIGBUS) || f.si_code <= 0) return;
  const ProcessSnapshot& s = *rec.snapshot;
  for (uint32_t i = 0; i < s.thread_count; ++i) {
    const SnapshotThread& t = s.threads[i];
    if (!t.is_panicking) continue;
    // The snapshot's stack bounds already step over a guard that sp is in.
    uintptr_t sp = thread_stack_pointer(t), a = f.fault_address;
    if (t.stack_lo == 0 || a >= t.stack_lo || t.stack_lo - a > kStackOverflowReach ||
        sp >= t.stack_lo + kOverflowingSpReach)
      return;
    f.overflowed_stack_lo = t.stack_lo;
    f.overflowed_stack_hi = t.stack_hi;
    return;
  }
}

}  // namespace panicstop::detail
