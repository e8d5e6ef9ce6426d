// The crash record: everything a dump is made of, taken once by the capture
// step right after the stop and then only read. It is the snapshot (what the
// process looked like: threads, mappings, modules, locks) plus the crash facts
// (what happened: signal, code, fault address, message, nested panics, the
// threads the stop did not catch, how long the stop took, what it repaired).
//
// Every dump writer, the debugger/trace step and kdb's console read a record
// and nothing else: none of them reaches back into the panic layer, so a
// writer is a function of (record, its options) and its tests build a record
// by hand. This layer sits below the panic layer: the facts are filled by
// whoever captures (dump/dump_step.cpp for a panic, kdb for a live dump).
//
// Crash path: the record lives in static storage; capture never allocates.
#pragma once

#include <cstddef>
#include <cstdint>

#include "snapshot/snapshot.hpp"
#include "thread/program_signals.hpp"

namespace panicstop::detail {

inline constexpr size_t kCrashMessageMax = 1024;  // the panic message, with its NUL
inline constexpr size_t kCrashNestedMax = 16;
inline constexpr size_t kCrashNestedMessageMax = 256;

// A panic that did not get the panic path: a fault, overrun or panic() inside
// one of the panicking thread's steps, or a second thread's panic.
struct CrashNested {
  int tid = 0;
  int signo = 0;            // 0: a panic() call or a step's overrun
  int step = 0;             // the panic layer's step number (the core's note records it)
  bool same_thread = false; // the panicking thread itself
  char step_name[48] = {};  // "dump (core)", "pre-dump hooks", ... for the text report
  char message[kCrashNestedMessageMax] = {};
};

struct CrashFacts {
  // The panic's message; nullptr for a live dump (kdb, live_dump()). Points
  // into storage that outlives the record (the panic layer's own).
  const char* message = nullptr;
  char live_reason[256] = {};  // a live dump's reason, as its caller said
  int signo = 0;               // the fatal signal; SIGABRT for panic(); 0 live
  int si_code = 0;
  uintptr_t fault_address = 0;
  // The stop, as stop_other_threads() reported it. stop_enabled false: the
  // panic path was told not to stop (PANICSTOP_STOP_ON_PANIC=0).
  bool stop_enabled = true;
  uint32_t threads_stopped = 0;
  int64_t start_ns = 0;        // CLOCK_MONOTONIC at the panic (or the live stop's start)
  int64_t stopped_ns = 0;      // when the stop finished
  uint32_t not_stopped_count = 0;
  const int* not_stopped_tids = nullptr;  // the first kMaxNotStoppedListed of them
  // Nested panics. As of capture; the panic path brings the list up to date
  // before each writer, so that a dump names an earlier writer's failure.
  uint32_t nested_count = 0;   // entries in nested (at most kCrashNestedMax)
  CrashNested nested[kCrashNestedMax];
  char note[256] = {};         // what the stop had to repair first; "" if nothing
  // A panic that names no fault of its own may end the handling of an
  // earlier one (thread/program_signals.hpp, ResumedFault); sig 0 if none.
  // Set by set_earlier_fault() once the snapshot is taken.
  ResumedFault earlier_fault{};
  // A stack overflow: the fault address lies in the guard (or, for the main
  // thread, the gap) just below the panicking thread's stack, whose bounds
  // these are; both 0 when the fault is not one. Set by
  // set_stack_overflow() once the snapshot is taken.
  uintptr_t overflowed_stack_lo = 0, overflowed_stack_hi = 0;
};

struct CrashRecord {
  CrashFacts facts;
  // Never nullptr in a record handed to a writer or a console.
  const ProcessSnapshot* snapshot = nullptr;

  bool panicked() const noexcept { return facts.message != nullptr; }
  const ProcessSnapshot& snap() const noexcept { return *snapshot; }
};

// The first kMaxNotStoppedListed entries of facts.not_stopped_tids (fewer if
// fewer threads did not stop).
uint32_t not_stopped_listed(const CrashFacts& facts) noexcept;
// Is tid among the listed threads that did not stop?
bool listed_not_stopped(const CrashFacts& facts, int tid) noexcept;

// The process's one record, its facts cleared and its snapshot unset, for the
// caller to fill before capture_crash_record(). One capture at a time: the
// caller holds the stopper role (the panicking thread, or a kdb session).
CrashRecord& reset_crash_record() noexcept;

// Captures the snapshot into rec (the calling thread leads). Returns false,
// leaving rec.snapshot nullptr, only if the snapshot storage cannot be
// reserved. Never allocates.
bool capture_crash_record(CrashRecord& rec) noexcept;

// Records the panicking thread's last resumed fault as what the panic is
// about if that fault's frame is still on the thread's stack: a runtime that
// handles a crash on the thread's own stack (Mono's crash reporter) or turns
// the fault into a call (Go's sigpanic) leaves the faulting pc there as a
// return address, among the snapshot's frames of the panicking thread. One
// whose handler resumed at code that then unwound past it (an exception a
// JVM or V8 raised for a null check or a WebAssembly trap, caught by the
// program) does not, and its fault is left out. After capture_crash_record().
void set_earlier_fault(CrashRecord& rec, const ResumedFault& fault) noexcept;

// How far above its stack's bottom the panicking thread's stack pointer may
// still be when set_stack_overflow() calls its fault an overflow: the
// largest frame a compiler sets up before its first store (stack probes go
// a page at a time).
inline constexpr uintptr_t kOverflowingSpReach = 64 * 1024;

// Records the panic's fault as a stack overflow if it is one: a SIGSEGV or
// SIGBUS whose address is below the panicking thread's stack (its snapshot
// bounds: the mapping stack_mapping() gives for its stack pointer) by at most
// kStackOverflowReach, with the stack pointer itself below that stack's
// bottom or within kOverflowingSpReach above it. A wild pointer into some
// other guard is not one. After capture_crash_record().
void set_stack_overflow(CrashRecord& rec) noexcept;

}  // namespace panicstop::detail
