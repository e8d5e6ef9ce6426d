// ProcessSnapshot: what the process looked like at the panic (Crashpad's
// snapshot/), captured once by the panicking thread with every other thread
// stopped, and handed unchanged, inside the crash record (crash_record.hpp),
// to every writer (text report, ELF core, ...). Capture allocates nothing: all storage is reserved at install.
//
// Writers only read this structure; memory contents (stacks, data) are read
// from the live, frozen process when a writer needs them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "panicstop/lock_object.hpp"
#include "stop/stop.hpp"
#include "thread/slot.hpp"

namespace panicstop::detail {

inline constexpr size_t kMaxFrames = 64;
// The mapping table holds as many mappings as the kernel lets a process have
// (vm.max_map_count, read when the storage is reserved), within these bounds;
// see snapshot_mapping_capacity().
inline constexpr size_t kMinMappings = 8192;
inline constexpr size_t kMaxMappingsCap = size_t(1) << 20;
inline constexpr size_t kMaxModules = 1024;
inline constexpr size_t kMinPathBytes = 512 * 1024;  // pool for mapping and module paths, at least
inline constexpr size_t kPathBytesPerMapping = 64;   // ...and this much per mapping of the table
inline constexpr size_t kMaxSnapshotLocks = 4096;

// What the kernel shows, without ptrace, of a thread that saved no registers
// (it did not acknowledge the stop: the stop signal blocked, or stuck in the
// kernel): /proc/self/task/TID/syscall, wchan and status, read at capture.
struct KernelView {
  enum class Source : uint8_t {
    kNone = 0,     // not read (the thread has a saved context)
    kRunning,      // "running": on a CPU or runnable, no registers to be had
    kBlocked,      // "-1 SP PC": asleep outside a system call (page fault, ...)
    kSyscall,      // "NR ARGS... SP PC": asleep in system call NR
    kUnreadable,   // the file could not be read or parsed
    kExited,       // the thread had exited (a zombie thread group leader)
  };
  Source source = Source::kNone;
  long syscall_nr = -1;
  uint64_t args[6] = {};
  uintptr_t sp = 0, pc = 0;         // user-space stack and instruction pointer
  bool has_sigblk = false;
  uint64_t sigblk = 0;              // /proc/self/task/TID/status SigBlk
  char wchan[48] = {};              // kernel function it sleeps in; "" if none
  bool has_regs() const noexcept { return source == Source::kBlocked || source == Source::kSyscall; }
  bool blocks_signal(int sig) const noexcept {
    return has_sigblk && sig > 0 && sig <= 64 && ((sigblk >> (sig - 1)) & 1) != 0;
  }
};

// Parses the text of /proc/PID/task/TID/syscall into *out (source, nr, args,
// sp, pc). Returns false, leaving source kUnreadable, for anything else.
bool parse_task_syscall(const char* text, size_t len, KernelView* out) noexcept;

struct SnapshotThread {
  int tid = 0;
  char name[kThreadNameMax] = {};  // slot name, else /proc/self/task/TID/comm
  char kernel_state = '?';         // from /proc/self/task/TID/stat: R, S, D, t, ...
  // One of the kernel's own threads in the process (stop/proc_dir.hpp,
  // TaskStat): no program code, nothing stopped, no registers.
  bool kernel_worker = false;
  bool is_panicking = false;
  bool stopped = false;            // acknowledged the stop; context is valid
  // Acknowledged the stop and is parked, but saved no registers: it had no
  // slot of its own (more live threads than kMaxThreads share the registry's
  // overflow slot). context is nullptr; kernel holds what /proc shows.
  bool stopped_unsaved = false;
  const SavedContext* context = nullptr;  // nullptr if the thread did not stop
  KernelView kernel;                      // filled when context is nullptr
  uintptr_t stack_lo = 0, stack_hi = 0;   // its stack: stack_mapping() of its stack pointer
  uint32_t frame_count = 0;
  uintptr_t frames[kMaxFrames] = {};      // program counters, innermost first
  const LockObject* waiting_on = nullptr;
  WaitMode wait_mode = WaitMode::kNone;
  int panic_signal = 0;                   // a parked second panicker's signal...
  const char* panic_message = nullptr;    // ...or message (points into its slot)
  // WITNESS's list of the locks the thread holds, oldest first (points into
  // its slot; empty unless witness is built in and on). An entry whose lock is
  // nullptr or equals waiting_on is not held (being written / not yet taken).
  const HeldLock* held = nullptr;
  uint32_t held_count = 0;                // entries in held, at most kMaxHeldLocks
  uint32_t held_dropped = 0;              // acquisitions past kMaxHeldLocks, unrecorded
};

// The stack pointer the snapshot has for t: the one it saved, else the
// kernel's (KernelView); 0 when neither is known.
uintptr_t thread_stack_pointer(const SnapshotThread& t) noexcept;

struct SnapshotMapping {
  uintptr_t start = 0, end = 0;
  uint64_t file_offset = 0;
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t inode = 0;
  bool read = false, write = false, exec = false, shared = false;
  uint32_t path_offset = 0;  // into ProcessSnapshot::paths; 0 = no path ("" at offset 0)
};

struct SnapshotModule {
  uintptr_t load_bias = 0;        // runtime address minus link-time address
  uintptr_t start = 0, end = 0;   // lowest and highest mapped address of the file
  uint32_t path_offset = 0;
  uint8_t build_id[32] = {};
  uint32_t build_id_size = 0;
  bool is_executable = false;     // the main program (AT_PHDR's module)
  bool is_vdso = false;
};

// A lock that some thread waits for, with its owner as the lock word says.
struct SnapshotLock {
  const LockObject* lock = nullptr;
  const char* name = nullptr;
  LockKind kind{};
  int owner_tid = 0;        // 0: unowned, shared-owned, or owner unknown
  uint32_t readers = 0;     // shared holders, for RwLock and SxLock
  uintptr_t word = 0;       // the raw lock word as it was
};

// What the capture could not get, so that a dump says so instead of showing
// less as if it were all (zeros mean complete).
struct CaptureGaps {
  ThreadSource thread_source = ThreadSource::kProc;  // kRegistry: /proc/self/task unreadable
  bool maps_unreadable = false;     // no mappings: no modules, no memory
  bool auxv_unreadable = false;
  bool cmdline_unreadable = false;
  uint32_t maps_lines = 0;          // mappings the kernel listed
  uint32_t mappings_dropped = 0;    // of those, not in the table (it was full)
  uint32_t mapping_capacity = 0;    // the table's size during this capture
  uint32_t paths_dropped = 0;       // mappings kept without their path (pool full)
  uint32_t modules_dropped = 0;     // ELF files past kMaxModules
  uint32_t threads_dropped = 0;     // threads past kMaxThreads
  uint32_t threads_vanished = 0;    // exited between listing and reading: left out
  uint32_t threads_unsaved = 0;     // listed threads with stopped_unsaved set
  // With thread_source kRegistry: live threads the registry knows of but
  // could not name (its table of threads beyond kMaxThreads was full), so
  // neither stopped nor listed.
  uint32_t threads_unlisted = 0;
  // The capture never finished: it faulted or overran its deadline during
  // this part ("listing threads", "unwinding", ...), and salvage_capture()
  // kept what came before it. nullptr for a capture that finished.
  const char* interrupted_while = nullptr;
  int interrupted_tid = 0;          // the thread being unwound, if that was the part
  bool threads_cut = false;         // so the thread list holds the capturing thread alone
  bool any() const noexcept {
    return thread_source != ThreadSource::kProc || maps_unreadable || auxv_unreadable || cmdline_unreadable ||
           mappings_dropped != 0 || paths_dropped != 0 || modules_dropped != 0 || threads_dropped != 0 ||
           threads_unsaved != 0 || threads_unlisted != 0 || interrupted_while != nullptr;
  }
};

struct ProcessSnapshot {
  int pid = 0;
  // The thread that captured (the panicking thread, or kdb's / a live
  // dump's caller); its thread is threads[0].
  int panicking_tid = 0;
  int64_t captured_ns = 0;

