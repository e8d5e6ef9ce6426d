// Internals of the minidump writer shared by minidump_writer.cpp (layout,
// threads, memory, modules) and minidump_streams.cpp (the small streams).
#pragma once

#include <cstddef>
#include <cstdint>

#include "dump/core_sink.hpp"
#include "dump/minidump_format.hpp"
#include "snapshot/crash_record.hpp"

namespace panicstop::detail::md {

// What the minidump says about the panic itself, beyond the snapshot, taken
// from the crash record in one place (dump_facts() in minidump_writer.cpp).
struct DumpFacts {
  bool crashed = false;          // a panic; false for live dumps and kdb
  int signo = 0;
  int si_code = 0;
  uintptr_t fault_address = 0;
  const char* message = nullptr;      // the panic message, or nullptr
  const char* live_reason = nullptr;  // why a live dump was taken
  int lead_tid = 0;                   // panicking or dumping thread
  uint32_t nested_count = 0;
  const CrashNested* nested = nullptr;
  uint32_t not_stopped_count = 0;
  const char* note = nullptr;         // what the stop had to repair; "" if nothing
  const ResumedFault* earlier_fault = nullptr;  // CrashFacts::earlier_fault, if it names one
  int64_t start_ns = 0;                         // the panic's CLOCK_MONOTONIC
  uintptr_t overflowed_stack_lo = 0, overflowed_stack_hi = 0;  // CrashFacts': a stack overflow
};

inline constexpr size_t kMaxStreams = 20;

// The file being written: a CoreSink plus the stream directory, which goes at
// the start of the file once every stream's place is known.
class Out {
 public:
  explicit Out(core::CoreSink& sink) noexcept : sink_(sink) {}

  void put(const void* p, size_t n) noexcept { sink_.put(p, n); }
  void zeros(size_t n) noexcept { sink_.zeros(n); }
  void memory(uintptr_t addr, size_t n) noexcept { sink_.memory(addr, n); }
  void align8() noexcept { sink_.zeros(size_t((8 - sink_.offset() % 8) % 8)); }
  uint32_t rva() const noexcept { return uint32_t(sink_.offset()); }
  // Past 4 GiB RVAs wrap: the writer gives up instead.
  bool fits() const noexcept { return sink_.offset() < (uint64_t(1) << 32) - (uint64_t(64) << 20); }
  core::CoreSink& sink() noexcept { return sink_; }

  // An MDString (UTF-16, length in bytes, NUL) from UTF-8 text; at most
  // max_bytes of s, and never more than the 1,024 units Breakpad reads.
  // Returns its RVA.
  uint32_t string16(const char* s, size_t max_bytes) noexcept;
  // A Crashpad UTF-8 string (length, bytes, NUL). Returns its RVA.
  uint32_t string8(const char* s, size_t n) noexcept;

  // A stream starts at the current (8-aligned) offset and ends where the next
  // one starts; end_stream() records its directory entry.
  uint32_t begin_stream() noexcept {
    align8();
    return rva();
  }
  void end_stream(uint32_t type, uint32_t begin) noexcept;
  void add_stream(uint32_t type, uint32_t rva, uint32_t size) noexcept;

  uint32_t stream_count() const noexcept { return count_; }
  const Directory* directory() const noexcept { return dir_; }

 private:
  core::CoreSink& sink_;
  Directory dir_[kMaxStreams] = {};
  uint32_t count_ = 0;
};

// UTF-8 to UTF-16 (invalid bytes become U+FFFD), at most cap units, no NUL
// written. Returns the units written.
size_t utf16_from_utf8(const char* s, size_t n, uint16_t* out, size_t cap) noexcept;

// The streams of minidump_streams.cpp. buf/cap: reserved scratch for /proc
// files (the largest, maps, is cut at cap).
void write_system_info(Out& out, char* buf, size_t cap) noexcept;
void write_misc_info(Out& out, const ProcessSnapshot& snap, char* buf, size_t cap) noexcept;
void write_breakpad_info(Out& out, const DumpFacts& facts) noexcept;
void write_assertion(Out& out, const DumpFacts& facts) noexcept;
void write_crashpad_info(Out& out, const ProcessSnapshot& snap, const DumpFacts& facts) noexcept;
void write_linux_streams(Out& out, bool with_environ, char* buf, size_t cap) noexcept;

}  // namespace panicstop::detail::md
