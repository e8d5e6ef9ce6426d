// The PT_NOTE segment of the ELF core, in the order docs/DESIGN.md, section 6, explains:
// the panicking thread's NT_PRSTATUS, NT_PRPSINFO, NT_SIGINFO, NT_AUXV,
// NT_FILE, the panicking thread's FP notes, then every other thread's
// NT_PRSTATUS followed by its own FP notes, then the PANICSTOP note. A thread
// that did not stop has an NT_PRSTATUS with only the pc and sp /proc gave,
// and no FP notes; one without even those (it was running) has no note.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dump/core_sink.hpp"
#include "snapshot/crash_record.hpp"

namespace panicstop::detail::core {

struct NoteInputs {
  const CrashRecord* rec = nullptr;     // what the notes describe
  const ProcessSnapshot* snap = nullptr;  // rec->snapshot
  uint64_t page_size = 4096;
  // (dev, inode) of the executable: its NT_FILE entries go first because lldb
  // takes the first entry as the main program. inode 0: address order only.
  uint32_t exe_dev_major = 0, exe_dev_minor = 0;
  uint64_t exe_inode = 0;
  // fs_base of the thread calling the writer (only that thread's is known).
  int current_tid = 0;
  uint64_t current_fs_base = 0;
  // x86_64: where this CPU's XSAVE layout keeps PKRU (CPUID 0xD.9 EBX).
  uint32_t pkru_offset = 0;
  // Scratch for one register note (>= 4096 + 512 bytes).
  unsigned char* scratch = nullptr;
  size_t scratch_size = 0;
  // Filled in by emit_notes (once, not per thread).
  int ppid = 0, pgrp = 0, sid = 0;
};

// Writes the whole note segment to sink; with a counting sink it measures it.
void emit_notes(const NoteInputs& in, CoreSink& sink) noexcept;

// Writes the PANICSTOP note's text (format in dump/elf_core.hpp).
void emit_panicstop_text(const CrashRecord& rec, CoreSink& sink) noexcept;

// Is the mapping backed by a file that NT_FILE should name?
bool is_file_mapping(const ProcessSnapshot& snap, const SnapshotMapping& m) noexcept;

}  // namespace panicstop::detail::core
