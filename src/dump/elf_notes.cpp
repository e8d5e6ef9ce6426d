#include "dump/elf_notes.hpp"

#include <csignal>
#include <elf.h>

#include "dump/core_plan.hpp"
#include "dump/core_regs.hpp"
#include "panicstop/lock_object.hpp"
#include "sys/format.hpp"
#include "sys/syscall.hpp"
#include "sys/syscall_names.hpp"
#include "thread/signal_sections.hpp"

namespace panicstop::detail::core {
namespace {

// "PSTP" in the file's bytes. Not 1: gdb (BFD) reads a note of any owner by
// its type, and took one of type 1 whose size happened to be a prstatus's
// for another thread.
constexpr uint32_t kNtPanicstop = 0x50545350;
constexpr char kPanicstopName[] = "PANICSTOP";

size_t pad4(size_t n) noexcept { return (n + 3) & ~size_t(3); }

void note_header(CoreSink& sink, const char* name, uint32_t type, size_t descsz) noexcept {
  size_t namesz = sys::bounded_strlen(name, 64) + 1;
  uint32_t hdr[3] = {uint32_t(namesz), uint32_t(descsz), type};
  sink.put(hdr, sizeof hdr);
  sink.put(name, namesz);
  sink.zeros(pad4(namesz) - namesz);
}

void note_end(CoreSink& sink, size_t descsz) noexcept { sink.zeros(pad4(descsz) - descsz); }

void note(CoreSink& sink, const char* name, uint32_t type, const void* desc, size_t descsz) noexcept {
  note_header(sink, name, type, descsz);
  sink.put(desc, descsz);
  note_end(sink, descsz);
}

const SnapshotThread* panicking_thread(const ProcessSnapshot& snap) noexcept {
  for (uint32_t i = 0; i < snap.thread_count; ++i)
    if (snap.threads[i].is_panicking || snap.threads[i].tid == snap.panicking_tid) return &snap.threads[i];
  return snap.thread_count > 0 ? &snap.threads[0] : nullptr;
}

#if defined(__x86_64__)
bool has_fp(const SnapshotThread& t) noexcept {
  return t.context != nullptr && t.context->valid && t.context->fpstate_size >= kX86FxsaveSize;
}
#endif

// The signal the core says the process died of. A live dump or kdb has none;
// lldb then needs one that stops the thread or it waits forever for a stop
// event, so such a core says SIGSTOP, as gcore's do.
int core_signal(const NoteInputs& in) noexcept {
  return in.rec != nullptr && in.rec->facts.signo != 0 ? in.rec->facts.signo : SIGSTOP;
}

PrstatusHead prstatus_head(const NoteInputs& in, const SnapshotThread& t, bool panicking) noexcept {
  PrstatusHead h;
  h.pid = t.tid;
  h.ppid = in.ppid;
  h.pgrp = in.pgrp;
  h.sid = in.sid;
  // Like the kernel: only the thread that took the signal carries it, so the
  // debugger says which thread died of what.
  if (panicking) {
    h.signo = core_signal(in);
    if (t.context != nullptr && t.context->valid && t.context->siginfo.si_signo == h.signo)
      h.code = t.context->siginfo.si_code;
  }
  if (t.context != nullptr && t.context->valid)
    __builtin_memcpy(&h.sighold, &t.context->ucontext.uc_sigmask, sizeof h.sighold);
  else if (t.kernel.has_sigblk)
    h.sighold = t.kernel.sigblk;
  return h;
}

// A thread that did not stop, with the pc and sp /proc gave: written with
// those alone (a debugger unwinds the rest from the stack with CFI). One with
// no registers at all is left out: a thread of zeros would be a lie.
bool kernel_regs_only(const SnapshotThread& t) noexcept {
  return (t.context == nullptr || !t.context->valid) && t.kernel.has_regs();
}

bool has_prstatus(const SnapshotThread& t) noexcept {
  return (t.context != nullptr && t.context->valid) || t.kernel.has_regs();
}

void emit_prstatus(const NoteInputs& in, CoreSink& sink, const SnapshotThread& t, bool panicking) noexcept {
  PrstatusHead head = prstatus_head(in, t, panicking);
  bool valid = t.context != nullptr && t.context->valid;
#if defined(__x86_64__)
  X86_64UserRegs regs{};
  if (valid) {
    uint64_t gregs[NGREG];
    __builtin_memcpy(gregs, t.context->ucontext.uc_mcontext.gregs, sizeof gregs);
    regs = x86_64_regs_from_gregs(gregs, t.tid == in.current_tid ? in.current_fs_base : saved_tls_base(*t.context));
  } else if (kernel_regs_only(t)) {
    regs.rip = t.kernel.pc;
    regs.rsp = t.kernel.sp;
    regs.cs = 0x33;
    regs.ss = 0x2b;
    // In a system call, as the kernel's own core would say.
    regs.orig_rax = t.kernel.source == KernelView::Source::kSyscall ? uint64_t(t.kernel.syscall_nr) : ~uint64_t(0);
  }
  write_x86_64_prstatus(head, regs, has_fp(t), in.scratch);
  note(sink, "CORE", NT_PRSTATUS, in.scratch, kX86_64PrstatusSize);
#elif defined(__aarch64__)
  Aarch64Regs regs{};
  Aarch64SignalFpsimd fp;
  bool fp_valid = false;
  if (valid) {
    const auto& mc = t.context->ucontext.uc_mcontext;
    __builtin_memcpy(regs.x, mc.regs, sizeof regs.x);
    regs.sp = mc.sp;
    regs.pc = mc.pc;
    regs.pstate = mc.pstate;
    fp_valid = aarch64_find_fpsimd(reinterpret_cast<const unsigned char*>(mc.__reserved), sizeof mc.__reserved, &fp);
  } else if (kernel_regs_only(t)) {
    regs.pc = t.kernel.pc;
    regs.sp = t.kernel.sp;
  }
  write_aarch64_prstatus(head, regs, fp_valid, in.scratch);
  note(sink, "CORE", NT_PRSTATUS, in.scratch, kAarch64PrstatusSize);
#endif
}

void emit_fp_notes(const NoteInputs& in, CoreSink& sink, const SnapshotThread& t) noexcept {
  if (t.context == nullptr || !t.context->valid) return;
#if defined(__x86_64__)
  if (!has_fp(t)) return;
  note(sink, "CORE", NT_PRFPREG, t.context->fpstate, kX86FxsaveSize);
  size_t n = x86_64_xstate_from_signal_frame(t.context->fpstate, t.context->fpstate_size, in.scratch,
                                             in.scratch_size, in.pkru_offset);
  if (n > 0) note(sink, "LINUX", NT_X86_XSTATE, in.scratch, n);
#elif defined(__aarch64__)
  const auto& mc = t.context->ucontext.uc_mcontext;
  Aarch64SignalFpsimd fp;
  if (!aarch64_find_fpsimd(reinterpret_cast<const unsigned char*>(mc.__reserved), sizeof mc.__reserved, &fp))
    return;
  write_aarch64_fpregset(fp, in.scratch);
  note(sink, "CORE", NT_PRFPREG, in.scratch, kAarch64FpsimdSize);
#endif
}

void emit_prpsinfo(const NoteInputs& in, CoreSink& sink) noexcept {
  PrpsinfoFields f;
  f.pid = in.snap->pid;
  f.ppid = in.ppid;
  f.pgrp = in.pgrp;
  f.sid = in.sid;
  f.uid = uint32_t(sys::raw_syscall(SYS_getuid));
  f.gid = uint32_t(sys::raw_syscall(SYS_getgid));
  f.fname = in.snap->comm;
  f.psargs = in.snap->cmdline;
  write_prpsinfo(f, in.scratch);
  note(sink, "CORE", NT_PRPSINFO, in.scratch, kPrpsinfoSize);
}

// The fault's siginfo when the panicking thread died of a signal; otherwise
// (panic(), or a context saved through the stop signal) the signal the core
// reports, as sent by the process to itself.
void emit_siginfo(const NoteInputs& in, CoreSink& sink, const SnapshotThread* t) noexcept {
  siginfo_t si;
  __builtin_memset(&si, 0, sizeof si);
  int signo = core_signal(in);
  if (t != nullptr && t->context != nullptr && t->context->valid && t->context->siginfo.si_signo == signo) {
    si = t->context->siginfo;
  } else {
    si.si_signo = signo;
    si.si_code = SI_TKILL;
    si.si_pid = in.snap->pid;
    si.si_uid = uint32_t(sys::raw_syscall(SYS_getuid));
  }
  static_assert(sizeof si == kSiginfoSize);
  note(sink, "CORE", NT_SIGINFO, &si, sizeof si);
}

void emit_auxv(const NoteInputs& in, CoreSink& sink) noexcept {
  const ProcessSnapshot& s = *in.snap;
  size_t words = 0;
  while (words + 1 < s.auxv_words && words + 1 < sizeof s.auxv / sizeof s.auxv[0] && s.auxv[words] != AT_NULL)
    words += 2;
  size_t descsz = (words + 2) * 8;
  note_header(sink, "CORE", NT_AUXV, descsz);
  sink.put(s.auxv, words * 8);
  sink.zeros(16);  // AT_NULL
}

bool same_file(const SnapshotMapping& m, const NoteInputs& in) noexcept {
  return in.exe_inode != 0 && m.inode == in.exe_inode && m.dev_major == in.exe_dev_major &&
         m.dev_minor == in.exe_dev_minor;
}

// NT_FILE: count, page size, {start, end, offset in pages} per file mapping,
// then the names. pass 0 walks the executable's mappings, pass 1 the others.
template <typename Fn>
void for_each_file_mapping(const NoteInputs& in, Fn&& fn) noexcept {
  const ProcessSnapshot& s = *in.snap;
  for (int pass = 0; pass < 2; ++pass)
    for (uint32_t i = 0; i < s.mapping_count; ++i) {
      const SnapshotMapping& m = s.mappings[i];
      if (is_file_mapping(s, m) && same_file(m, in) == (pass == 0)) fn(m);
    }
}

void emit_file_note(const NoteInputs& in, CoreSink& sink) noexcept {
  const ProcessSnapshot& s = *in.snap;
  uint64_t count = 0, names = 0;
  for_each_file_mapping(in, [&](const SnapshotMapping& m) {
    ++count;
    names += sys::bounded_strlen(s.path(m.path_offset), snapshot_path_capacity()) + 1;
  });
  size_t descsz = size_t(16 + count * 24 + names);
  note_header(sink, "CORE", NT_FILE, descsz);
  uint64_t head[2] = {count, in.page_size};
  sink.put(head, sizeof head);
  for_each_file_mapping(in, [&](const SnapshotMapping& m) {
    uint64_t entry[3] = {m.start, m.end, m.file_offset / in.page_size};
    sink.put(entry, sizeof entry);
  });
  for_each_file_mapping(in, [&](const SnapshotMapping& m) {
    const char* p = s.path(m.path_offset);
    sink.put(p, sys::bounded_strlen(p, snapshot_path_capacity()) + 1);
  });
  note_end(sink, descsz);
}

// --- the PANICSTOP text --------------------------------------------------------

// Writes s with the characters that would break "key=value" lines replaced:
// names lose spaces to '_', messages lose line breaks to ' '.
void put_clean(CoreSink& sink, const char* s, size_t max, bool is_name) noexcept {
  char chunk[128];
  size_t n = 0;
  for (size_t i = 0; s != nullptr && i < max && s[i] != '\0'; ++i) {
    char c = s[i];
    if (c == '\n' || c == '\r') c = is_name ? '_' : ' ';
    else if (is_name && (c == ' ' || c == '\t')) c = '_';
    chunk[n++] = c;
    if (n == sizeof chunk) {
      sink.put(chunk, n);
      n = 0;
    }
  }
  sink.put(chunk, n);
}

void put_str(CoreSink& sink, const char* s) noexcept { sink.put(s, sys::bounded_strlen(s, 256)); }

void put_num(CoreSink& sink, int64_t v) noexcept {
  char b[24];
  sys::FixedWriter w(b, sizeof b);
  w.dec(v);
  sink.put(w.data(), w.size());
}

void put_hex(CoreSink& sink, uint64_t v) noexcept {
  char b[24];
  sys::FixedWriter w(b, sizeof b);
  w.addr(v);
  sink.put(w.data(), w.size());
}

const char* wait_mode_name(WaitMode mode) noexcept {
  switch (mode) {
    case WaitMode::kExclusive: return "exclusive";
    case WaitMode::kShared: return "shared";
    case WaitMode::kCondVar: return "condvar";
    case WaitMode::kNone: break;
  }
  return "none";
}

bool nested_lists_tid(const CrashFacts& f, int tid) noexcept {
  for (uint32_t i = 0; i < f.nested_count && i < kCrashNestedMax; ++i)
    if (f.nested[i].tid == tid) return true;
  return false;
}

void put_nested(CoreSink& sink, int tid, int signo, int step, const char* message, size_t max) noexcept {
  put_str(sink, "nested=");
  put_num(sink, tid);
  put_str(sink, " signal=");
  put_num(sink, signo);
  put_str(sink, " step=");
  put_num(sink, step);
  put_str(sink, " message=");
  put_clean(sink, message, max, false);
  put_str(sink, "\n");
}

const char* kernel_view_name(KernelView::Source source) noexcept {
  switch (source) {
    case KernelView::Source::kRunning: return "running";
    case KernelView::Source::kBlocked: return "blocked";
    case KernelView::Source::kSyscall: return "syscall";
    case KernelView::Source::kUnreadable: return "unreadable";
    case KernelView::Source::kExited: return "exited";
    case KernelView::Source::kNone: break;
  }
  return "none";
}

// What /proc showed of a thread that did not stop, for readers that have
// only the core (its NT_PRSTATUS, if any, holds nothing but pc and sp).
void put_kernel_view(CoreSink& sink, const SnapshotThread& t) noexcept {
  const KernelView& k = t.kernel;
  char state[2] = {t.kernel_state, '\0'};
  put_str(sink, " kernel_state=");
  put_clean(sink, state, 1, true);
  put_str(sink, k.has_regs() ? " registers=kernel kernel_view=" : " registers=none kernel_view=");
  put_str(sink, kernel_view_name(k.source));
  if (k.source == KernelView::Source::kSyscall) {
    put_str(sink, " syscall=");
    put_num(sink, k.syscall_nr);
    if (const char* name = sys::syscall_name(k.syscall_nr)) {
      put_str(sink, " syscall_name=");
      put_str(sink, name);
    }
  }
  if (k.wchan[0] != '\0') {
    put_str(sink, " wchan=");
    put_clean(sink, k.wchan, sizeof k.wchan, true);
  }
  // Why it did not stop, most likely.
  if (k.blocks_signal(hard_stop_signal()))
    put_str(sink, " stop_signal_blocked=hard");
  else if (k.blocks_signal(soft_stop_signal()))
    put_str(sink, " stop_signal_blocked=soft");
}

}  // namespace

bool is_file_mapping(const ProcessSnapshot& snap, const SnapshotMapping& m) noexcept {
  return m.inode != 0 && snap.path(m.path_offset)[0] == '/';
}

void emit_panicstop_text(const CrashRecord& rec, CoreSink& sink) noexcept {
  const ProcessSnapshot& s = rec.snap();
  const CrashFacts& f = rec.facts;
  put_str(sink, "version=1\nmessage=");
  put_clean(sink, f.message, kCrashMessageMax, false);
  put_str(sink, "\npanicking_tid=");
  put_num(sink, s.panicking_tid);
  put_str(sink, "\nsignal=");
  put_num(sink, f.signo);
  put_str(sink, "\n");
  if (const ResumedFault& e = f.earlier_fault; e.sig != 0) {
    put_str(sink, "earlier_fault=");
    put_num(sink, e.sig);
    put_str(sink, " code=");
    put_num(sink, e.code);
    put_str(sink, " address=");
    put_hex(sink, e.address);
    put_str(sink, " pc=");
    put_hex(sink, e.pc);
    put_str(sink, " resumed_pc=");
    put_hex(sink, e.resumed_pc);
    put_str(sink, " ms_before=");
    put_num(sink, (f.start_ns - e.at_ns) / 1000000);
    put_str(sink, "\n");
  }
  if (f.overflowed_stack_lo != 0) {
    put_str(sink, "stack_overflow=");
    put_hex(sink, f.overflowed_stack_lo);
    put_str(sink, " stack_hi=");
    put_hex(sink, f.overflowed_stack_hi);
    put_str(sink, " fault_address=");
    put_hex(sink, f.fault_address);
    put_str(sink, "\n");
  }
  if (f.signo == 0 && f.live_reason[0] != '\0') {
    // A live dump says why it was taken ("requested by panicstop dump").
    put_str(sink, "live_reason=");
    put_clean(sink, f.live_reason, sizeof f.live_reason, false);
    put_str(sink, "\n");
  }
  if (f.note[0] != '\0') {
    put_str(sink, "note=");
    put_clean(sink, f.note, sizeof f.note, false);
    put_str(sink, "\n");
  }
  for (uint32_t i = 0; i < s.thread_count; ++i) {
    const SnapshotThread& t = s.threads[i];
    put_str(sink, "thread=");
    put_num(sink, t.tid);
    put_str(sink, " name=");
    put_clean(sink, t.name, sizeof t.name, true);
    put_str(sink, t.is_panicking                       ? " state=panicking"
                  : t.kernel_worker                ? " state=kernel_worker"
                  : t.stopped || t.stopped_unsaved ? " state=stopped"
                                                   : " state=not_stopped");
    if (t.kernel.source != KernelView::Source::kNone) put_kernel_view(sink, t);
    put_str(sink, "\n");
  }
  for (uint32_t i = 0; i < s.lock_count; ++i) {
    const SnapshotLock& l = s.locks[i];
    put_str(sink, "lock=");
    put_hex(sink, reinterpret_cast<uintptr_t>(l.lock));
    put_str(sink, " kind=");
    put_str(sink, lock_kind_name(l.kind));
    put_str(sink, " name=");
    put_clean(sink, l.name, 256, true);
    put_str(sink, " owner=");
    put_num(sink, l.owner_tid);
    put_str(sink, " readers=");
    put_num(sink, l.readers);
    put_str(sink, "\n");
  }
  for (uint32_t i = 0; i < s.thread_count; ++i) {
    const SnapshotThread& t = s.threads[i];
    if (t.waiting_on == nullptr) continue;
    put_str(sink, "wait=");
    put_num(sink, t.tid);
    put_str(sink, " lock=");
    put_hex(sink, reinterpret_cast<uintptr_t>(t.waiting_on));
    put_str(sink, " mode=");
    put_str(sink, wait_mode_name(t.wait_mode));
    put_str(sink, "\n");
  }
  for (uint32_t i = 0; i < f.nested_count && i < kCrashNestedMax; ++i) {
    const CrashNested& n = f.nested[i];
    put_nested(sink, n.tid, n.signo, n.step, n.message, sizeof n.message);
  }
  // A parked second panicker that the panic record did not list.
  for (uint32_t i = 0; i < s.thread_count; ++i) {
    const SnapshotThread& t = s.threads[i];
    if (t.is_panicking || (t.panic_signal == 0 && (t.panic_message == nullptr || t.panic_message[0] == '\0')))
      continue;
    if (!nested_lists_tid(f, t.tid)) put_nested(sink, t.tid, t.panic_signal, 0, t.panic_message, kSlotMessageMax);
  }
  for (uint32_t i = 0; i < s.thread_count; ++i) {
    const SnapshotThread& t = s.threads[i];
    if (t.is_panicking || t.stopped || t.stopped_unsaved || t.kernel_worker) continue;
    put_str(sink, "not_stopped=");
    put_num(sink, t.tid);
    put_str(sink, "\n");
  }
}

void emit_notes(const NoteInputs& inputs, CoreSink& sink) noexcept {
  NoteInputs in = inputs;
  in.ppid = int(sys::raw_syscall(SYS_getppid));
  in.pgrp = int(sys::raw_syscall(SYS_getpgid, 0));
  in.sid = int(sys::raw_syscall(SYS_getsid, 0));
  const ProcessSnapshot& s = *in.snap;
  const SnapshotThread* first = panicking_thread(s);
  if (first != nullptr) emit_prstatus(in, sink, *first, true);
  emit_prpsinfo(in, sink);
  emit_siginfo(in, sink, first);
  emit_auxv(in, sink);
  emit_file_note(in, sink);
  if (first != nullptr) emit_fp_notes(in, sink, *first);
  for (uint32_t i = 0; i < s.thread_count; ++i) {
    const SnapshotThread& t = s.threads[i];
    if (&t == first || !has_prstatus(t)) continue;
    emit_prstatus(in, sink, t, false);
    emit_fp_notes(in, sink, t);
  }
  CoreSink counter(-1, nullptr, 0);
  emit_panicstop_text(*in.rec, counter);
  size_t descsz = size_t(counter.offset());
  note_header(sink, kPanicstopName, kNtPanicstop, descsz);
  emit_panicstop_text(*in.rec, sink);
  note_end(sink, descsz);
}

}  // namespace panicstop::detail::core
