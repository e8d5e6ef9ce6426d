// The minidump writer's layout: threads, their contexts and stacks, the memory
// list and the modules; the small streams are in minidump_streams.cpp. See
// dump/minidump.hpp for what goes in.
//
// File order: header and directory (written last, at offset 0, once every
// stream's place is known), contexts, thread names, memory bytes, the
// ThreadList / ThreadNameList / MemoryList that point at them, module names
// and CodeView records, the ModuleList, then the small streams. Lists come
// after what they point to, so the file is written front to back in one pass.
#include "dump/minidump.hpp"

#include <atomic>
#include <csignal>
#include <elf.h>

#include "dump/minidump_context.hpp"
#include "dump/minidump_streams.hpp"
#include "dump/reserve.hpp"
#include "snapshot/memory.hpp"
#include "snapshot/registers.hpp"
#include "sys/heap_sort.hpp"
#include "sys/syscall.hpp"

namespace panicstop::detail {

namespace md {

// Every fact about the panic that the snapshot does not carry comes from here.
DumpFacts dump_facts(const CrashRecord& rec) noexcept {
  const ProcessSnapshot& snap = rec.snap();
  const CrashFacts& c = rec.facts;
  DumpFacts f;
  f.crashed = rec.panicked();
  f.message = c.message;
  f.live_reason = c.live_reason[0] != '\0' ? c.live_reason : nullptr;
  f.signo = c.signo;
  f.lead_tid = snap.thread_count > 0 ? snap.threads[0].tid : snap.panicking_tid;
  f.not_stopped_count = c.not_stopped_count;
  if (f.crashed) {
    f.si_code = c.si_code;
    f.fault_address = c.fault_address;
    f.nested_count = c.nested_count < kCrashNestedMax ? c.nested_count : uint32_t(kCrashNestedMax);
    f.nested = c.nested;
    f.note = c.note;
    if (c.earlier_fault.sig != 0) f.earlier_fault = &c.earlier_fault;
    f.start_ns = c.start_ns;
    f.overflowed_stack_lo = c.overflowed_stack_lo;
    f.overflowed_stack_hi = c.overflowed_stack_hi;
  }
  return f;
}

}  // namespace md

namespace {

using md::Out;

constexpr size_t kIoBufferBytes = 256 * 1024;
constexpr size_t kProcBufferBytes = 1024 * 1024;  // the largest /proc file kept (maps)
// The first thread's whole stack up to this; the others share a budget.
constexpr uint64_t kLeadStackCap = 1024 * 1024;
constexpr uint64_t kOtherStacksBudget = 2 * 1024 * 1024;
constexpr uint64_t kOtherStackMin = 2 * 1024, kOtherStackMax = 32 * 1024;
constexpr uint64_t kRedZone = 128;
constexpr uint64_t kPcWindow = 128;  // bytes each side of the crashing pc

struct Range {
  uint64_t start, end;
  uint32_t rva;
};

// One thread the minidump lists: the kernel's own workers in the process
// (io_uring's, vhost's) are not, having no registers or stack of the
// program's that a reader could show.
struct ThreadMemory {
  uint64_t stack_start;
  uint32_t stack_size;
  uint32_t name_rva;
  uint32_t thread;  // its index in the snapshot's threads
};

struct Reserved {
  unsigned char* io;
  char* proc;
  Range* ranges;          // [kMaxThreads + 1]
  ThreadMemory* threads;  // [kMaxThreads]
};

std::atomic<unsigned char*> g_memory{nullptr};
std::atomic<bool> g_ready{false};
Reserved g_reserved;
uint32_t g_module_rvas[kMaxModules][2];  // name, CodeView record

constexpr size_t reserved_bytes() noexcept {
  return kIoBufferBytes + kProcBufferBytes + sizeof(Range) * (kMaxThreads + 1) + sizeof(ThreadMemory) * kMaxThreads;
}

#if defined(__x86_64__)
using Context = md::ContextAmd64;
#elif defined(__aarch64__)
using Context = md::ContextArm64Old;
#endif
Context g_context;

bool has_context(const SnapshotThread& t) noexcept { return t.context != nullptr && t.context->valid; }

void fill_context(const SnapshotThread& t, Context* c) noexcept {
#if defined(__x86_64__)
  if (has_context(t)) {
    uint64_t gregs[NGREG];
    __builtin_memcpy(gregs, t.context->ucontext.uc_mcontext.gregs, sizeof gregs);
    const unsigned char* fx = t.context->fpstate_size >= 512 ? t.context->fpstate : nullptr;
    md::amd64_context_from_gregs(gregs, fx, c);
  } else if (t.kernel.has_regs()) {
    md::amd64_context_from_kernel(t.kernel.pc, t.kernel.sp, c);
  } else {
    md::amd64_context_from_kernel(0, 0, c);
  }
#elif defined(__aarch64__)
  if (has_context(t)) {
    const auto& mc = t.context->ucontext.uc_mcontext;
    core::Aarch64Regs regs{};
    __builtin_memcpy(regs.x, mc.regs, sizeof regs.x);
    regs.sp = mc.sp;
    regs.pc = mc.pc;
    regs.pstate = mc.pstate;
    core::Aarch64SignalFpsimd fp;
    bool has_fp = core::aarch64_find_fpsimd(reinterpret_cast<const unsigned char*>(mc.__reserved),
                                            sizeof mc.__reserved, &fp);
    md::arm64_context_from_regs(regs, has_fp ? &fp : nullptr, c);
  } else if (t.kernel.has_regs()) {
    md::arm64_context_from_kernel(t.kernel.pc, t.kernel.sp, c);
  } else {
    md::arm64_context_from_kernel(0, 0, c);
  }
#endif
}

uintptr_t thread_pc(const SnapshotThread& t) noexcept {
  if (has_context(t)) return context_pc(*t.context);
  return t.kernel.has_regs() ? t.kernel.pc : 0;
}

// [start, end) of the thread's stack to keep: from the red zone below its
// stack pointer up its stack mapping, at most cap bytes. A stack pointer in a
// stack overflow's guard (unreadable, just below the stack) keeps the stack
// above the guard. Empty when the stack pointer is unknown or elsewhere.
void stack_range(const ProcessSnapshot& snap, const SnapshotThread& t, uint64_t cap, uint64_t* start,
                 uint64_t* end) noexcept {
  *start = *end = 0;
  uintptr_t sp = thread_stack_pointer(t);
  if (sp == 0) return;
  const SnapshotMapping* m = stack_mapping(snap, sp);
  if (m == nullptr) return;
  uint64_t s = sp > kRedZone ? (sp - kRedZone) & ~uint64_t(15) : 0;
  if (s < m->start) s = m->start;
  uint64_t e = s + cap < m->end ? s + cap : m->end;
  if (e > s && memory_readable(snap, uintptr_t(s), size_t(e - s))) *start = s, *end = e;
}

// Sorted by start, then overlapping or touching ranges merged: readers
// reject a memory list with overlaps. Returns the merged count.
size_t sort_and_merge(Range* a, size_t n) noexcept {
  sys::heap_sort(a, n, [](const Range& x, const Range& y) { return x.start < y.start; });
  size_t out = 0;
  for (size_t i = 0; i < n; ++i) {
    if (out > 0 && a[i].start <= a[out - 1].end) {
      if (a[i].end > a[out - 1].end) a[out - 1].end = a[i].end;
      continue;
    }
    a[out++] = a[i];
  }
  return out;
}

// Chooses the threads to list (g_reserved.threads, *listed of them), every
// one's stack range, and the memory ranges to write.
size_t plan_memory(const ProcessSnapshot& snap, uint32_t* listed) noexcept {
  uint32_t snapped = snap.thread_count < kMaxThreads ? snap.thread_count : uint32_t(kMaxThreads);
  uint32_t threads = 0;
  for (uint32_t i = 0; i < snapped; ++i)
    if (!snap.threads[i].kernel_worker) g_reserved.threads[threads++] = {0, 0, 0, i};
  *listed = threads;
  uint64_t others = threads > 1 ? threads - 1 : 1;
  uint64_t other_cap = kOtherStacksBudget / others;
  if (other_cap < kOtherStackMin) other_cap = kOtherStackMin;
  if (other_cap > kOtherStackMax) other_cap = kOtherStackMax;
  other_cap &= ~uint64_t(15);
  size_t n = 0;
  for (uint32_t i = 0; i < threads; ++i) {
    ThreadMemory& tm = g_reserved.threads[i];
    uint64_t s, e;
    stack_range(snap, snap.threads[tm.thread], i == 0 ? kLeadStackCap : other_cap, &s, &e);
    tm.stack_start = s;
    tm.stack_size = uint32_t(e - s);
    if (e > s) g_reserved.ranges[n++] = {s, e, 0};
  }
  // The code around the first thread's pc: Breakpad's processor disassembles
  // it to say what the faulting instruction did.
  if (threads > 0) {
    uintptr_t pc = thread_pc(snap.threads[0]);
    const SnapshotMapping* m = pc != 0 ? find_mapping(snap, pc) : nullptr;
    if (m != nullptr && m->read) {
      uint64_t s = pc > m->start + kPcWindow ? pc - kPcWindow : m->start;
      uint64_t e = pc + kPcWindow < m->end ? pc + kPcWindow : m->end;
      if (e > s && memory_readable(snap, uintptr_t(s), size_t(e - s))) g_reserved.ranges[n++] = {s, e, 0};
    }
  }
  return sort_and_merge(g_reserved.ranges, n);
}

// The RVA of addr inside the written ranges (binary search), 0 if none.
uint32_t memory_rva(const Range* ranges, size_t n, uint64_t addr) noexcept {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ranges[mid].end <= addr)
      lo = mid + 1;
    else if (ranges[mid].start > addr)
      hi = mid;
    else
      return ranges[mid].rva + uint32_t(addr - ranges[mid].start);
  }
  return 0;
}

