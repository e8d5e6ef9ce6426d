// Validating parser for ELF core files (ours, the kernel's, gdb's gcore),
// working on an in-memory image and never trusting an offset, size or count
// from the file: every one is bounds-checked against the image before use.
// It reads the headers and notes only; unwinding is symbolize.hpp's job and
// runs only on a file this parser accepted.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "read/report.hpp"

namespace panicstop::read {

struct CoreThread {
  int tid = 0;
  int signal = 0;     // pr_cursig
  uint64_t pc = 0, sp = 0;
};

struct CoreFileMapping {
  uint64_t start = 0, end = 0, page_offset = 0;
  std::string path;
};

struct CoreLoad {
  uint64_t vaddr = 0, memsz = 0, offset = 0, filesz = 0;
};

struct CoreFile {
  uint16_t machine = 0;                   // EM_X86_64 or EM_AARCH64
  size_t load_segments = 0;
  std::vector<CoreThread> threads;        // NT_PRSTATUS order: the first is the crashed thread
  bool has_prpsinfo = false;
  int pid = 0;
  std::string command;                    // NT_PRPSINFO pr_fname
  std::string arguments;                  // NT_PRPSINFO pr_psargs
  int siginfo_signal = 0;                 // NT_SIGINFO si_signo, 0 if absent
  size_t auxv_entries = 0;
  std::vector<CoreFileMapping> files;     // NT_FILE
  std::optional<std::string> panicstop_note;
  std::vector<CoreLoad> loads;            // PT_LOAD segments, as the headers give them
  // Set when segments run past the end of the file: what was cut. The
  // threads, notes and memory above are what lies before the end.
  std::optional<Truncation> truncation;
};

// One line saying what a truncated core lost: "core truncated at N of M
// bytes: K of L memory segments cut (J wholly missing); notes cut after note
// P (later threads and notes lost); stacks of threads X, Y unreadable"
// ("stack of thread X" for one).
std::string describe_truncation(const Truncation& cut);

// True if the data starts with the ELF magic.
bool looks_like_elf(std::string_view data) noexcept;

// Throws ReadError with a one-line description of the first problem: a
// truncated or foreign ELF header, program headers past the end of the
// file, a note whose sizes run past its segment, a register note of the
// wrong size, an NT_FILE table that does not fit, no thread at all.
//
// A file cut short after its program headers (segments that run past its
// end) is not refused: the notes that lie wholly before the end are read
// (the first one cut ends the note segment), memory segments are kept as
// the headers give them, and `truncation` says what is missing. It is
// refused only when no thread's registers survive.
CoreFile parse_elf_core(std::span<const unsigned char> image);

// The report as far as the headers and notes tell: message (PANICSTOP note,
// else "no panicstop note: core of PID (signal N)"), threads with pc/sp and
// a one-frame stack, locks; for a truncated core, Report::truncated with the
// threads whose stack memory is past the end. Throws ReadError for a
// malformed PANICSTOP note.
Report report_from_core(const CoreFile& core);

}  // namespace panicstop::read
