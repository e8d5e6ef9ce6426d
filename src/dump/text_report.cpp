// The text report: what a person reads first after a crash. Layout (the
// reader in src/read/text_report_parser.cpp depends on it):
//
//   panic: MESSAGE
//   process PID (COMM): CMDLINE
//   panicking thread TID (NAME): signal SIGSEGV (SEGV_MAPERR), fault address 0x10
//   N threads: S stopped, K not stopped
//   W kernel workers: ...                                   (if any: io_uring's, vhost's threads)
//   incomplete: 3808 of 12000 mappings left out (...)   (one per CaptureGaps item, if any;
//                                                        the first says where a failed capture stopped)
//   note: N threads run without an alternate signal stack (...)   (if the pool ran out)
//
//   thread TID (NAME) [panicking] R
//     signal SIGSEGV (SEGV_MAPERR), fault address 0x10
//     stack overflow: the fault address is N bytes below ...   (a fault in the guard below its stack;
//                                                               the header line then ends ", a stack overflow")
//     12 ms before: signal SIGSEGV (...), at PC; the program's handler resumed   (a panic that names no
//       the thread at PC2 instead of returning to it                          fault of its own: abort())
//     #0 0x... function+0xOFF (module)
//   thread TID (NAME) [stopped] S
//     waiting for mutex "cache" (0x...) held by thread TID
//     holding mutex "config" (0x...) locked at server.cpp:42      (with WITNESS)
//   thread TID (NAME) [stopped] S
//     (2 threads with this stack)
//     #0 ...
//   thread TID (NAME) [not_stopped] S
//     did not stop: state S, blocked in syscall 0 (read), wchan pipe_read, ...
//       ...hard-stop signal blocked; pc and sp from /proc/self/task/TID/syscall   (one line)
//     #0 0x... read+0x12 (libc.so.6)
//   thread TID (NAME) [stopped] S       (beyond the registry's kMaxThreads slots: parked, no registers saved)
//     stopped, registers not saved (no slot of its own): state S, blocked in syscall 202 (futex), ...
//   thread TID (NAME) [not_stopped] R
//     did not stop: state R, running, hard-stop signal blocked; no registers
//     (no registers: the thread was running)
//   thread TID (iou-wrk-PID) [kernel_worker] S
//     a kernel worker (io_uring, vhost): it runs no program code, ...
//     (no frames)
//
//   locks:
//     0xADDR kind=mutex name=cache owner=TID readers=0 waiters=TID,TID
//   nested panics:
//   threads that did not stop:
//   modules:
//
// Consecutive "thread" lines followed by one stack all share that stack.
// A frame's function is demangled as c++filt prints it ("ns::f(int) const
// [clone .cold]": spaces, parentheses and commas included; the offset and
// the last parenthesized group delimit it), or the symbol's own spelling
// when it cannot be.
#include "dump/text_report.hpp"

#include <csignal>

#include "dump/text_sections.hpp"

#include "snapshot/memory.hpp"
#include "snapshot/symbolize.hpp"
#include "snapshot/unwind.hpp"
#include "stop/stop.hpp"
#include "sys/demangle.hpp"
#include "sys/format.hpp"
#include "sys/heap_sort.hpp"
#include "sys/signal_names.hpp"
#include "sys/syscall.hpp"
#include "sys/syscall_names.hpp"
#include "thread/altstack.hpp"
#include "thread/signal_sections.hpp"