void write_threads_and_memory(Out& out, const ProcessSnapshot& snap, uint32_t* lead_context_rva) noexcept {
  uint32_t threads = 0;
  size_t ranges = plan_memory(snap, &threads);

  out.align8();
  const uint32_t contexts = out.rva();
  for (uint32_t i = 0; i < threads; ++i) {
    fill_context(snap.threads[g_reserved.threads[i].thread], &g_context);
    out.put(&g_context, sizeof g_context);
  }
  *lead_context_rva = contexts;
  for (uint32_t i = 0; i < threads; ++i) {
    const SnapshotThread& t = snap.threads[g_reserved.threads[i].thread];
    g_reserved.threads[i].name_rva = out.string16(t.name, sizeof t.name);
  }
  for (size_t i = 0; i < ranges; ++i) {
    out.align8();
    Range& r = g_reserved.ranges[i];
    r.rva = out.rva();
    out.memory(uintptr_t(r.start), size_t(r.end - r.start));
  }

  uint32_t begin = out.begin_stream();
  out.put(&threads, 4);
  for (uint32_t i = 0; i < threads; ++i) {
    const ThreadMemory& tm = g_reserved.threads[i];
    md::Thread th{};
    th.thread_id = uint32_t(snap.threads[tm.thread].tid);
    if (tm.stack_size > 0) {
      th.stack.start_of_memory_range = tm.stack_start;
      th.stack.memory = {tm.stack_size, memory_rva(g_reserved.ranges, ranges, tm.stack_start)};
    }
    th.thread_context = {uint32_t(sizeof(Context)), contexts + i * uint32_t(sizeof(Context))};
    out.put(&th, sizeof th);
  }
  out.end_stream(md::kThreadList, begin);

  begin = out.begin_stream();
  out.put(&threads, 4);
  for (uint32_t i = 0; i < threads; ++i) {
    const ThreadMemory& tm = g_reserved.threads[i];
    md::ThreadName tn{uint32_t(snap.threads[tm.thread].tid), tm.name_rva};
    out.put(&tn, sizeof tn);
  }
  out.end_stream(md::kThreadNameList, begin);

  begin = out.begin_stream();
  uint32_t count = uint32_t(ranges);
  out.put(&count, 4);
  for (size_t i = 0; i < ranges; ++i) {
    const Range& r = g_reserved.ranges[i];
    md::MemoryDescriptor d{r.start, {uint32_t(r.end - r.start), r.rva}};
    out.put(&d, sizeof d);
  }
  out.end_stream(md::kMemoryList, begin);
}

