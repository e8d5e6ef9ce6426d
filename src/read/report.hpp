// The reader's model of one dump, whatever file it came from: a text report
// written by panicstop, a panicstop ELF core, or a kernel / gcore core. The
// `show` command fills one Report and renders it as text or JSON.
//
// Not on the crash path: allocates freely and reports bad input by throwing
// ReadError, whose what() is one line without the file name.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace panicstop::read {

// Thrown for unreadable, malformed or truncated input. The message is one
// line ("ELF header truncated: 40 of 64 bytes") meant to follow "FILE: ".
class ReadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Frame {
  uint64_t pc = 0;                  // as printed in the report / unwound from the core
  std::string function;             // "" when unknown; demangled when symbolized
  std::optional<uint64_t> offset;   // pc - function start, when known
  std::string module;               // path or file name of the module, "" when unknown
  std::optional<uint64_t> module_offset;  // pc - module start, for a frame without a function
  std::string file;                 // source file, "" when unknown
  int line = 0;                     // 0 when unknown
};

struct Thread {
  int tid = 0;
  std::string name;                 // "" when unknown
  std::string state;                // panicking, stopped, not_stopped, or a report's own word
  std::string kernel_state;         // text reports: what follows "[state]" (R, S, D, t, ...)
  std::vector<std::string> notes;   // text reports: the block's other lines (fault, waiting for ...)
  int signal = 0;                   // pending/current signal from NT_PRSTATUS, 0 if none
  bool has_registers = false;       // cores only
  uint64_t pc = 0, sp = 0;
  std::vector<Frame> frames;        // innermost first
  // A thread that did not stop, as the writer saw it through /proc (text
  // reports: the "did not stop:" line; cores: the PANICSTOP note). Empty and
  // false for every other thread.
  bool did_not_stop = false;
  std::string register_source;      // "kernel": pc and sp from /proc; "none": no registers
  std::optional<long> syscall;      // the system call it was blocked in
  std::string syscall_name;
  std::string wchan;                // the kernel function it slept in
  std::string no_registers;         // why it has no stack ("the thread was running")
};

struct Lock {
  std::string address;              // "0x..." as written
  std::string kind;
  std::string name;
  int owner = 0;                    // 0: none or unknown
  unsigned readers = 0;
  std::string text;                 // the original line (text reports), else ""
};

struct Wait {
  int tid = 0;
  std::string lock;                 // "0x..."
  std::string mode;                 // exclusive, shared, condvar
};

// A loaded module as a text report's "modules:" section lists it.
struct Module {
  uint64_t start = 0, end = 0;      // lowest and highest mapped address
  std::string path;
  std::string build_id;             // hex, "" for none
  bool is_executable = false;
};

struct NestedPanic {
  int tid = 0;
  int signal = 0;
  int step = 0;
  std::string message;
};

struct Report {
  enum class Kind { kTextReport, kCore, kMinidump };
  Kind kind = Kind::kTextReport;
  std::string message;
  bool has_panicstop_note = false;  // cores: a PANICSTOP note was present
  int pid = 0;                      // 0 when unknown
  int signal = 0;
  int panicking_tid = 0;
  std::string executable;           // cores: from NT_PRPSINFO / NT_FILE
  std::vector<Thread> threads;
  std::vector<Lock> locks;
  std::vector<Wait> waits;
  std::vector<NestedPanic> nested;
  std::vector<int> not_stopped;
  std::vector<Module> modules;
  std::vector<std::string> header_lines;  // text reports: lines between "panic:" and the first thread
  std::vector<std::string> other_lines;   // text reports: later lines in sections the parser does not know
  std::vector<std::string> warnings;     // things that limited the output (no debug info, unwind failed)
};

}  // namespace panicstop::read
