#include "dump/dump_step.hpp"

#include "dump/dump_files.hpp"
#include "dump/dump_options.hpp"
#include "dump/elf_core.hpp"
#include "dump/minidump.hpp"
#include "dump/upload_step.hpp"
#include "dump/writer.hpp"
#include "panic/panic_state.hpp"
#include "sys/format.hpp"
#include "sys/syscall.hpp"

namespace panicstop::detail {

namespace {

CrashRecord* g_record = nullptr;     // set by the capture step once it succeeded, or by the salvage
CrashRecord* g_capturing = nullptr;  // the record the capture step is filling
bool g_capture_ran = false;

// The nested panics the panic layer recorded so far.
void copy_nested(CrashFacts& f) noexcept {
  const PanicState& ps = panic_state();
  uint32_t n = ps.nested_count.load(std::memory_order_acquire);
  if (n > kMaxNestedPanics) n = kMaxNestedPanics;
  if (n > kCrashNestedMax) n = kCrashNestedMax;
  uint32_t i = f.nested_count;
  for (; i < n; ++i) {
    const NestedPanic& from = ps.nested[i];
    // Claimed but not yet written (another thread is recording it right
    // now): stop here; the next writer's step picks it up.
    if (!from.ready.load(std::memory_order_acquire)) break;
    CrashNested& to = f.nested[i];
    to.tid = from.tid;
    to.signo = from.signo;
    to.step = from.step;
    to.same_thread = from.same_thread;
    format_step_name(from.step, from.step_detail, to.step_name, sizeof to.step_name);
    sys::copy_string(to.message, sizeof to.message, from.message);
  }
  if (i > f.nested_count) f.nested_count = i;
}

void fill_facts(CrashFacts& f) noexcept {
  const PanicState& ps = panic_state();
  if (ps.panicking_tid.load(std::memory_order_acquire) != 0) {
    f.message = ps.message;
    f.signo = ps.signo;
    f.si_code = ps.si_code;
    f.fault_address = ps.fault_address;
  }
  f.stop_enabled = ps.stop_enabled;
  f.threads_stopped = ps.stop.stopped;
  f.start_ns = ps.start_ns;
  f.stopped_ns = ps.stop.end_ns;
  f.not_stopped_count = ps.stop.not_stopped;
  f.not_stopped_tids = ps.stop.not_stopped_tids;
  sys::copy_string(f.note, sizeof f.note, ps.note);
  copy_nested(f);
}

void say(const char* msg) noexcept { sys::write_stderr(msg, sys::bounded_strlen(msg, 256)); }

void capture_step() noexcept {
  g_capture_ran = true;
  CrashRecord& rec = reset_crash_record();
  fill_facts(rec.facts);
  g_capturing = &rec;
  if (!capture_crash_record(rec)) {
    say("panicstop: no dump: the snapshot memory could not be reserved\n");
    return;
  }
  g_record = &rec;
  set_earlier_fault(rec, panic_state().earlier_fault);
  set_stack_overflow(rec);
  begin_dump_set(rec, dump_options(), nullptr, -1);
}

// The capture step faulted or overran its deadline: the facts were filled
// before it began, and the snapshot keeps what was taken before the failure
// (salvage_capture() says where it stopped in the snapshot's gaps, and the
// nested panic says how). That is still worth every dump.
void salvage_step() noexcept {
  if (g_capturing == nullptr || g_record != nullptr) return;
  const ProcessSnapshot* snap = salvage_capture();
  if (snap == nullptr) return;
  g_capturing->snapshot = snap;
  g_record = g_capturing;
  say("panicstop: the capture step failed; the dumps hold what it had taken\n");
  begin_dump_set(*g_record, dump_options(), nullptr, -1);
}

uint32_t writer_count() noexcept {
  if (g_record == nullptr) {
    if (g_capture_ran && dump_options().order_count > 0) say("panicstop: no dump: the capture step failed\n");
    return 0;
  }
  return dump_options().order_count;
}

const DumpWriter* writer_at(uint32_t i) noexcept {
  const DumpOptions& o = dump_options();
  size_t count = 0;
  const DumpWriter* writers = dump_writers(&count);
  if (i >= o.order_count || o.order[i] >= count) return nullptr;
  return &writers[o.order[i]];
}

const char* writer_name(uint32_t i) noexcept {
  const DumpWriter* w = writer_at(i);
  return w != nullptr ? w->name : nullptr;
}

void write_step(uint32_t i) noexcept {
  const DumpWriter* w = writer_at(i);
  if (g_record == nullptr || w == nullptr) return;
  copy_nested(g_record->facts);
  write_dump(*g_record, dump_options(), *w);
}

void finish_step() noexcept {
  if (g_record != nullptr) end_dump_set();
}

// With PANICSTOP_UPLOAD_URL set, the files just written leave the machine
// before the process dies (upload_step.hpp): a step of its own, whose
// deadline is the upload's timeout plus a step's worth for the kill and reap.
void upload_step() noexcept {
  if (g_record != nullptr) run_upload_step();
}
int64_t upload_budget_ns() noexcept {
  const UploadPlan& plan = upload_plan();
  return plan.enabled ? int64_t(plan.timeout_ms) * 1'000'000 : 0;
}

constexpr CrashSteps kSteps = {capture_step, writer_count, writer_name,      write_step,
                               finish_step,  upload_step,  upload_budget_ns, salvage_step};

}  // namespace

const CrashRecord* panic_crash_record() noexcept { return g_record; }

void register_dump_step() noexcept {
  install_dump_options();
  // Reserving now keeps mmap out of the crash path; if it fails here, the
  // capture tries again at the panic.
  reserve_snapshot();
  reserve_elf_core();
  reserve_minidump();
  set_crash_steps(&kSteps);
}

}  // namespace panicstop::detail