namespace panicstop::detail {

char ReportOut::buffer_[64 * 1024];

void ReportOut::write(const char* s, size_t n) noexcept {
  while (n > 0) {
    if (used_ == sizeof buffer_) flush();
    size_t take = sizeof buffer_ - used_ < n ? sizeof buffer_ - used_ : n;
    for (size_t i = 0; i < take; ++i) buffer_[used_ + i] = s[i];
    used_ += take;
    s += take;
    n -= take;
  }
}

void ReportOut::line(const char* fmt, ...) noexcept {
  char text[1024];
  va_list ap;
  va_start(ap, fmt);
  size_t n = sys::vformat_line(text, sizeof text, fmt, ap);
  va_end(ap);
  write(text, n);
}

bool ReportOut::flush() noexcept {
  // The report on stderr (no usable directory, kdb's report backend) gets the
  // same bound as every other crash-path message there.
  if (used_ > 0 && ok_) ok_ = fd_ == 2 ? sys::write_stderr(buffer_, used_) : sys::write_all(fd_, buffer_, used_);
  used_ = 0;
  return ok_;
}

namespace {

// "signal SIGSEGV (SEGV_MAPERR: address not mapped), fault address 0x10"
void describe_signal(char* out, size_t cap, int sig, int code, uintptr_t address, bool with_code) noexcept {
  sys::FixedWriter w(out, cap);
  const char* name = sys::signal_name(sig);
  if (name != nullptr)
    w.format("signal %s", name);
  else
    w.format("signal %d", sig);
  if (!with_code) return;
  const char* cname = sys::si_code_name(sig, code);
  const char* meaning = sys::si_code_meaning(sig, code);
  if (cname != nullptr && meaning != nullptr)
    w.format(" (%s: %s)", cname, meaning);
  else if (cname != nullptr)
    w.format(" (%s)", cname);
  else
    w.format(" (code %d)", code);
  bool fault = code > 0 && (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP);
  if (fault) w.format(", fault address 0x%lx", static_cast<unsigned long>(address));
}

const char* wait_mode_name(WaitMode mode) noexcept {
  switch (mode) {
    case WaitMode::kShared: return "shared ";
    case WaitMode::kCondVar: return "condvar on ";
    default: return "";
  }
}

const SnapshotLock* lock_record(const ProcessSnapshot& snap, const LockObject* lo) noexcept {
  for (uint32_t i = 0; i < snap.lock_count; ++i)
    if (snap.locks[i].lock == lo) return &snap.locks[i];
  return nullptr;
}

// "did not stop: state S, blocked in syscall 0 (read), wchan pipe_read,
// hard-stop signal blocked; pc and sp from /proc/self/task/TID/syscall"
void describe_kernel_view(sys::FixedWriter& w, const SnapshotThread& t) noexcept {
  const KernelView& k = t.kernel;
  if (t.stopped_unsaved)
    w.format("stopped, registers not saved (no slot of its own): state %c", t.kernel_state);
  else
    w.format("did not stop: state %c", t.kernel_state);
  switch (k.source) {
    case KernelView::Source::kSyscall:
      w.format(", blocked in syscall %ld", k.syscall_nr);
      if (const char* name = sys::syscall_name(k.syscall_nr)) w.format(" (%s)", name);
      break;
    case KernelView::Source::kBlocked: w.str(", blocked outside a system call"); break;
    case KernelView::Source::kRunning: w.str(", running"); break;
    case KernelView::Source::kExited: w.str(", it had exited"); break;
    default: break;
  }
  if (k.wchan[0] != '\0') w.format(", wchan %s", k.wchan);
  if (k.blocks_signal(hard_stop_signal()))
    w.str(", hard-stop signal blocked");
  else if (k.blocks_signal(soft_stop_signal()))
    w.str(", soft-stop signal blocked");
  if (k.has_regs())
    w.format("; pc and sp from /proc/self/task/%d/syscall", t.tid);
  else if (k.source == KernelView::Source::kRunning || k.source == KernelView::Source::kExited)
    w.str("; no registers");
  else
    w.format("; /proc/self/task/%d/syscall unreadable", t.tid);
}

// Why a thread has no stack to print, when the reason is not "no frames".
const char* no_registers_reason(const SnapshotThread& t) noexcept {
  if (t.frame_count != 0 || t.context != nullptr || t.kernel.has_regs()) return nullptr;
  switch (t.kernel.source) {
    case KernelView::Source::kRunning: return "the thread was running";
    case KernelView::Source::kUnreadable: return "its /proc syscall file was unreadable";
    case KernelView::Source::kExited: return "the thread had exited";
    default: return nullptr;
  }
}

// A function's name as c++filt prints it, else as the symbol table spells
// it: when it does not demangle, when the demangled text would not leave
// room on the 1 KiB line for the offset and module after it, and when the
// symbolizer may have cut it at kSymbolNameMax (a prefix of a mangled name
// can demangle to another, valid name).
// max: the most bytes (with the NUL) the caller has room for.
constexpr size_t kReadableNameMax = 640;
struct ReadableName {
  explicit ReadableName(const SymbolInfo& info, size_t max = kReadableNameMax) noexcept : text(info.name) {
    size_t n = sys::bounded_strlen(info.name, kSymbolNameMax);
    if (n + 1 < kSymbolNameMax && sys::demangle(info.name, n, buf, max < sizeof buf ? max : sizeof buf)) text = buf;
  }
  ReadableName(const ReadableName&) = delete;
  const char* text;
  char buf[kReadableNameMax];
};

// "0x7f.. strlen+0x18 (libc.so.6)", else "0x7f.. ?? (libc.so.6+0x167ad8)", else "0x7f..":
// an exact pc, not a return address.
void write_code_site(sys::FixedWriter& w, const ProcessSnapshot& snap, uintptr_t pc) noexcept {
  SymbolInfo info;
  w.format("0x%lx", static_cast<unsigned long>(pc));
  bool named = symbolize(snap, pc, false, &info) && info.has_name;
  if (named) w.format(" %s+0x%lx", ReadableName(info, kSymbolNameMax).text, static_cast<unsigned long>(info.offset));
  if (info.module == nullptr) return;
  w.str(named ? " (" : " ?? (").escaped(module_basename(snap, *info.module));
  if (!named) w.format("+0x%lx", static_cast<unsigned long>(info.module_offset));
  w.ch(')');
}

// "12 ms before: signal SIGSEGV (...), fault address 0x8, at 0x7f.. strlen+0x18
// (libc.so.6); the program's handler resumed the thread at 0x55.. ..."
void write_earlier_fault(ReportOut& out, const CrashRecord& rec) noexcept {
  const ResumedFault& e = rec.facts.earlier_fault;
  char line[1024];
  sys::FixedWriter w(line, sizeof line);
  w.format("%lld ms before: ", static_cast<long long>((rec.facts.start_ns - e.at_ns) / 1000000));
  char text[256];
  describe_signal(text, sizeof text, e.sig, e.code, e.address, true);
  w.str(text).str(", at ");
  write_code_site(w, rec.snap(), e.pc);
  w.str("; the program's handler resumed the thread at ");
  write_code_site(w, rec.snap(), e.resumed_pc);
  w.str(" instead of returning to it");
  out.line("  %s", line);
}

void thread_header(ReportOut& out, const CrashRecord& rec, const SnapshotThread& t, bool panicked) noexcept {
  const ProcessSnapshot& snap = rec.snap();
  out.line("thread %d (%s) [%s] %c", t.tid, sys::Escaped<4 * kThreadNameMax>(t.name, sizeof t.name).text,
           thread_state_name(rec, t, panicked), t.kernel_state);
  if (t.kernel_worker)
    out.line("  a kernel worker (io_uring, vhost): it runs no program code, so it was not stopped and has no "
             "registers of the program's");
  if (t.kernel.source != KernelView::Source::kNone) {
    char view[512];
    sys::FixedWriter w(view, sizeof view);
    describe_kernel_view(w, t);
    out.line("  %s", view);
  }
  char text[256];
  if (t.is_panicking && panicked && rec.facts.signo != 0) {
    describe_signal(text, sizeof text, rec.facts.signo, rec.facts.si_code, rec.facts.fault_address, true);
    out.line("  %s", text);
    sys::FixedWriter overflow(text, sizeof text);
    const CrashFacts& f = rec.facts;
    if (describe_stack_overflow(overflow.str("stack overflow: "), f.fault_address, f.overflowed_stack_lo,
                                f.overflowed_stack_hi))
      out.line("  %s", text);
    if (rec.facts.earlier_fault.sig != 0) write_earlier_fault(out, rec);
  } else if (t.panic_signal != 0) {
    describe_signal(text, sizeof text, t.panic_signal, 0, 0, false);
    out.line("  also panicked: %s (parked)", text);
  }
  if (t.panic_message != nullptr)
    out.line("  also panicked: %s (parked)", sys::Escaped<1024>(t.panic_message, kSlotMessageMax).text);
  char wait[1024];
  sys::FixedWriter w(wait, sizeof wait);
  if (describe_wait(w, snap, t)) out.line("  %s", wait);
  write_held_lock_lines(out, snap, t);
}

// fault_pc: a frame that holds this value is the faulting instruction of the
// crash's earlier fault (a runtime entered its crash handling as if called
// from it), looked up exactly: as a return address (pc - 1), a fault at a
// function's first byte would be named after the function before it.
void print_stack(ReportOut& out, const ProcessSnapshot& snap, const SnapshotThread& t, uintptr_t fault_pc) noexcept {
  if (t.frame_count == 0) {
    const char* why = no_registers_reason(t);
    if (why != nullptr)
      out.line("  (no registers: %s)", why);
    else
      out.line("  (no frames)");
    return;
  }
  SymbolInfo info;
  for (uint32_t i = 0; i < t.frame_count; ++i) {
    symbolize(snap, t.frames[i], i > 0 && !(fault_pc != 0 && t.frames[i] == fault_pc), &info);
    // A module's file name is the program's to choose (dlopen), newlines included.
    sys::Escaped<256> escaped_module(info.module != nullptr ? module_basename(snap, *info.module) : "");
    const char* module = info.module != nullptr ? escaped_module.text : nullptr;
    if (info.has_name && module != nullptr)
      out.line("  #%u 0x%lx %s+0x%lx (%s)", i, static_cast<unsigned long>(t.frames[i]), ReadableName(info).text,
               static_cast<unsigned long>(info.offset), module);
    else if (module != nullptr && is_signal_trampoline(snap, t.frames[i]))
      // gdb's "<signal handler called>": above it the handler, below it the interrupted code.
      out.line("  #%u 0x%lx __restore_rt+0x0 (%s)", i, static_cast<unsigned long>(t.frames[i]), module);
    else if (module != nullptr)
      out.line("  #%u 0x%lx ?? (%s+0x%lx)", i, static_cast<unsigned long>(t.frames[i]), module,
               static_cast<unsigned long>(info.module_offset));
    else
      out.line("  #%u 0x%lx ??", i, static_cast<unsigned long>(t.frames[i]));
  }
}

// --- grouping threads with identical stacks -------------------------------

uint32_t g_order[kMaxThreads];   // thread indices sorted by (stack hash, index)
uint64_t g_hash[kMaxThreads];
uint32_t g_group_begin[kMaxThreads];  // per thread: where its group starts in g_order
uint32_t g_group_size[kMaxThreads];   // per thread: its group's size

uint64_t stack_hash(const SnapshotThread& t) noexcept {
  uint64_t h = 1469598103934665603ull ^ t.frame_count;
  for (uint32_t i = 0; i < t.frame_count; ++i) h = (h ^ t.frames[i]) * 1099511628211ull;
  // Threads without registers print a reason instead of "(no frames)": they
  // group only with threads that have the same reason.
  if (const char* why = no_registers_reason(t)) h ^= reinterpret_cast<uintptr_t>(why);
  return h;
}

bool same_stack(const SnapshotThread& a, const SnapshotThread& b) noexcept {
  if (a.frame_count != b.frame_count || no_registers_reason(a) != no_registers_reason(b)) return false;
  for (uint32_t i = 0; i < a.frame_count; ++i)
    if (a.frames[i] != b.frames[i]) return false;
  return true;
}

bool order_less(uint32_t a, uint32_t b) noexcept { return g_hash[a] != g_hash[b] ? g_hash[a] < g_hash[b] : a < b; }

// Groups every thread but the panicking one (index 0, always shown alone).
// Afterwards g_group_size[i] is 0 for a thread printed with an earlier one.
void group_threads(const ProcessSnapshot& snap) noexcept {
  uint32_t n = snap.thread_count;
  for (uint32_t i = 0; i < n; ++i) {
    g_order[i] = i;
    g_hash[i] = i == 0 ? 0 : stack_hash(snap.threads[i]);
  }
  uint32_t m = n > 1 ? n - 1 : 0;
  uint32_t* order = g_order + 1;
  sys::heap_sort(order, m, order_less);
  for (uint32_t i = 0; i < n; ++i) g_group_size[i] = 0;
  if (n > 0) {
    g_group_begin[0] = 0;
    g_group_size[0] = 1;
  }
  // Runs of equal hash are split into groups of truly identical stacks; the
  // lowest index of a group leads it (within a run, indices ascend).
  for (uint32_t i = 0; i < m;) {
    uint32_t leader = order[i];
    uint32_t j = i + 1;
    while (j < m && g_hash[order[j]] == g_hash[leader] && same_stack(snap.threads[order[j]], snap.threads[leader])) ++j;
    g_group_begin[leader] = i + 1;
    g_group_size[leader] = j - i;
    i = j;
  }
}

}  // namespace

const char* report_kind_name(LockKind kind) noexcept {
  switch (kind) {
    case LockKind::kMutex: return "mutex";
    case LockKind::kSpinMutex: return "spin_mutex";
    case LockKind::kRwLock: return "rwlock";
    case LockKind::kSxLock: return "sx_lock";
    default: return "lock";
  }
}

const char* thread_state_name(const CrashRecord& rec, const SnapshotThread& t, bool panicked) noexcept {
  if (t.is_panicking) return panicked ? "panicking" : "dumping";
  if (t.kernel_worker) return "kernel_worker";
  if (t.stopped || t.stopped_unsaved) return "stopped";
  if (listed_not_stopped(rec.facts, t.tid)) return "not_stopped";
  return "running";
}

const SnapshotThread* find_thread(const ProcessSnapshot& snap, int tid) noexcept {
  for (uint32_t i = 0; i < snap.thread_count; ++i)
    if (snap.threads[i].tid == tid) return &snap.threads[i];
  return nullptr;
}

bool describe_stack_overflow(sys::FixedWriter& w, uintptr_t fault_address, uintptr_t stack_lo,
                             uintptr_t stack_hi) noexcept {
  if (stack_lo == 0) return false;
  w.format("the fault address is %lu bytes below the panicking thread's stack, 0x%lx-0x%lx (%lu KiB)",
           static_cast<unsigned long>(stack_lo - fault_address), static_cast<unsigned long>(stack_lo),
           static_cast<unsigned long>(stack_hi), static_cast<unsigned long>((stack_hi - stack_lo) / 1024));
  return true;
}

bool describe_wait(sys::FixedWriter& w, const ProcessSnapshot& snap, const SnapshotThread& t) noexcept {
  if (t.waiting_on == nullptr) return false;
  const SnapshotLock* l = lock_record(snap, t.waiting_on);
  const char* name = l != nullptr && l->name != nullptr ? l->name : "?";
  const char* kind = l != nullptr ? report_kind_name(l->kind) : "lock";
  w.format("waiting for %s%s \"", wait_mode_name(t.wait_mode), kind);
  w.escaped(name, 256).format("\" (%p)", static_cast<const void*>(t.waiting_on));
  if (l != nullptr && l->owner_tid != 0)
    w.format(" held by thread %d", l->owner_tid);
  else if (l != nullptr && l->readers != 0)
    w.format(" held by %u readers", l->readers);
  return true;
}

// "holding mutex "name" (0x...) locked at file:line" (or at the caller's
// return address, symbolized).
size_t write_held_lock_lines(ReportOut& out, const ProcessSnapshot& snap, const SnapshotThread& t) noexcept {
  size_t written = 0;
  for (uint32_t i = 0; i < t.held_count && t.held != nullptr; ++i) {
    const HeldLock& h = t.held[i];
    const LockObject* lo = h.lock;
    if (lo == nullptr || lo == t.waiting_on) continue;
    const char* kind = "lock";
    const char* name = "?";
    if (memory_readable(snap, reinterpret_cast<uintptr_t>(lo), sizeof(LockObject))) {
      kind = report_kind_name(lo->kind);
      const char* n = readable_string(snap, lo->name, 256);
      if (n != nullptr) name = n;
    }
    char where[kSymbolNameMax + 128];
    sys::FixedWriter w(where, sizeof where);
    const char* file = h.file != nullptr ? readable_string(snap, h.file, 512) : nullptr;
    if (file != nullptr) {
      w.escaped(file).format(":%u", h.line);
    } else if (h.return_address != 0) {
      SymbolInfo info;
      w.format("0x%lx", static_cast<unsigned long>(h.return_address));
      if (symbolize(snap, h.return_address, true, &info))
        w.format(" %s+0x%lx", ReadableName(info, kSymbolNameMax).text,
                 static_cast<unsigned long>(info.offset));
      if (info.module != nullptr) w.str(" (").escaped(module_basename(snap, *info.module)).ch(')');
    } else {
      w.str("an unknown site");
    }
    out.line("  holding %s%s \"%s\" (%p)%s locked at %s", h.shared != 0 ? "shared " : "", kind,
             sys::Escaped<512>(name).text,
             static_cast<const void*>(lo), h.recursion != 0 ? " recursively" : "", where);
    ++written;
  }
  if (t.held_dropped != 0) {
    out.line("  (%u more held locks not recorded)", t.held_dropped);
    ++written;
  }
  return written;
}

namespace {
uintptr_t earlier_fault_pc(const CrashRecord& rec, const SnapshotThread& t) noexcept {
  return t.is_panicking && rec.facts.earlier_fault.sig != 0 ? rec.facts.earlier_fault.pc : 0;
}
}  // namespace

void write_thread_block(ReportOut& out, const CrashRecord& rec, const SnapshotThread& t, bool panicked) noexcept {
  thread_header(out, rec, t, panicked);
  print_stack(out, rec.snap(), t, earlier_fault_pc(rec, t));
}

void write_thread_blocks(ReportOut& out, const CrashRecord& rec, bool panicked) noexcept {
  const ProcessSnapshot& snap = rec.snap();
  group_threads(snap);
  for (uint32_t i = 0; i < snap.thread_count; ++i) {
    uint32_t size = g_group_size[i];
    if (size == 0) continue;
    for (uint32_t k = 0; k < size; ++k) thread_header(out, rec, snap.threads[g_order[g_group_begin[i] + k]], panicked);
    if (size > 1) out.line("  (%u threads with this stack)", size);
    print_stack(out, snap, snap.threads[i], earlier_fault_pc(rec, snap.threads[i]));
  }
}

void write_locks_section(ReportOut& out, const ProcessSnapshot& snap) noexcept {
  if (snap.lock_count == 0) return;
  out.line("locks:");
  for (uint32_t i = 0; i < snap.lock_count; ++i) {
    const SnapshotLock& l = snap.locks[i];
    char line[1024];
    sys::FixedWriter w(line, sizeof line);
    w.format("  %p kind=%s name=", static_cast<const void*>(l.lock), report_kind_name(l.kind));
    // One token per field for the reader: spaces in a name become '_'.
    const char* name = l.name != nullptr ? l.name : "?";
    char spaced[201];
    size_t k = 0;
    for (; name[k] != '\0' && k < 200; ++k) spaced[k] = name[k] == ' ' ? '_' : name[k];
    spaced[k] = '\0';
    w.escaped(spaced);
    w.format(" owner=%d readers=%u word=0x%lx waiters=", l.owner_tid, l.readers, static_cast<unsigned long>(l.word));
    bool first = true;
    for (uint32_t t = 0; t < snap.thread_count; ++t) {
      if (snap.threads[t].waiting_on != l.lock) continue;
      w.format(first ? "%d" : ",%d", snap.threads[t].tid);
      first = false;
    }
    out.line("%s", line);
  }
}

namespace {

void write_nested_and_not_stopped(ReportOut& out, const CrashFacts& f) noexcept {
  uint32_t nested = f.nested_count < kCrashNestedMax ? f.nested_count : uint32_t(kCrashNestedMax);
  if (nested > 0) {
    out.blank();
    out.line("nested panics:");
    char text[128];
    for (uint32_t i = 0; i < nested; ++i) {
      const CrashNested& n = f.nested[i];
      if (n.signo != 0) {
        describe_signal(text, sizeof text, n.signo, 0, 0, false);
        out.line("  thread %d%s: %s during %s%s%s", n.tid, n.same_thread ? " (the panicking thread)" : "", text,
                 n.step_name, n.message[0] != '\0' ? ": " : "", sys::Escaped<1024>(n.message, sizeof n.message).text);
      } else {
        out.line("  thread %d%s: panic during %s: %s", n.tid, n.same_thread ? " (the panicking thread)" : "",
                 n.step_name, sys::Escaped<1024>(n.message, sizeof n.message).text);
      }
    }
  }
  if (f.note[0] != '\0') {
    out.blank();
    out.line("note: %s", f.note);
  }
  uint32_t not_stopped = f.not_stopped_count;
  if (not_stopped > 0) {
    out.blank();
    out.line("threads that did not stop:");
    char line[1024];
    sys::FixedWriter w(line, sizeof line);
    uint32_t listed = not_stopped_listed(f);
    for (uint32_t i = 0; i < listed; ++i) {
      if (w.size() > 900) {
        out.line("  %s", line);
        w.clear();
      }
      w.format(i % 16 == 0 && w.size() == 0 ? "%d" : " %d", f.not_stopped_tids[i]);
    }
    if (w.size() > 0) out.line("  %s", line);
    if (not_stopped > listed) out.line("  (%u more)", not_stopped - listed);
  }
}

void write_modules(ReportOut& out, const ProcessSnapshot& snap) noexcept {
  out.blank();
  out.line("modules:");
  for (uint32_t i = 0; i < snap.module_count; ++i) {
    const SnapshotModule& m = snap.modules[i];
    char id[2 * sizeof m.build_id + 1];
    static const char kHex[] = "0123456789abcdef";
    for (uint32_t k = 0; k < m.build_id_size; ++k) {
      id[2 * k] = kHex[m.build_id[k] >> 4];
      id[2 * k + 1] = kHex[m.build_id[k] & 15];
    }
    id[2 * m.build_id_size] = '\0';
    out.line("  0x%lx-0x%lx %s build-id=%s%s", static_cast<unsigned long>(m.start), static_cast<unsigned long>(m.end),
             sys::Escaped<1024>(snap.path(m.path_offset)).text, m.build_id_size != 0 ? id : "none",
             m.is_executable ? " (executable)" : "");
  }
}


// "incomplete: ..." header lines: what the capture could not get, so that
// less is never shown as if it were everything.
void write_capture_gaps(ReportOut& out, const ProcessSnapshot& snap, const CrashFacts& f) noexcept {
  const CaptureGaps& g = snap.gaps;
  if (g.interrupted_tid != 0)
    out.line("incomplete: the capture failed while unwinding thread %d (see the nested panics); its stack is cut "
             "short and the threads after it have none",
             g.interrupted_tid);
  else if (g.interrupted_while != nullptr)
    out.line("incomplete: the capture failed while %s (see the nested panics); what it would have taken from "
             "there on is missing",
             g.interrupted_while);
  if (g.threads_cut)
    out.line("incomplete: only the capturing thread is listed; the stop had stopped %u other threads and %u did "
             "not stop",
             f.threads_stopped, f.not_stopped_count);
  if (g.thread_source == ThreadSource::kRegistry)
    out.line("incomplete: /proc/self/task could not be read; threads are those panicstop's registry knows "
             "(started through pthread_create after install, or that used the library), others were neither "
             "stopped nor listed");
  else if (g.thread_source == ThreadSource::kNone)
    out.line("incomplete: /proc/self/task could not be read and panicstop's registry is empty; threads unknown");
  if (g.maps_unreadable) out.line("incomplete: /proc/self/maps could not be read; no mappings, modules or memory");
  if (g.auxv_unreadable) out.line("incomplete: /proc/self/auxv could not be read");
  if (g.cmdline_unreadable) out.line("incomplete: /proc/self/cmdline could not be read");
  if (g.mappings_dropped != 0)
    out.line("incomplete: %u of %u mappings left out (table of %u full); ELF files, stacks and [vdso] kept",
             g.mappings_dropped, g.maps_lines, g.mapping_capacity);
  if (g.paths_dropped != 0) out.line("incomplete: %u mappings kept without their path (path pool full)", g.paths_dropped);
  if (g.modules_dropped != 0)
    out.line("incomplete: %u file mappings not examined as modules (table of %zu full)", g.modules_dropped,
             kMaxModules);
  if (g.threads_dropped != 0) out.line("incomplete: %u threads left out (table of %zu full)", g.threads_dropped, kMaxThreads);
  if (g.threads_unsaved != 0)
    out.line("incomplete: %u stopped threads saved no registers (more live threads than the registry's %zu slots); "
             "their stacks are what /proc/self/task/TID/syscall shows",
             g.threads_unsaved, kMaxThreads);
  if (g.threads_unlisted != 0)
    out.line("incomplete: %u more threads beyond the registry's %zu slots could not be named: neither stopped nor "
             "listed",
             g.threads_unlisted, kMaxThreads);
}

}  // namespace

bool write_text_report(const CrashRecord& rec, const DumpOptions&, int fd) noexcept {
  ReportOut out(fd);
  const ProcessSnapshot& snap = rec.snap();
  const CrashFacts& f = rec.facts;
  bool panicked = rec.panicked();
  // Everything the program wrote is escaped: a newline in it must not start a
  // record of its own (a forged thread block) for the reader.
  if (panicked) out.line("panic: %s", sys::Escaped<1024>(f.message).text);
  else out.line("panic: (none) %s", sys::Escaped<1024>(f.live_reason[0] != '\0' ? f.live_reason : "live dump").text);
  out.line("process %d (%s): %s", snap.pid, sys::Escaped<128>(snap.comm).text, sys::Escaped<1024>(snap.cmdline).text);
  uint32_t stopped = 0, not_stopped = 0, kernel_workers = 0;
  for (uint32_t i = 0; i < snap.thread_count; ++i) {
    stopped += snap.threads[i].stopped || snap.threads[i].stopped_unsaved;
    not_stopped += listed_not_stopped(f, snap.threads[i].tid);
    kernel_workers += snap.threads[i].kernel_worker;
  }
  if (snap.thread_count > 0) {
    const SnapshotThread& lead = snap.threads[0];
    char text[256];
    if (panicked && f.signo != 0) {
      describe_signal(text, sizeof text, f.signo, f.si_code, f.fault_address, true);
      size_t n = sys::bounded_strlen(text, sizeof text);
      if (f.overflowed_stack_lo != 0) sys::FixedWriter(text + n, sizeof text - n).str(", a stack overflow");
    } else {
      sys::copy_string(text, sizeof text, panicked ? "panic" : "dump requested");
    }
    out.line("%s thread %d (%s): %s", panicked ? "panicking" : "dumping", lead.tid,
             sys::Escaped<4 * kThreadNameMax>(lead.name, sizeof lead.name).text, text);
  }
  out.line("%u threads: %u stopped, %u not stopped", snap.thread_count, stopped, not_stopped);
  if (kernel_workers > 0)
    out.line("%u kernel workers: threads of the kernel's own in this process (io_uring, vhost), left as they are",
             kernel_workers);
  write_capture_gaps(out, snap, f);
  // Not a gap in this dump, but a crash that would leave none: said here,
  // where someone reads, since such a crash cannot say it.
  if (const size_t without = threads_without_altstack(); without != 0)
    out.line("note: %zu threads run without an alternate signal stack (all %zu of the pool's are in use): a stack "
             "overflow in one of them ends the process without a dump",
             without, altstack_pool_entries());
  out.blank();
  symbolizer_begin(snap);
  write_thread_blocks(out, rec, panicked);
  symbolizer_end();
  if (snap.lock_count > 0) {
    out.blank();
    write_locks_section(out, snap);
  }
  write_nested_and_not_stopped(out, f);
  write_modules(out, snap);
  return out.flush();
}

}  // namespace panicstop::detail
