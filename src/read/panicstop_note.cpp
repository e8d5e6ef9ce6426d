#include "read/panicstop_note.hpp"

#include <charconv>
#include <cstdio>
#include <string>
#include <unordered_map>

#include "sys/signal_names.hpp"

namespace panicstop::read {
namespace {

struct Field {
  std::string_view key, value;
};

// Splits "a=1 b=2 message=rest of line" into fields; "message",
// "live_reason" and "note" take the rest.
std::vector<Field> split_fields(std::string_view line) {
  std::vector<Field> fields;
  while (!line.empty()) {
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    if (line.empty()) break;
    size_t eq = line.find('=');
    size_t space = line.find(' ');
    if (eq == std::string_view::npos || (space != std::string_view::npos && space < eq)) {
      fields.push_back({line.substr(0, space), {}});
      if (space == std::string_view::npos) break;
      line.remove_prefix(space);
      continue;
    }
    std::string_view key = line.substr(0, eq);
    line.remove_prefix(eq + 1);
    if (key == "message" || key == "live_reason" || key == "note") {
      fields.push_back({key, line});
      break;
    }
    space = line.find(' ');
    fields.push_back({key, line.substr(0, space)});
    if (space == std::string_view::npos) break;
    line.remove_prefix(space);
  }
  return fields;
}

// The field's value as a number: decimal, or with base 16 hexadecimal after "0x".
template <typename Int>
Int number(const Field& f, size_t line_no, int base = 10) {
  std::string_view digits = f.value;
  bool prefixed = base != 16 || digits.substr(0, 2) == "0x";
  if (base == 16) digits.remove_prefix(prefixed ? 2 : 0);
  Int out{};
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out, base);
  if (!prefixed || digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size()) {
    throw ReadError("PANICSTOP note line " + std::to_string(line_no) + ": " + std::string(f.key) +
                    " is not a number: \"" + std::string(f.value.substr(0, 40)) + "\"");
  }
  return out;
}

// The report's thread `tid`, added when the core has none; index maps tids
// to positions (a linear search per line would make a note of many threads
// quadratic).
Thread& thread_for(Report& report, std::unordered_map<int, size_t>& index, int tid) {
  auto [it, is_new] = index.try_emplace(tid, report.threads.size());
  if (is_new) {
    Thread t;
    t.tid = tid;
    report.threads.push_back(t);
  }
  return report.threads[it->second];
}

// The text report's "did not stop:" line, rebuilt from the note's fields
// so a core reads like the report written beside it. A thread whose state is
// "stopped" but that has a kernel view stopped without saving registers (it
// had no registry slot of its own): the report says so, not "did not stop".
void describe_did_not_stop(Thread& t, std::string_view view, std::string_view blocked) {
  bool stopped = t.state == "stopped";
  t.did_not_stop = !stopped;
  if (t.register_source.empty()) t.register_source = "none";
  std::string line = std::string(stopped ? "stopped, registers not saved (no slot of its own): state "
                                         : "did not stop: state ") +
                     (t.kernel_state.empty() ? std::string("?") : t.kernel_state);
  if (view == "syscall" && t.syscall) {
    line += ", blocked in syscall " + std::to_string(*t.syscall);
    if (!t.syscall_name.empty()) line += " (" + t.syscall_name + ")";
  } else if (view == "blocked") {
    line += ", blocked outside a system call";
  } else if (view == "running") {
    line += ", running";
  }
  if (!t.wchan.empty()) line += ", wchan " + t.wchan;
  if (!blocked.empty()) line += ", " + std::string(blocked) + "-stop signal blocked";
  if (t.register_source == "kernel") {
    line += "; pc and sp from /proc/self/task/" + std::to_string(t.tid) + "/syscall";
  } else if (view == "running") {
    line += "; no registers";
    t.no_registers = "the thread was running";
  } else {
    line += "; /proc/self/task/" + std::to_string(t.tid) + "/syscall unreadable";
    t.no_registers = "its /proc syscall file was unreadable";
  }
  t.notes.push_back(line);
}

}  // namespace

