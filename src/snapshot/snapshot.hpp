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
#include "thread/slot.hpp"

namespace panicstop::detail {

inline constexpr size_t kMaxFrames = 64;
inline constexpr size_t kMaxMappings = 8192;
inline constexpr size_t kMaxModules = 1024;
inline constexpr size_t kMaxPathBytes = 512 * 1024;  // pool for mapping and module paths
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
  bool is_panicking = false;
  bool stopped = false;            // acknowledged the stop; context is valid
  const SavedContext* context = nullptr;  // nullptr if the thread did not stop
  KernelView kernel;                      // filled when context is nullptr
  uintptr_t stack_lo = 0, stack_hi = 0;   // the mapping holding its stack pointer
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

struct ProcessSnapshot {
  int pid = 0;
  // The thread that captured (the panicking thread, or kdb's / a live
  // dump's caller); its thread is threads[0].
  int panicking_tid = 0;
  int64_t captured_ns = 0;

  uint32_t thread_count = 0;
  SnapshotThread* threads = nullptr;   // [kMaxThreads], panicking thread first
  uint32_t mapping_count = 0;
  SnapshotMapping* mappings = nullptr; // [kMaxMappings], address order
  uint32_t module_count = 0;
  SnapshotModule* modules = nullptr;   // [kMaxModules]
  uint32_t lock_count = 0;
  SnapshotLock* locks = nullptr;       // [kMaxSnapshotLocks]
  char* paths = nullptr;               // [kMaxPathBytes]
  uint32_t paths_used = 0;

  uint64_t auxv[128] = {};             // /proc/self/auxv, pairs, AT_NULL-terminated
  uint32_t auxv_words = 0;
  char cmdline[256] = {};              // argv joined with spaces, for NT_PRPSINFO
  char comm[16] = {};

  const char* path(uint32_t offset) const noexcept { return paths != nullptr ? paths + offset : ""; }
};

// Reserves the snapshot's storage (idempotent; called at install).
bool reserve_snapshot() noexcept;
// Captures the process into the reserved snapshot and returns it; the
// calling thread leads, with the context it saved for itself (the panicking
// thread's fault context, or kdb's save_own_context_via_signal()). The caller
// holds the stopper role, so no other capture runs at the same time unless a
// panic takes the stop over, and then the caller is parked for good. Never
// allocates. Returns nullptr only if the storage cannot be reserved.
// What happened (signal, message, ...) is not the snapshot's: see
// crash_record.hpp, which is what the dumps are written from.
ProcessSnapshot* capture_snapshot() noexcept;

// How many captures this process ran (tests check that a panic captures once).
uint32_t snapshot_capture_count() noexcept;

}  // namespace panicstop::detail