const char* module_name(const ProcessSnapshot& snap, const SnapshotModule& m) noexcept {
  // Breakpad's name for the vDSO; it has no file of its own.
  if (m.is_vdso) return "linux-gate.so";
  return snap.path(m.path_offset);
}

// The executable first (readers take module 0 as the main program), then
// the others in the snapshot's order.
uint32_t module_at(const ProcessSnapshot& snap, uint32_t k, uint32_t exe) noexcept {
  if (exe >= snap.module_count) return k;
  if (k == 0) return exe;
  return k <= exe ? k - 1 : k;
}

void write_modules(Out& out, const ProcessSnapshot& snap) noexcept {
  uint32_t count = snap.module_count < kMaxModules ? snap.module_count : uint32_t(kMaxModules);
  uint32_t exe = count;
  for (uint32_t i = 0; i < count; ++i)
    if (snap.modules[i].is_executable) exe = i;
  for (uint32_t k = 0; k < count; ++k) {
    const SnapshotModule& m = snap.modules[module_at(snap, k, exe)];
    out.align8();
    g_module_rvas[k][0] = out.string16(module_name(snap, m), 4096);
    g_module_rvas[k][1] = 0;
    if (m.build_id_size > 0) {
      out.align8();
      g_module_rvas[k][1] = out.rva();
      uint32_t sig = md::kCvElfSignature;
      out.put(&sig, 4);
      out.put(m.build_id, m.build_id_size);
    }
  }
  uint32_t begin = out.begin_stream();
  out.put(&count, 4);
  for (uint32_t k = 0; k < count; ++k) {
    const SnapshotModule& m = snap.modules[module_at(snap, k, exe)];
    md::Module mod{};
    mod.base_of_image = m.start;
    uint64_t size = m.end > m.start ? m.end - m.start : 0;
    mod.size_of_image = size > 0xffffffffu ? 0xffffffffu : uint32_t(size);
    mod.module_name_rva = g_module_rvas[k][0];
    if (g_module_rvas[k][1] != 0) mod.cv_record = {4 + m.build_id_size, g_module_rvas[k][1]};
    out.put(&mod, sizeof mod);
  }
  out.end_stream(md::kModuleList, begin);
}

