// capture_snapshot(): the process as it is at the panic, read from /proc with
// raw system calls into memory reserved at install. See snapshot.hpp.
#include "snapshot/snapshot.hpp"

#include <atomic>
#include <cerrno>
#include <elf.h>
#include <fcntl.h>

#include "lock/lock_describe.hpp"
#include "snapshot/elf_image.hpp"
#include "snapshot/memory.hpp"
#include "snapshot/proc_file.hpp"
#include "snapshot/registers.hpp"
#include "snapshot/symbolize.hpp"
#include "snapshot/unwind.hpp"
#include "sys/format.hpp"
#include "sys/syscall.hpp"

namespace panicstop::detail {

namespace {

constexpr size_t kIoBufferBytes = 64 * 1024;

struct Reserved {
  SnapshotThread* threads;
  ThreadSlot** thread_slots;  // parallel to threads while capturing
  uintptr_t* stack_pointers;  // [kMaxThreads], sorted: what a full mapping table keeps
  SnapshotMapping* mappings;
  uint32_t mapping_capacity;
  size_t path_capacity;
  SnapshotModule* modules;
  uintptr_t* module_headers;  // where each module's ELF header is mapped, 0 if not
  SnapshotLock* locks;
  char* paths;
  char* io;
};

Reserved g_reserved;
std::atomic<bool> g_reserved_ready{false};
ProcessSnapshot g_snapshot;
uint32_t g_mapping_limit = 0;  // tests: fewer entries than reserved; 0 = all

template <typename T>
T* reserve_array(size_t count, bool noreserve) noexcept {
  return static_cast<T*>(sys::mmap_anonymous(sizeof(T) * count, noreserve));
}

// --- small process-wide files ---------------------------------------------

void capture_auxv(ProcessSnapshot* snap) noexcept {
  long n = read_proc_file(ProcScope::kThread, "auxv", g_reserved.io, kIoBufferBytes);
  snap->auxv_words = 0;
  snap->gaps.auxv_unreadable = n <= 0;
  if (n <= 0) return;
  size_t words = size_t(n) / sizeof(uint64_t);
  size_t max = sizeof snap->auxv / sizeof snap->auxv[0];
  if (words > max) words = max & ~size_t(1);
  const auto* src = reinterpret_cast<const unsigned char*>(g_reserved.io);
  auto* dst = reinterpret_cast<unsigned char*>(snap->auxv);
  for (size_t i = 0; i < words * sizeof(uint64_t); ++i) dst[i] = src[i];
  snap->auxv_words = uint32_t(words);
  // Keep the vector AT_NULL-terminated even if it was cut short.
  if (words >= 2) snap->auxv[words - 2] = AT_NULL, snap->auxv[words - 1] = 0;
}

uint64_t auxv_value(const ProcessSnapshot& snap, uint64_t type) noexcept {
  for (uint32_t i = 0; i + 1 < snap.auxv_words; i += 2) {
    if (snap.auxv[i] == AT_NULL) break;
    if (snap.auxv[i] == type) return snap.auxv[i + 1];
  }
  return 0;
}

void capture_cmdline_and_comm(ProcessSnapshot* snap) noexcept {
  // Through thread-self: /proc/self/cmdline reads empty once the thread
  // group leader has exited.
  long n = read_proc_file(ProcScope::kThread, "cmdline", snap->cmdline, sizeof snap->cmdline);
  snap->gaps.cmdline_unreadable = n < 0;
  if (n < 0) n = 0;
  // argv is NUL-separated; NT_PRPSINFO's pr_psargs wants it space-separated.
  while (n > 0 && snap->cmdline[n - 1] == '\0') --n;
  for (long i = 0; i < n; ++i)
    if (snap->cmdline[i] == '\0') snap->cmdline[i] = ' ';
  snap->cmdline[n] = '\0';
  // The process's name is its leader's, readable even from a zombie leader.
  n = read_proc_file(ProcScope::kProcess, "comm", snap->comm, sizeof snap->comm);
  if (n < 0) n = 0;
  while (n > 0 && snap->comm[n - 1] == '\n') snap->comm[--n] = '\0';
}

// --- mappings ----------------------------------------------------------------

uint32_t store_path(ProcessSnapshot* snap, const char* path, size_t len) noexcept {
  if (len == 0) return 0;
  // Adjacent mappings of one file share the previous copy.
  if (snap->mapping_count > 0) {
    uint32_t prev = snap->mappings[snap->mapping_count - 1].path_offset;
    if (prev != 0 && sys::bounded_strlen(snap->paths + prev, len + 1) == len) {
      bool same = true;
      for (size_t i = 0; same && i < len; ++i) same = snap->paths[prev + i] == path[i];
      if (same) return prev;
    }
  }
  if (snap->paths_used + len + 1 > g_reserved.path_capacity) {
    ++snap->gaps.paths_dropped;
    return 0;
  }
  uint32_t off = snap->paths_used;
  for (size_t i = 0; i < len; ++i) snap->paths[off + i] = path[i];
  snap->paths[off + len] = '\0';
  snap->paths_used += uint32_t(len + 1);
  return off;
}

// Parses the hex or decimal field at *p up to `stop`, advancing past it.
bool take_field(const char** p, const char* end, char stop, bool hex, uint64_t* out) noexcept {
  const char* s = *p;
  const char* e = s;
  while (e < end && *e != stop) ++e;
  if (e == s || e >= end) return false;
  bool ok = hex ? sys::parse_hex_u64(s, size_t(e - s), out) : sys::parse_u64(s, size_t(e - s), out);
  *p = e + 1;
  return ok;
}

// "start-end perms offset major:minor inode   path"
bool parse_maps_line(ProcessSnapshot* snap, const char* line, size_t len, SnapshotMapping* m) noexcept {
  const char* p = line;
  const char* end = line + len;
  uint64_t start, stop, offset, major, minor, inode;
  if (!take_field(&p, end, '-', true, &start) || !take_field(&p, end, ' ', true, &stop)) return false;
  if (end - p < 5) return false;
  m->start = uintptr_t(start);
  m->end = uintptr_t(stop);
  m->read = p[0] == 'r';
  m->write = p[1] == 'w';
  m->exec = p[2] == 'x';
  m->shared = p[3] == 's';
  p += 5;
  if (!take_field(&p, end, ' ', true, &offset) || !take_field(&p, end, ':', true, &major) ||
      !take_field(&p, end, ' ', true, &minor))
    return false;
  const char* inode_end = p;
  while (inode_end < end && *inode_end != ' ') ++inode_end;
  if (!sys::parse_u64(p, size_t(inode_end - p), &inode)) return false;
  p = inode_end;
  while (p < end && *p == ' ') ++p;
  m->file_offset = offset;
  m->dev_major = uint32_t(major);
  m->dev_minor = uint32_t(minor);
  m->inode = inode;
  m->path_offset = store_path(snap, p, size_t(end - p));
  return m->start < m->end;
}

bool is_module_path(const char* path) noexcept { return path[0] == '/' || sys::equals(path, "[vdso]"); }

// Does some thread's stack pointer lie in [start, end)? (sorted array)
bool holds_stack_pointer(uintptr_t start, uintptr_t end, const uintptr_t* sps, uint32_t n) noexcept {
  uint32_t lo = 0, hi = n;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (sps[mid] < start) lo = mid + 1;
    else hi = mid;
  }
  return lo < n && sps[lo] < end;
}

// What a dump cannot do without when not every mapping fits: the ELF files
// (modules, symbols, unwind tables), the kernel's special mappings and the
// stacks the threads are on.
bool mapping_matters(const ProcessSnapshot& snap, const SnapshotMapping& m, uint32_t sp_count) noexcept {
  const char* path = snap.path(m.path_offset);
  if (is_module_path(path) || sys::starts_with(path, "[stack") || sys::starts_with(path, "[vvar")) return true;
  return holds_stack_pointer(m.start, m.end, g_reserved.stack_pointers, sp_count);
}

// Keeps only the mappings that matter; returns how many it dropped.
uint32_t keep_what_matters(ProcessSnapshot* snap, uint32_t sp_count) noexcept {
  uint32_t kept = 0;
  for (uint32_t i = 0; i < snap->mapping_count; ++i)
    if (mapping_matters(*snap, snap->mappings[i], sp_count)) snap->mappings[kept++] = snap->mappings[i];
  uint32_t dropped = snap->mapping_count - kept;
  snap->mapping_count = kept;
  return dropped;
}

// Sorted stack pointers of the captured threads, for keep_what_matters().
uint32_t collect_stack_pointers(const ProcessSnapshot& snap) noexcept {
  uintptr_t* sps = g_reserved.stack_pointers;
  uint32_t n = 0;
  for (uint32_t i = 0; i < snap.thread_count; ++i) {
    uintptr_t sp = thread_stack_pointer(snap.threads[i]);
    if (sp == 0) continue;
    uint32_t j = n++;
    while (j > 0 && sps[j - 1] > sp) {
      sps[j] = sps[j - 1];
      --j;
    }
    sps[j] = sp;
  }
  return n;
}

void capture_mappings(ProcessSnapshot* snap) noexcept {
  snap->mapping_count = 0;
  uint32_t capacity = g_reserved.mapping_capacity;
  if (g_mapping_limit != 0 && g_mapping_limit < capacity) capacity = g_mapping_limit;
  snap->gaps.mapping_capacity = capacity;
  // Through thread-self: /proc/self/maps reads empty once the thread group
  // leader has exited.
  long fd = proc_open(ProcScope::kThread, "maps", O_RDONLY);
  if (fd < 0) {
    snap->gaps.maps_unreadable = true;
    return;
  }
  uint32_t sp_count = 0;
  bool only_what_matters = false;  // the table filled up once
  LineReader lines(int(fd), g_reserved.io, kIoBufferBytes);
  size_t len;
  while (const char* line = lines.next(&len)) {
    SnapshotMapping m;
    if (!parse_maps_line(snap, line, len, &m)) continue;
    ++snap->gaps.maps_lines;
    // The kernel lists mappings in address order; anything else is dropped so
    // the binary searches stay valid.
    if (snap->mapping_count > 0 && m.start < snap->mappings[snap->mapping_count - 1].end) {
      ++snap->gaps.mappings_dropped;
      continue;
    }
    if (snap->mapping_count >= capacity && !only_what_matters) {
      // Full: from here on only what matters is kept, and what goes is
      // counted. One pass, so the capture stays linear in the mappings.
      sp_count = collect_stack_pointers(*snap);
      snap->gaps.mappings_dropped += keep_what_matters(snap, sp_count);
      only_what_matters = true;
    }
    if ((only_what_matters && !mapping_matters(*snap, m, sp_count)) || snap->mapping_count >= capacity) {
      ++snap->gaps.mappings_dropped;
      continue;
    }
    snap->mappings[snap->mapping_count++] = m;
  }
  sys::close(int(fd));
}

// --- modules -----------------------------------------------------------------

int32_t find_module(const ProcessSnapshot& snap, uint32_t path_offset) noexcept {
  const char* path = snap.path(path_offset);
  for (uint32_t i = snap.module_count; i-- > 0;) {
    uint32_t other = snap.modules[i].path_offset;
    if (other == path_offset || sys::equals(snap.path(other), path)) return int32_t(i);
  }
  return -1;
}

void capture_modules(ProcessSnapshot* snap) noexcept {
  snap->module_count = 0;
  for (uint32_t i = 0; i < snap->mapping_count; ++i) {
    const SnapshotMapping& m = snap->mappings[i];
    if (m.path_offset == 0 || !is_module_path(snap->path(m.path_offset))) continue;
    int32_t k = find_module(*snap, m.path_offset);
    if (k < 0) {
      if (snap->module_count >= kMaxModules) {
        ++snap->gaps.modules_dropped;
        continue;
      }
      k = int32_t(snap->module_count++);
      SnapshotModule& mod = snap->modules[k];
      mod = SnapshotModule{};
      mod.path_offset = m.path_offset;
      mod.start = m.start;
      mod.end = m.end;
      g_reserved.module_headers[k] = 0;
    }
    SnapshotModule& mod = snap->modules[k];
    if (m.start < mod.start) mod.start = m.start;
    if (m.end > mod.end) mod.end = m.end;
    if (m.file_offset == 0 && g_reserved.module_headers[k] == 0) g_reserved.module_headers[k] = m.start;
  }
  uintptr_t at_phdr = uintptr_t(auxv_value(*snap, AT_PHDR));
  uintptr_t vdso = uintptr_t(auxv_value(*snap, AT_SYSINFO_EHDR));
  // Keep only files that are mapped ELF images (not locale archives, shm, ...).
  uint32_t kept = 0;
  for (uint32_t i = 0; i < snap->module_count; ++i) {
    SnapshotModule mod = snap->modules[i];
    ElfImage image;
    if (g_reserved.module_headers[i] == 0 || !read_elf_image(*snap, g_reserved.module_headers[i], &image)) continue;
    mod.load_bias = image.load_bias;
    mod.build_id_size = read_build_id(*snap, image, mod.build_id, sizeof mod.build_id);
    mod.is_vdso = sys::equals(snap->path(mod.path_offset), "[vdso]") || (vdso != 0 && image.base == vdso);
    mod.is_executable = at_phdr >= mod.start && at_phdr < mod.end;
    g_reserved.module_headers[kept] = g_reserved.module_headers[i];
    snap->modules[kept++] = mod;
  }
  snap->module_count = kept;
}

// --- threads -------------------------------------------------------------------

struct ThreadLister {
  ProcessSnapshot* snap;
  bool saw_self;
};

void add_listed_thread(int tid, void* arg) noexcept {
  auto* l = static_cast<ThreadLister*>(arg);
  bool self = tid == l->snap->panicking_tid;
  if (l->snap->thread_count >= kMaxThreads) {
    // The capturing thread is put in below, in place of another (which is
    // the one counted then): a panicking thread with a high tid must not
    // lose its place, or the thread listed first would pass for it.
    if (!self) ++l->snap->gaps.threads_dropped;
    return;
  }
  l->saw_self |= self;
  l->snap->threads[l->snap->thread_count++].tid = tid;
}

// /proc/self/task, else the registry (stop.hpp): either way the capturing
// thread is in the list, so that a dump always has its stack.
void list_threads(ProcessSnapshot* snap) noexcept {
  snap->thread_count = 0;
  ThreadLister lister{snap, false};
  for_each_thread(add_listed_thread, &lister, &snap->gaps.thread_source);
  // Without /proc, threads beyond kMaxThreads that the registry could not
  // list by tid are missing, and known to be: say how many.
  if (snap->gaps.thread_source != ThreadSource::kProc) snap->gaps.threads_unlisted = overflow_threads_untracked();
  if (!lister.saw_self && snap->panicking_tid > 0) {
    if (snap->thread_count >= kMaxThreads) {
      snap->thread_count = kMaxThreads - 1;  // room for the one that matters; the one it replaces is left out
      ++snap->gaps.threads_dropped;
    }
    snap->threads[snap->thread_count++].tid = snap->panicking_tid;
  }
}

// The kernel lists tasks in tid order already; insertion sort is linear then.
void sort_threads_by_tid(ProcessSnapshot* snap) noexcept {
  for (uint32_t i = 1; i < snap->thread_count; ++i) {
    int tid = snap->threads[i].tid;
    uint32_t j = i;
    while (j > 0 && snap->threads[j - 1].tid > tid) {
      snap->threads[j].tid = snap->threads[j - 1].tid;
      --j;
    }
    snap->threads[j].tid = tid;
  }
}

int32_t find_thread_index(const ProcessSnapshot& snap, int tid) noexcept {
  uint32_t lo = 0, hi = snap.thread_count;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (snap.threads[mid].tid < tid)
      lo = mid + 1;
    else if (snap.threads[mid].tid > tid)
      hi = mid;
    else
      return int32_t(mid);
  }
  return -1;
}