  uint32_t thread_count = 0;
  SnapshotThread* threads = nullptr;   // [kMaxThreads], panicking thread first
  uint32_t mapping_count = 0;
  SnapshotMapping* mappings = nullptr; // [snapshot_mapping_capacity()], address order
  uint32_t module_count = 0;
  SnapshotModule* modules = nullptr;   // [kMaxModules]
  uint32_t lock_count = 0;
  SnapshotLock* locks = nullptr;       // [kMaxSnapshotLocks]
  char* paths = nullptr;               // [snapshot_path_capacity()]
  uint32_t paths_used = 0;
  CaptureGaps gaps;

  uint64_t auxv[128] = {};             // /proc/self/auxv, pairs, AT_NULL-terminated
  uint32_t auxv_words = 0;
  char cmdline[256] = {};              // argv joined with spaces, for NT_PRPSINFO
  char comm[16] = {};

  const char* path(uint32_t offset) const noexcept { return paths != nullptr ? paths + offset : ""; }
};

// Reserves the snapshot's storage (idempotent; called at install). The large
// tables are address space only (MAP_NORESERVE): memory is committed page by
// page as a capture fills them.
bool reserve_snapshot() noexcept;
// Entries of the mapping table: vm.max_map_count as read at the first call
// (plus a few for what /proc lists beyond it, like [vsyscall]), at least
// kMinMappings and at most kMaxMappingsCap. Writers size per-mapping tables
// with it. When a process has more mappings than this, the capture keeps the
// ones a dump cannot do without (ELF files, [vdso], [stack], the mapping of
// every thread's stack pointer) and counts the rest in CaptureGaps.
uint32_t snapshot_mapping_capacity() noexcept;
size_t snapshot_path_capacity() noexcept;
// Tests only: the capture uses at most `entries` entries of the table (0: all),
// to exercise a full table without making max_map_count mappings.
void limit_snapshot_mappings_for_test(uint32_t entries) noexcept;
// Captures the process into the reserved snapshot and returns it; the
// calling thread leads, with the context it saved for itself (the panicking
// thread's fault context, or kdb's save_own_context_via_signal()). The caller
// holds the stopper role, so no other capture runs at the same time unless a
// panic takes the stop over, and then the caller is parked for good. Never
// allocates. Returns nullptr only if the storage cannot be reserved.
// What happened (signal, message, ...) is not the snapshot's: see
// crash_record.hpp, which is what the dumps are written from.
ProcessSnapshot* capture_snapshot() noexcept;

// After a capture_snapshot() that never returned (a fault or an overrun
// inside it, and the panic path took control back through its step's
// siglongjmp): makes what the capture had taken readable by every writer and
// records in gaps.interrupted_while where it stopped. The parts before that
// one are kept whole. The part under way is kept only where every entry it
// counted is complete (the lock list, stack bounds, frames as far as they
// got); otherwise it is cut back: the thread list to the capturing thread
// alone (with what its registry slot saved, and no stack), the mapping table
// to its address-ordered prefix, the module table to nothing. Returns
// nullptr if no capture was under way. Crash path; runs once per capture.
ProcessSnapshot* salvage_capture() noexcept;

// Called as each part of a capture begins, with the part's name as in
// gaps.interrupted_while. The library's definition (capture_seam.cpp) is weak
// and does nothing: the shipped library has no way to set a hook at run time.
// A test program that links the static library may define its own, which the
// linker takes instead, to fault or hang inside a given part. Hidden like
// every detail symbol, so the shared library neither exports it nor lets a
// program replace it. Runs on the capturing thread, on the crash path.
void capture_part_reached(const char* part) noexcept;

// How many captures this process ran (tests check that a panic captures once).
uint32_t snapshot_capture_count() noexcept;

}  // namespace panicstop::detail
