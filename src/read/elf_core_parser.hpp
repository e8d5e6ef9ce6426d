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
};

// True if the data starts with the ELF magic.
bool looks_like_elf(std::string_view data) noexcept;

// Throws ReadError with a one-line description of the first problem: a
// truncated or foreign ELF header, program headers or segments past the end
// of the file, a note whose sizes run past its segment, a register note of
// the wrong size, an NT_FILE table that does not fit, no thread at all.
CoreFile parse_elf_core(std::span<const unsigned char> image);

// The report as far as the headers and notes tell: message (PANICSTOP note,
// else "no panicstop note: core of PID (signal N)"), threads with pc/sp and
// a one-frame stack, locks. Throws ReadError for a malformed PANICSTOP note.
Report report_from_core(const CoreFile& core);

}  // namespace panicstop::read