// One pass over the slot registry instead of a registry search per thread.
void attach_slots(const ProcessSnapshot& snap) noexcept {
  for (uint32_t i = 0; i < snap.thread_count; ++i) g_reserved.thread_slots[i] = nullptr;
  ThreadSlot* slots = slot_array();
  if (slots == nullptr) return;
  size_t n = slot_count();
  for (size_t i = 0; i < n; ++i) {
    if (slots[i].in_use.load(std::memory_order_acquire) == 0) continue;
    int32_t k = find_thread_index(snap, slots[i].tid.load(std::memory_order_relaxed));
    if (k >= 0) g_reserved.thread_slots[k] = &slots[i];
  }
}

// Rotates the thread `tid` (tids and slots only) to the front.
void move_to_front(ProcessSnapshot* snap, int tid) noexcept {
  int32_t k = find_thread_index(*snap, tid);
  if (k <= 0) return;
  ThreadSlot* slot = g_reserved.thread_slots[k];
  for (int32_t i = k; i > 0; --i) {
    snap->threads[i].tid = snap->threads[i - 1].tid;
    g_reserved.thread_slots[i] = g_reserved.thread_slots[i - 1];
  }
  snap->threads[0].tid = tid;
  g_reserved.thread_slots[0] = slot;
}

// Reads /proc/self/task/TID/FILE into buf; returns what read_proc_file() does.
long read_task_file(int tid, const char* file, char* buf, size_t cap) noexcept {
  char path[64];
  sys::format(path, sizeof path, "task/%d/%s", tid, file);
  return read_proc_file(ProcScope::kProcess, path, buf, cap);
}

