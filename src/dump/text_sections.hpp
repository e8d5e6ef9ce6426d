// The pieces of the text report (text_report.hpp) that kdb's console prints
// on their own: a thread's block, the locks section, one thread's wait. The
// report is assembled from these same functions, so a thread's block reads
// the same in a dump and at the console.
//
// Crash-path rules: no allocation, raw writes. Frames are symbolized, so
// every caller brackets its output with symbolizer_begin()/symbolizer_end()
// (snapshot/symbolize.hpp).
#pragma once

#include <cstdarg>
#include <cstddef>

#include "snapshot/crash_record.hpp"
#include "sys/format.hpp"

namespace panicstop::detail {

// Buffered output to a descriptor; remembers the first write error (later
// output is dropped). The buffer is static (the crash path has no heap and
// the signal stack is small): one ReportOut may exist at a time, so a caller
// that also writes dumps ends its ReportOut first.
class ReportOut {
 public:
  explicit ReportOut(int fd) noexcept : fd_(fd) {}
  ~ReportOut() { flush(); }
  ReportOut(const ReportOut&) = delete;
  ReportOut& operator=(const ReportOut&) = delete;

  void write(const char* s, size_t n) noexcept;
  // One line: the format (sys::FixedWriter's printf subset), then '\n'.
  // Longer than 1 KiB is truncated.
  void line(const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));
  void blank() noexcept { write("\n", 1); }
  // Writes what is buffered; false once any write has failed.
  bool flush() noexcept;

 private:
  int fd_;
  bool ok_ = true;
  size_t used_ = 0;
  static char buffer_[64 * 1024];
};

// The report's one-token kind names: "mutex", "spin_mutex", "rwlock", "sx_lock"
// (else "lock"); lock_kind_name() in lock_object.hpp has the spaced ones.
const char* report_kind_name(LockKind kind) noexcept;

// The state in a thread's header: "panicking" (panicked) or "dumping" (kdb,
// live dump) for the thread that captured the snapshot, else "stopped",
// "not_stopped" (the stop did not catch it) or "running".
const char* thread_state_name(const CrashRecord& rec, const SnapshotThread& t, bool panicked) noexcept;

// The snapshot's thread with this tid, or nullptr.
const SnapshotThread* find_thread(const ProcessSnapshot& snap, int tid) noexcept;

// "the fault address is 240 bytes below the panicking thread's stack,
// 0x7f..-0x7f.. (8192 KiB)", for a stack overflow: a fault at fault_address
// below the stack [stack_lo, stack_hi) (CrashFacts::overflowed_stack_lo):
// the report's "stack overflow: " line and the minidump's stack_overflow
// annotation. Writes nothing and returns false when stack_lo is 0 (the fault
// is not one).
bool describe_stack_overflow(sys::FixedWriter& w, uintptr_t fault_address, uintptr_t stack_lo,
                             uintptr_t stack_hi) noexcept;

// What the thread waits for, as the report's "waiting for" line has it
// without the indent: `waiting for mutex "cache" (0x...) held by thread 42`.
// Writes nothing and returns false when it waits for no panicstop lock.
bool describe_wait(sys::FixedWriter& w, const ProcessSnapshot& snap, const SnapshotThread& t) noexcept;

// WITNESS's "  holding ..." lines for the locks the thread holds (none when
// WITNESS is not built in or off). Returns the number of lines written.
size_t write_held_lock_lines(ReportOut& out, const ProcessSnapshot& snap, const SnapshotThread& t) noexcept;

// One thread's block: header line, what /proc showed of a thread that did
// not stop, signal and wait lines, held locks, frames (or why there are none).
void write_thread_block(ReportOut& out, const CrashRecord& rec, const SnapshotThread& t,
                        bool panicked) noexcept;

// Every thread, as the report has them: the snapshot's first thread alone,
// then threads with identical stacks grouped under one printed stack.
void write_thread_blocks(ReportOut& out, const CrashRecord& rec, bool panicked) noexcept;

// "locks:" and one line per lock some thread waits for:
// "  0xADDR kind=mutex name=cache owner=TID readers=0 word=0x... waiters=TID,TID".
// Writes nothing when no thread waits for a lock.
void write_locks_section(ReportOut& out, const ProcessSnapshot& snap) noexcept;

}  // namespace panicstop::detail