void apply_panicstop_note(std::string_view text, Report& report) {
  report.has_panicstop_note = true;
  std::unordered_map<int, size_t> index;
  for (size_t i = 0; i < report.threads.size(); ++i) index.try_emplace(report.threads[i].tid, i);
  size_t line_no = 0;
  bool has_signal = false;
  std::string_view live_reason;
  std::string stack_overflow;  // the panicking thread's notes, once its tid is known
  std::string earlier_fault;
  uint64_t earlier_fault_pc = 0;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++line_no;
    while (!line.empty() && (line.back() == '\0' || line.back() == '\r')) line.remove_suffix(1);
    std::vector<Field> fields = split_fields(line);
    if (fields.empty()) continue;
    const Field& head = fields.front();
    if (head.key == "version") {
      if (number<int>(head, line_no) != 1) {
        throw ReadError("PANICSTOP note version " + std::string(head.value) + " is not supported (this reader knows 1)");
      }
    } else if (head.key == "message") {
      report.message = std::string(head.value);
    } else if (head.key == "live_reason") {
      live_reason = head.value;
    } else if (head.key == "note") {
      report.other_lines.push_back("note: " + std::string(head.value));
    } else if (head.key == "panicking_tid") {
      report.panicking_tid = number<int>(head, line_no);
    } else if (head.key == "signal") {
      report.signal = number<int>(head, line_no);
      has_signal = true;
    } else if (head.key == "stack_overflow") {
      auto lo = number<uint64_t>(head, line_no, 16), hi = lo, address = lo;
      for (const Field& f : fields) {
        if (f.key == "stack_hi") hi = number<uint64_t>(f, line_no, 16);
        if (f.key == "fault_address") address = number<uint64_t>(f, line_no, 16);
      }
      char text[256];
      std::snprintf(text, sizeof text,
                    "stack overflow: the fault address is %llu bytes below the panicking thread's stack, "
                    "0x%llx-0x%llx (%llu KiB)",
                    static_cast<unsigned long long>(lo - address), static_cast<unsigned long long>(lo),
                    static_cast<unsigned long long>(hi), static_cast<unsigned long long>((hi - lo) / 1024));
      stack_overflow = text;
    } else if (head.key == "earlier_fault") {
      // As the text report says it, with the sites unsymbolized.
      int sig = number<int>(head, line_no), code = 0;
      std::string_view address, pc, resumed_pc;
      long long ms = 0;
      for (const Field& f : fields) {
        if (f.key == "code") code = number<int>(f, line_no);
        if (f.key == "address") address = f.value;
        if (f.key == "pc") pc = f.value, earlier_fault_pc = number<uint64_t>(f, line_no, 16);
        if (f.key == "resumed_pc") resumed_pc = f.value;
        if (f.key == "ms_before") ms = number<long long>(f, line_no);
      }
      const char* name = sys::signal_name(sig);
      const char* code_name = sys::si_code_name(sig, code);
      earlier_fault = std::to_string(ms) + " ms before: signal " + (name ? name : std::to_string(sig)) + " (" +
                      (code_name ? code_name : "code " + std::to_string(code)) + "), fault address " +
                      std::string(address) + ", at " + std::string(pc) + "; the program's handler resumed the thread at " +
                      std::string(resumed_pc) + " instead of returning to it";
    } else if (head.key == "thread") {
      Thread& t = thread_for(report, index, number<int>(head, line_no));
      std::string_view view, blocked;
      for (const Field& f : fields) {
        if (f.key == "name") t.name = std::string(f.value);
        if (f.key == "state") t.state = std::string(f.value);
        if (f.key == "kernel_state") t.kernel_state = std::string(f.value);
        if (f.key == "registers") t.register_source = std::string(f.value);
        if (f.key == "kernel_view") view = f.value;
        if (f.key == "syscall") t.syscall = number<long>(f, line_no);
        if (f.key == "syscall_name") t.syscall_name = std::string(f.value);
        if (f.key == "wchan") t.wchan = std::string(f.value);
        if (f.key == "stop_signal_blocked") blocked = f.value;
      }
      if (!view.empty()) describe_did_not_stop(t, view, blocked);
    } else if (head.key == "lock") {
      Lock lock;
      lock.address = std::string(head.value);
      for (const Field& f : fields) {
        if (f.key == "kind") lock.kind = std::string(f.value);
        if (f.key == "name") lock.name = std::string(f.value);
        if (f.key == "owner") lock.owner = number<int>(f, line_no);
        if (f.key == "readers") lock.readers = number<unsigned>(f, line_no);
      }
      report.locks.push_back(lock);
    } else if (head.key == "wait") {
      Wait wait;
      wait.tid = number<int>(head, line_no);
      for (const Field& f : fields) {
        if (f.key == "lock") wait.lock = std::string(f.value);
        if (f.key == "mode") wait.mode = std::string(f.value);
      }
      report.waits.push_back(wait);
    } else if (head.key == "nested") {
      NestedPanic nested;
      nested.tid = number<int>(head, line_no);
      for (const Field& f : fields) {
        if (f.key == "signal") nested.signal = number<int>(f, line_no);
        if (f.key == "step") nested.step = number<int>(f, line_no);
        if (f.key == "message") nested.message = std::string(f.value);
      }
      report.nested.push_back(nested);
    } else if (head.key == "not_stopped") {
      report.not_stopped.push_back(number<int>(head, line_no));
    }
  }
  if (!stack_overflow.empty() && report.panicking_tid != 0)
    thread_for(report, index, report.panicking_tid).notes.push_back(stack_overflow);
  if (!earlier_fault.empty() && report.panicking_tid != 0) {
    Thread& panicking = thread_for(report, index, report.panicking_tid);
    panicking.notes.push_back(earlier_fault);
    panicking.earlier_fault_pc = earlier_fault_pc;
  }
  // A panic always has a signal (SIGABRT for panic()); a live dump has
  // neither signal nor message, and its capturing thread is written as
  // panicking_tid with state=panicking. The core's NT_PRSTATUS says SIGSTOP
  // for that thread only so that debuggers see a stopped process.
  if (has_signal && report.signal == 0 && report.message.empty()) {
    mark_live_dump(report, report.panicking_tid);
    report.message = live_reason.empty() ? std::string(kLiveDumpMessage) : "(none) " + std::string(live_reason);
  }
}

}  // namespace panicstop::read