void fill_from_slot(SnapshotThread* t, ThreadSlot* slot) noexcept;

// "SigBlk:\t0000000000000000" in /proc/self/task/TID/status.
bool find_sigblk(const char* status, uint64_t* out) noexcept {
  static const char kKey[] = "\nSigBlk:";
  for (const char* p = status; *p != '\0'; ++p) {
    if (!sys::starts_with(p, kKey)) continue;
    p += sizeof kKey - 1;
    while (*p == ' ' || *p == '\t') ++p;
    size_t n = 0;
    while (p[n] != '\0' && p[n] != '\n') ++n;
    return sys::parse_hex_u64(p, n, out);
  }
  return false;
}

// What /proc shows of a thread that saved no registers. Readable for threads
// of our own process without ptrace rights, and the thread need not
// cooperate: this is all there is for one that ignored the stop.
void capture_kernel_view(int tid, KernelView* k) noexcept {
  long n = read_task_file(tid, "syscall", g_reserved.io, kIoBufferBytes);
  if (n <= 0 || !parse_task_syscall(g_reserved.io, size_t(n), k)) k->source = KernelView::Source::kUnreadable;
  if (read_task_file(tid, "status", g_reserved.io, kIoBufferBytes) > 0)
    k->has_sigblk = find_sigblk(g_reserved.io, &k->sigblk);
  read_task_file(tid, "wchan", k->wchan, sizeof k->wchan);
  size_t len = sys::bounded_strlen(k->wchan, sizeof k->wchan);
  while (len > 0 && (k->wchan[len - 1] == '\n' || k->wchan[len - 1] == ' ')) k->wchan[--len] = '\0';
  // "0": not sleeping, or the kernel hides the symbol.
  if (sys::equals(k->wchan, "0")) k->wchan[0] = '\0';
}

