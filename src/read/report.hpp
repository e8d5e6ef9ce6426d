// The reader's model of one dump, whatever file it came from: a text report
// written by panicstop, a panicstop ELF core, or a kernel / gcore core. The
// `show` command fills one Report and renders it as text or JSON.
//
// Not on the crash path: allocates freely and reports bad input by throwing
// ReadError, whose what() is one line without the file name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_set>
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

// A thread's frames, innermost first. Copies share one list: the threads of
// a text report's "N threads with this stack" group hold one list between
// them, so the reader's memory follows the size of the file, never threads
// times frames. Read access is const only; push_back, assign and assignment
// give this thread a list of its own first when it shares one (copy on
// write). A pass that fixes up every stack once (symbolization) changes the
// list in place through shared(), and every thread holding it sees that.
class FrameList {
 public:
  FrameList() = default;
  FrameList(std::vector<Frame> frames)  // NOLINT(google-explicit-constructor): a thread's frames are a vector
      : list_(std::make_shared<std::vector<Frame>>(std::move(frames))) {}

  size_t size() const noexcept { return list_ ? list_->size() : 0; }
  bool empty() const noexcept { return size() == 0; }
  const Frame& operator[](size_t i) const { return (*list_)[i]; }
  const Frame& front() const { return list_->front(); }
  const Frame& back() const { return list_->back(); }
  const Frame* begin() const noexcept { return list_ ? list_->data() : nullptr; }
  const Frame* end() const noexcept { return list_ ? list_->data() + list_->size() : nullptr; }

  void push_back(Frame f) { own().push_back(std::move(f)); }
  void assign(size_t n, const Frame& f) { own().assign(n, f); }
  void clear() { list_.reset(); }

  // True when both hold the same list (not merely equal frames).
  bool same_list(const FrameList& other) const noexcept { return list_ != nullptr && list_ == other.list_; }
  // The list itself, shared with every copy: see the class comment.
  std::vector<Frame>& shared() {
    if (!list_) list_ = std::make_shared<std::vector<Frame>>();
    return *list_;
  }

 private:
  std::vector<Frame>& own() {
    if (!list_) {
      list_ = std::make_shared<std::vector<Frame>>();
    } else if (list_.use_count() > 1) {
      list_ = std::make_shared<std::vector<Frame>>(*list_);
    }
    return *list_;
  }
  std::shared_ptr<std::vector<Frame>> list_;
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
  FrameList frames;                 // innermost first; may be shared with other threads
  // The panicking thread only: the pc of an earlier fault that the program's
  // handler resumed elsewhere as if called from it (docs/DESIGN.md,
  // invariant 13). A frame holding this pc is the faulting instruction, not
  // a return address, and is looked up as it is. 0 when there is none.
  uint64_t earlier_fault_pc = 0;
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

// What a core cut short (a full disk, a killed writer, a partial copy)
// lost: the reader shows what the remaining bytes hold and says this.
struct Truncation {
  uint64_t file_bytes = 0;           // the file's size
  uint64_t expected_bytes = 0;       // where its furthest segment should end
  size_t segments = 0;               // PT_LOAD segments the headers list
  size_t segments_cut = 0;           // of them, with bytes past the end (wholly or in part)
  size_t segments_missing = 0;       // of those, wholly past the end
  bool notes_cut = false;            // the note segment is cut: notes after notes_read are lost
  size_t notes_read = 0;
  std::vector<int> unreadable_stacks;  // threads whose stack memory (at sp) is past the end
};

struct Report {
  enum class Kind { kTextReport, kCore, kMinidump };
  Kind kind = Kind::kTextReport;
  std::string message;
  bool has_panicstop_note = false;  // cores: a PANICSTOP note was present
  int pid = 0;                      // 0 when unknown
  int signal = 0;
  int panicking_tid = 0;
  // A live dump (live_dump(), kdb, `panicstop dump PID`): the process was
  // frozen, dumped and then went on; nothing panicked. Then signal and
  // panicking_tid are 0, dumping_tid is the thread that took the dump (its
  // state "dumping"), and no thread carries a signal (a core's SIGSTOP is
  // there for debuggers, not a cause).
  bool live_dump = false;
  int dumping_tid = 0;
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
  std::optional<Truncation> truncated;   // cores only: set when the file is shorter than its headers say
};

// Makes `report` a live dump taken by thread `tid` (0: unknown): see
// Report::live_dump. That thread's state becomes "dumping" and its signal 0;
// the rest of the report is left as read.
inline void mark_live_dump(Report& report, int tid) {
  report.live_dump = true;
  report.dumping_tid = tid;
  report.panicking_tid = 0;
  report.signal = 0;
  for (Thread& t : report.threads) {
    if (tid == 0 || t.tid != tid) continue;
    t.state = "dumping";
    t.signal = 0;
  }
}

// Calls fn(std::vector<Frame>&) once for each distinct non-empty frame list
// of the report's threads, however many threads share it.
template <typename Fn>
void for_each_frame_list(Report& report, Fn&& fn) {
  std::unordered_set<const std::vector<Frame>*> seen;
  for (Thread& t : report.threads) {
    if (t.frames.empty()) continue;
    std::vector<Frame>& list = t.frames.shared();
    if (seen.insert(&list).second) fn(list);
  }
}

}  // namespace panicstop::read