// Every mapping with its protection, as Crashpad writes it on Linux: readers
// show what an address was (lldb's "memory region", Breakpad's dump).
void write_memory_info(Out& out, const ProcessSnapshot& snap) noexcept {
  uint32_t begin = out.begin_stream();
  uint32_t count = snap.mapping_count;
  md::MemoryInfoListHeader h{sizeof(md::MemoryInfoListHeader), sizeof(md::MemoryInfo), count};
  out.put(&h, sizeof h);
  for (uint32_t i = 0; i < count; ++i) {
    const SnapshotMapping& m = snap.mappings[i];
    md::MemoryInfo mi{};
    mi.base_address = mi.allocation_base = m.start;
    mi.region_size = m.end - m.start;
    mi.state = md::kMemCommit;
    uint32_t prot = !m.read && !m.write && !m.exec ? md::kPageNoAccess
                    : m.exec  ? (m.write ? md::kPageExecuteReadWrite : m.read ? md::kPageExecuteRead : md::kPageExecute)
                    : m.write ? md::kPageReadWrite
                              : md::kPageReadOnly;
    mi.protection = mi.allocation_protection = prot;
    bool file = m.inode != 0;
    mi.type = file && m.exec ? md::kMemImage : file || m.shared ? md::kMemMapped : md::kMemPrivate;
    out.put(&mi, sizeof mi);
  }
  out.end_stream(md::kMemoryInfoList, begin);
}