void set_stack_bounds(const ProcessSnapshot& snap, SnapshotThread* t) noexcept {
  uintptr_t sp = thread_stack_pointer(*t);
  if (sp == 0) return;
  // After a stack overflow, sp is in the guard: the walk starts there, and
  // every caller's frame is in the stack above it.
  const SnapshotMapping* stack = stack_mapping(snap, sp);
  if (stack != nullptr) {
    t->stack_lo = stack->start;
    t->stack_hi = stack->end;
  } else if (t->context != nullptr) {
    t->stack_lo = t->context->stack_lo;
    t->stack_hi = t->context->stack_hi;
  }
}

// The name its registry slot gives, else the kernel's comm.
void name_thread(SnapshotThread* t, const ThreadSlot* slot) noexcept {
  if (slot != nullptr && slot->name[0] != '\0') {
    sys::copy_string(t->name, sizeof t->name, slot->name);
    return;
  }
  read_task_file(t->tid, "comm", t->name, sizeof t->name);
  size_t n = sys::bounded_strlen(t->name, sizeof t->name);
  while (n > 0 && t->name[n - 1] == '\n') t->name[--n] = '\0';
}

// Returns false for a thread that is gone (exited after it was listed).
bool fill_thread(ProcessSnapshot* snap, SnapshotThread* t, ThreadSlot* slot) noexcept {
  int tid = t->tid;
  *t = SnapshotThread{};
  t->tid = tid;
  t->is_panicking = tid == snap->panicking_tid;
  const TaskStat stat = read_task_stat(tid);
  t->kernel_state = stat.state;
  t->kernel_worker = stat.kernel_worker;
  if (t->kernel_state == '\0') {
    // Only /proc can say a thread is gone; without it, keep what the registry says.
    if (snap->gaps.thread_source == ThreadSource::kProc && !t->is_panicking) return false;
    t->kernel_state = '?';
  }
  name_thread(t, slot);
  if (slot != nullptr) fill_from_slot(t, slot);
  // A panicking thread beyond kMaxThreads saved its registers in the
  // overflow slot; only the context there is its own.
  const ThreadSlot* shared = overflow_slot();
  if (slot == nullptr && t->is_panicking && shared->tid.load(std::memory_order_relaxed) == tid &&
      shared->context.valid)
    t->context = &shared->context;
  // Parked in the stop handler with nowhere to save its registers (no slot
  // of its own): stopped all the same, which the dumps must say rather than
  // list it as running or as not stopped.
  if (!t->stopped && !t->is_panicking && stop_acknowledged(tid)) {
    t->stopped_unsaved = true;
    ++snap->gaps.threads_unsaved;
  }
  if (t->context == nullptr && !t->is_panicking && !t->kernel_worker) {
    // A zombie (the thread group leader after pthread_exit()) has nothing more to read.
    if (t->kernel_state == 'Z' || t->kernel_state == 'X')
      t->kernel.source = KernelView::Source::kExited;
    else
      capture_kernel_view(tid, &t->kernel);
  }
  return true;
}

void fill_from_slot(SnapshotThread* t, ThreadSlot* slot) noexcept {
  StopState state = slot->stop_state.load(std::memory_order_acquire);
  t->stopped = state == StopState::kStopped && slot->context.valid;
  if (t->stopped || (t->is_panicking && slot->context.valid)) t->context = &slot->context;
  t->waiting_on = slot->waiting_on.load(std::memory_order_acquire);
  t->wait_mode = slot->wait_mode.load(std::memory_order_relaxed);
  t->panic_signal = slot->panic_signal;
  if (slot->panic_message[0] != '\0') t->panic_message = slot->panic_message;
  uint32_t held = slot->held_count;
  t->held = slot->held;
  t->held_count = held < kMaxHeldLocks ? held : uint32_t(kMaxHeldLocks);
  t->held_dropped = slot->held_dropped;
}

// Threads and what they saved; their stack bounds come once the mappings are in.
void capture_threads(ProcessSnapshot* snap) noexcept {
  list_threads(snap);
  sort_threads_by_tid(snap);
  attach_slots(*snap);
  move_to_front(snap, snap->panicking_tid);
  // A thread that exited between the listing and now is left out, and the
  // rest close up: it must not cost the others their place or their data.
  uint32_t kept = 0;
  for (uint32_t i = 0; i < snap->thread_count; ++i) {
    SnapshotThread* t = &snap->threads[kept];
    t->tid = snap->threads[i].tid;
    ThreadSlot* slot = g_reserved.thread_slots[i];
    if (!fill_thread(snap, t, slot)) {
      ++snap->gaps.threads_vanished;
      continue;
    }
    g_reserved.thread_slots[kept++] = slot;
  }
  snap->thread_count = kept;
}