void write_exception(Out& out, const md::DumpFacts& f, uint32_t context_rva) noexcept {
  if (!f.crashed) return;
  md::Exception e{};
  e.thread_id = uint32_t(f.lead_tid);
  e.exception_code = uint32_t(f.signo != 0 ? f.signo : SIGABRT);
  e.exception_flags = uint32_t(f.si_code);
  // si_addr means an address only for faults the kernel reports (si_code > 0);
  // for a raised signal the same bytes hold the sender's pid and uid.
  bool fault = f.si_code > 0 && (f.signo == SIGSEGV || f.signo == SIGBUS || f.signo == SIGILL ||
                                 f.signo == SIGFPE || f.signo == SIGTRAP);
  e.exception_address = fault ? f.fault_address : 0;
  e.thread_context = {uint32_t(sizeof(Context)), context_rva};
  uint32_t begin = out.begin_stream();
  out.put(&e, sizeof e);
  out.end_stream(md::kException, begin);
}

}  // namespace

bool reserve_minidump() noexcept {
  if (g_ready.load(std::memory_order_acquire)) return true;
  unsigned char* mem = reserve_once(g_memory, reserved_bytes());
  if (mem == nullptr) return false;
  g_reserved.io = mem;
  g_reserved.proc = reinterpret_cast<char*>(mem + kIoBufferBytes);
  g_reserved.ranges = reinterpret_cast<Range*>(mem + kIoBufferBytes + kProcBufferBytes);
  g_reserved.threads = reinterpret_cast<ThreadMemory*>(mem + kIoBufferBytes + kProcBufferBytes +
                                                       sizeof(Range) * (kMaxThreads + 1));
  g_ready.store(true, std::memory_order_release);
  return true;
}

bool write_minidump(const CrashRecord& rec, const DumpOptions& o, int fd) noexcept {
  if (!reserve_minidump() || !g_ready.load(std::memory_order_acquire)) return false;
  const ProcessSnapshot& snap = rec.snap();
  const md::DumpFacts facts = md::dump_facts(rec);
  core::CoreSink sink(fd, g_reserved.io, kIoBufferBytes);
  Out out(sink);
  // The header and directory are written last, here.
  const uint32_t dir_rva = sizeof(md::Header);
  out.zeros(sizeof(md::Header) + sizeof(md::Directory) * md::kMaxStreams);

  uint32_t context_rva = 0;
  write_threads_and_memory(out, snap, &context_rva);
  write_modules(out, snap);
  write_memory_info(out, snap);
  write_exception(out, facts, context_rva);
  write_system_info(out, g_reserved.proc, kProcBufferBytes);
  write_misc_info(out, snap, g_reserved.proc, kProcBufferBytes);
  write_breakpad_info(out, facts);
  write_assertion(out, facts);
  write_crashpad_info(out, snap, facts);
  write_linux_streams(out, o.minidump_environ, g_reserved.proc, kProcBufferBytes);
  if (!out.fits() || !sink.flush()) return false;

  md::Header h{};
  h.signature = md::kSignature;
  h.version = md::kVersion;
  h.stream_count = out.stream_count();
  h.stream_directory_rva = dir_rva;
  h.time_date_stamp = uint32_t(snap.captured_ns / 1000000000);
  unsigned char* head = g_reserved.io;  // flushed: free again
  __builtin_memcpy(head, &h, sizeof h);
  // Unused directory slots stay zero: readers skip (0, 0, 0) entries.
  __builtin_memcpy(head + sizeof h, out.directory(), sizeof(md::Directory) * md::kMaxStreams);
  size_t n = sizeof h + sizeof(md::Directory) * md::kMaxStreams;
  long w = sys::raw_syscall(SYS_pwrite64, fd, head, n, 0);
  return w == long(n);
}

}  // namespace panicstop::detail