void set_all_stack_bounds(ProcessSnapshot* snap) noexcept {
  for (uint32_t i = 0; i < snap->thread_count; ++i) set_stack_bounds(*snap, &snap->threads[i]);
}

// --- locks ----------------------------------------------------------------------

void capture_locks(ProcessSnapshot* snap) noexcept {
  snap->lock_count = 0;
  for (uint32_t i = 0; i < snap->thread_count; ++i) {
    const LockObject* lo = snap->threads[i].waiting_on;
    if (lo == nullptr) continue;
    bool known = false;
    for (uint32_t k = 0; !known && k < snap->lock_count; ++k) known = snap->locks[k].lock == lo;
    if (known || snap->lock_count >= kMaxSnapshotLocks) continue;
    SnapshotLock& l = snap->locks[snap->lock_count];
    l = SnapshotLock{};
    l.lock = lo;
    // The record may point at a lock that no longer exists: read it only if
    // the memory is there.
    if (memory_readable(*snap, reinterpret_cast<uintptr_t>(lo), sizeof(LockObject))) {
      l.word = lo->word.load(std::memory_order_relaxed);
      l.kind = lo->kind;
      l.name = readable_string(*snap, lo->name, 256);
      describe_lock_word(l.kind, l.word, &l.owner_tid, &l.readers);
    }
    ++snap->lock_count;
  }
}

}  // namespace

uintptr_t thread_stack_pointer(const SnapshotThread& t) noexcept {
  if (t.context != nullptr) return saved_stack_pointer(*t.context);
  return t.kernel.has_regs() ? t.kernel.sp : 0;
}

// "running", "-1 SP PC", or "NR ARG1 ... ARG6 SP PC" (hex with 0x).
bool parse_task_syscall(const char* text, size_t len, KernelView* out) noexcept {
  out->source = KernelView::Source::kUnreadable;
  while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' ' || text[len - 1] == '\0')) --len;
  if (len == 7 && sys::starts_with(text, "running")) {
    out->source = KernelView::Source::kRunning;
    return true;
  }
  constexpr size_t kMaxFields = 9;
  uint64_t fields[kMaxFields];
  size_t count = 0;
  bool negative = false;
  for (size_t i = 0; i < len;) {
    while (i < len && text[i] == ' ') ++i;
    size_t start = i;
    while (i < len && text[i] != ' ') ++i;
    if (i == start) break;
    if (count == kMaxFields) return false;
    const char* f = text + start;
    size_t n = i - start;
    bool ok;
    if (count == 0) {
      negative = f[0] == '-';
      ok = sys::parse_u64(f + negative, n - negative, &fields[0]);
    } else {
      ok = n > 2 && f[0] == '0' && f[1] == 'x' && sys::parse_hex_u64(f + 2, n - 2, &fields[count]);
    }
    if (!ok) return false;
    ++count;
  }
  if (negative) {
    if (fields[0] != 1 || count != 3) return false;
    out->syscall_nr = -1;
    out->source = KernelView::Source::kBlocked;
  } else {
    if (count != kMaxFields) return false;
    out->syscall_nr = long(fields[0]);
    for (size_t i = 0; i < 6; ++i) out->args[i] = fields[1 + i];
    out->source = KernelView::Source::kSyscall;
  }
  out->sp = uintptr_t(fields[count - 2]);
  out->pc = uintptr_t(fields[count - 1]);
  return true;
}

namespace {

// vm.max_map_count, or 0 if it cannot be read. Install time only (the first
// snapshot_mapping_capacity() is reserve_snapshot()'s), through the same
// procfs descriptor as every other /proc read.
uint64_t read_max_map_count() noexcept {
  return sys::read_decimal_and_close(proc_open(ProcScope::kSystem, "sys/vm/max_map_count", O_RDONLY));
}

std::atomic<uint32_t> g_mapping_capacity{0};

}  // namespace

uint32_t snapshot_mapping_capacity() noexcept {
  uint32_t c = g_mapping_capacity.load(std::memory_order_acquire);
  if (c != 0) return c;
  // /proc/PID/maps can list a little more than max_map_count: [vsyscall] is
  // not a mapping of the process's own.
  uint64_t want = read_max_map_count() + 16;
  if (want < kMinMappings) want = kMinMappings;
  if (want > kMaxMappingsCap) want = kMaxMappingsCap;
  uint32_t expected = 0;
  g_mapping_capacity.compare_exchange_strong(expected, uint32_t(want), std::memory_order_acq_rel);
  return g_mapping_capacity.load(std::memory_order_acquire);
}

size_t snapshot_path_capacity() noexcept {
  size_t bytes = size_t(snapshot_mapping_capacity()) * kPathBytesPerMapping;
  return bytes < kMinPathBytes ? kMinPathBytes : bytes;
}

void limit_snapshot_mappings_for_test(uint32_t entries) noexcept { g_mapping_limit = entries; }

bool reserve_snapshot() noexcept {
  open_proc_dir();
  if (g_reserved_ready.load(std::memory_order_acquire)) return true;
  Reserved r;
  r.mapping_capacity = snapshot_mapping_capacity();
  r.path_capacity = snapshot_path_capacity();
  // Threads are the bulk (kMaxThreads records); only the pages a capture
  // touches are ever backed.
  r.threads = reserve_array<SnapshotThread>(kMaxThreads, true);
  r.thread_slots = reserve_array<ThreadSlot*>(kMaxThreads, true);
  r.stack_pointers = reserve_array<uintptr_t>(kMaxThreads, true);
  r.mappings = reserve_array<SnapshotMapping>(r.mapping_capacity, true);
  r.modules = reserve_array<SnapshotModule>(kMaxModules, false);
  r.module_headers = reserve_array<uintptr_t>(kMaxModules, false);
  r.locks = reserve_array<SnapshotLock>(kMaxSnapshotLocks, true);
  r.paths = reserve_array<char>(r.path_capacity, true);
  r.io = reserve_array<char>(kIoBufferBytes, false);
  if (r.threads == nullptr || r.thread_slots == nullptr || r.stack_pointers == nullptr || r.mappings == nullptr || r.modules == nullptr ||
      r.module_headers == nullptr || r.locks == nullptr || r.paths == nullptr || r.io == nullptr)
    return false;
  if (!reserve_unwinder() || !reserve_symbolizer()) return false;
  // Installation runs once, before any panic; a lost race only leaks memory.
  if (g_reserved_ready.load(std::memory_order_acquire)) return true;
  g_reserved = r;
  g_reserved_ready.store(true, std::memory_order_release);
  return true;
}

namespace {

ProcessSnapshot* begin_capture() noexcept {
  if (!reserve_snapshot()) return nullptr;  // also checks the kept /proc descriptor
  ProcessSnapshot* snap = &g_snapshot;
  *snap = ProcessSnapshot{};
  snap->threads = g_reserved.threads;
  snap->mappings = g_reserved.mappings;
  snap->modules = g_reserved.modules;
  snap->locks = g_reserved.locks;
  snap->paths = g_reserved.paths;
  snap->paths[0] = '\0';
  snap->paths_used = 1;
  snap->pid = sys::getpid();
  snap->captured_ns = sys::realtime_ns();
  return snap;
}

// The parts of a capture, in order, and the one under way, for
// salvage_capture(). Written and read by the capturing thread only (the
// salvage runs on it after a siglongjmp): volatile, not atomic.
enum class Part : uint8_t { kNone, kAuxv, kCmdline, kThreads, kMappings, kModules, kStackBounds, kLocks, kUnwinding };
constexpr const char* kPartNames[] = {"",        "reading auxv",      "reading cmdline", "listing threads",
                                      "reading mappings", "finding modules", "setting stack bounds",
                                      "reading lock words", "unwinding"};
volatile Part g_part = Part::kNone;
volatile int g_part_tid = 0;

void enter_part(Part part, int tid = 0) noexcept {
  g_part_tid = tid;
  g_part = part;
  capture_part_reached(kPartNames[int(part)]);
}

ProcessSnapshot* finish_capture(ProcessSnapshot* snap) noexcept {
  enter_part(Part::kAuxv);
  capture_auxv(snap);
  enter_part(Part::kCmdline);
  capture_cmdline_and_comm(snap);
  // Threads before mappings: a full mapping table keeps their stacks.
  enter_part(Part::kThreads);
  capture_threads(snap);
  enter_part(Part::kMappings);
  capture_mappings(snap);
  enter_part(Part::kModules);
  capture_modules(snap);
  enter_part(Part::kStackBounds);
  set_all_stack_bounds(snap);
  enter_part(Part::kLocks);
  capture_locks(snap);
  for (uint32_t i = 0; i < snap->thread_count; ++i) {
    enter_part(Part::kUnwinding, snap->threads[i].tid);
    unwind_thread(*snap, &snap->threads[i]);
  }
  g_part = Part::kNone;
  return snap;
}

// The capturing thread alone, from its registry slot (its saved context,
// name, held locks): what the thread list is cut back to when its part was
// interrupted.
void keep_only_capturing_thread(ProcessSnapshot* snap) noexcept {
  SnapshotThread* t = &snap->threads[0];
  *t = SnapshotThread{};
  t->tid = snap->panicking_tid;
  t->is_panicking = true;
  t->kernel_state = '?';
  ThreadSlot* slot = find_slot_by_tid(t->tid);
  name_thread(t, slot);
  if (slot != nullptr) fill_from_slot(t, slot);
  snap->thread_count = 1;
}

}  // namespace

namespace {
std::atomic<uint32_t> g_captures{0};
}  // namespace

uint32_t snapshot_capture_count() noexcept { return g_captures.load(std::memory_order_relaxed); }

ProcessSnapshot* salvage_capture() noexcept {
  Part part = g_part;
  if (part == Part::kNone) return nullptr;
  g_part = Part::kNone;
  ProcessSnapshot* snap = &g_snapshot;
  snap->gaps.interrupted_while = kPartNames[int(part)];
  snap->gaps.interrupted_tid = part == Part::kUnwinding ? g_part_tid : 0;
  // Parts after the interrupted one never ran: their counts are still the
  // zeros begin_capture() left.
  if (part <= Part::kThreads) {
    keep_only_capturing_thread(snap);
    snap->gaps.threads_cut = true;
  }
  if (part == Part::kMappings) {
    uint32_t n = 0;
    while (n < snap->mapping_count && snap->mappings[n].start < snap->mappings[n].end &&
           (n == 0 || snap->mappings[n - 1].end <= snap->mappings[n].start))
      ++n;
    snap->mapping_count = n;
  }
  if (part == Part::kModules) snap->module_count = 0;
  return snap;
}

ProcessSnapshot* capture_snapshot() noexcept {
  g_captures.fetch_add(1, std::memory_order_relaxed);
  g_part = Part::kNone;  // until begin_capture() has set the tables up, there is nothing to salvage
  ProcessSnapshot* snap = begin_capture();
  if (snap == nullptr) return nullptr;
  snap->panicking_tid = sys::gettid();
  return finish_capture(snap);
}

}  // namespace panicstop::detail
