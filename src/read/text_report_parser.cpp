#include "read/text_report_parser.hpp"

#include <algorithm>
#include <charconv>
#include <string>

#include "read/render.hpp"

namespace panicstop::read {
namespace {

constexpr std::string_view kPanicPrefix = "panic: ";
constexpr size_t kMaxSharedReasonBytes = 256;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

template <typename Int>
bool parse_int(std::string_view s, Int& out, int base = 10) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
  return ec == std::errc() && ptr == s.data() + s.size();
}

bool parse_hex(std::string_view s, uint64_t& out) {
  if (s.size() < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) return false;
  return parse_int(s.substr(2), out, 16);
}

[[noreturn]] void fail_at(size_t line_no, const std::string& what) {
  throw ReadError("line " + std::to_string(line_no) + ": " + what);
}

// "thread TID (name) [state] ..." -> Thread. The name may itself contain
// parentheses, so it runs from the first '(' to the last ')' before " [".
Thread parse_thread_header(std::string_view line, size_t line_no) {
  std::string_view rest = line.substr(std::string_view("thread ").size());
  size_t end_of_tid = rest.find(' ');
  Thread t;
  if (!parse_int(rest.substr(0, end_of_tid), t.tid) || t.tid <= 0) {
    fail_at(line_no, "bad thread id in \"" + std::string(line.substr(0, 80)) + "\"");
  }
  if (end_of_tid == std::string_view::npos) return t;
  rest = trim(rest.substr(end_of_tid));
  // The state is the last " [" whose bracket closes and leaves a name in
  // parentheses (or none) before it: the kernel state after it may itself
  // hold " [" (show prints it back as it read it).
  size_t state_open = rest.rfind(" [");
  for (size_t candidate = state_open; candidate != std::string_view::npos && candidate > 0;
       candidate = rest.rfind(" [", candidate - 1)) {
    std::string_view before = trim(rest.substr(0, candidate));
    bool name_ok = before.empty() || (before.size() >= 2 && before.front() == '(' && before.back() == ')');
    if (name_ok && rest.find(']', candidate) != std::string_view::npos) {
      state_open = candidate;
      break;
    }
  }
  if (!rest.empty() && rest.front() == '[') state_open = 0;
  std::string_view name_part = state_open == std::string_view::npos ? rest : rest.substr(0, state_open);
  if (state_open != std::string_view::npos) {
    std::string_view state_part = trim(rest.substr(state_open));
    size_t close = state_part.find(']');
    if (close == std::string_view::npos) fail_at(line_no, "thread state without ']'");
    t.state = std::string(state_part.substr(1, close - 1));
    t.kernel_state = std::string(trim(state_part.substr(close + 1)));
  }
  name_part = trim(name_part);
  if (name_part.size() >= 2 && name_part.front() == '(' && name_part.back() == ')') {
    t.name = std::string(name_part.substr(1, name_part.size() - 2));
  } else if (!name_part.empty()) {
    fail_at(line_no, "thread name not in parentheses");
  }
  return t;
}

// "#N 0xADDR function+0xOFF (module) at FILE:LINE"; everything after the
// address is optional.
Frame parse_frame(std::string_view line, size_t line_no) {
  size_t space = line.find(' ');
  unsigned index = 0;
  if (!parse_int(line.substr(1, space == std::string_view::npos ? std::string_view::npos : space - 1), index)) {
    fail_at(line_no, "bad frame number");
  }
  if (space == std::string_view::npos) fail_at(line_no, "frame without an address");
  std::string_view rest = trim(line.substr(space));
  size_t addr_end = rest.find(' ');
  Frame f;
  if (!parse_hex(rest.substr(0, addr_end), f.pc)) fail_at(line_no, "frame address is not 0x-hex");
  rest = addr_end == std::string_view::npos ? std::string_view() : trim(rest.substr(addr_end));

  // " at FILE:LINE" is what `show` appends, after the module's closing
  // parenthesis when there is a module. Both the function (templates) and
  // the file may contain " at " and parentheses, so try the split right
  // after a module first.
  size_t at = rest.find(") at ");
  at = at != std::string_view::npos ? at + 1 : rest.rfind(" at ");
  if (at != std::string_view::npos) {
    std::string_view where = rest.substr(at + 4);
    size_t colon = where.rfind(':');
    int line_number = 0;
    if (colon != std::string_view::npos && colon > 0 && parse_int(where.substr(colon + 1), line_number) &&
        line_number > 0) {
      f.file = std::string(where.substr(0, colon));
      f.line = line_number;
      rest = trim(rest.substr(0, at));
    }
  }
  if (!rest.empty() && rest.back() == ')') {
    // The module is the balanced parenthesized group at the end, preceded by
    // a space (a function's own "(int)" is not).
    size_t depth = 0, open = std::string_view::npos;
    for (size_t i = rest.size(); i-- > 0;) {
      if (rest[i] == ')') ++depth;
      if (rest[i] == '(' && --depth == 0) {
        open = i;
        break;
      }
    }
    if (open != std::string_view::npos && (open == 0 || rest[open - 1] == ' ')) {
      std::string_view module = rest.substr(open + 1, rest.size() - open - 2);
      rest = trim(rest.substr(0, open));
      // "?? (module+0xOFF)": no symbol, the offset is into the module.
      size_t plus = module.rfind("+0x");
      uint64_t module_offset = 0;
      if ((rest == "??" || rest.empty()) && plus != std::string_view::npos &&
          parse_hex(module.substr(plus + 1), module_offset)) {
        f.module_offset = module_offset;
        module = module.substr(0, plus);
      }
      f.module = std::string(module);
    }
  }
  size_t plus = rest.rfind("+0x");
  uint64_t offset = 0;
  if (plus != std::string_view::npos && parse_hex(rest.substr(plus + 1), offset)) {
    f.offset = offset;
    rest = rest.substr(0, plus);
  }
  if (rest != "??") f.function = std::string(rest);
  return f;
}

// "did not stop: state S, blocked in syscall 0 (read), wchan pipe_read,
// hard-stop signal blocked; pc and sp from /proc/self/task/TID/syscall":
// what the writer read from /proc for a thread that saved no registers.
// Parts it does not recognize are left to the note, which keeps the line.
void parse_did_not_stop(std::string_view line, Thread& t) {
  t.did_not_stop = true;
  size_t semicolon = line.find(';');
  std::string_view facts = line.substr(0, semicolon);
  std::string_view source = semicolon == std::string_view::npos ? std::string_view() : trim(line.substr(semicolon + 1));
  t.register_source = source.substr(0, 16) == "pc and sp from /" ? "kernel" : "none";
  constexpr std::string_view kSyscall = "blocked in syscall ";
  size_t at = facts.find(kSyscall);
  if (at != std::string_view::npos) {
    std::string_view rest = facts.substr(at + kSyscall.size());
    size_t end = rest.find_first_of(" ,");
    long nr = 0;
    if (parse_int(rest.substr(0, end), nr)) t.syscall = nr;
    if (end != std::string_view::npos && rest.substr(end, 2) == " (") {
      size_t close = rest.find(')', end);
      if (close != std::string_view::npos) t.syscall_name = std::string(rest.substr(end + 2, close - end - 2));
    }
  }
  constexpr std::string_view kWchan = ", wchan ";
  at = facts.find(kWchan);
  if (at != std::string_view::npos) {
    std::string_view rest = facts.substr(at + kWchan.size());
    t.wchan = std::string(rest.substr(0, rest.find(',')));
  }
}

bool is_frame_line(std::string_view t) {
  return t.size() >= 2 && t[0] == '#' && t[1] >= '0' && t[1] <= '9';
}

// A lock line: keep the text, pick out "0x..." and key=value fields when the
// writer uses them.
Lock parse_lock_line(std::string_view text) {
  Lock lock;
  lock.text = std::string(text);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view token = text.substr(pos, end - pos);
    pos = end + 1;
    size_t eq = token.find('=');
    std::string_view key = eq == std::string_view::npos ? std::string_view() : token.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? token : token.substr(eq + 1);
    uint64_t address = 0;
    if ((key.empty() || key == "lock") && lock.address.empty() && parse_hex(value, address)) {
      lock.address = std::string(value);
    } else if (key == "kind") {
      lock.kind = std::string(value);
    } else if (key == "name") {
      lock.name = std::string(value);
    } else if (key == "owner") {
      parse_int(value, lock.owner);
    } else if (key == "readers") {
      parse_int(value, lock.readers);
    }
  }
  return lock;
}

// "0xSTART-0xEND PATH build-id=HEX (executable)"; false if it is not one.
bool parse_module_line(std::string_view text, Module& m) {
  size_t dash = text.find('-');
  size_t space = text.find(' ');
  if (dash == std::string_view::npos || space == std::string_view::npos || dash > space) return false;
  if (!parse_hex(text.substr(0, dash), m.start) || !parse_hex(text.substr(dash + 1, space - dash - 1), m.end)) {
    return false;
  }
  std::string_view rest = text.substr(space + 1);
  constexpr std::string_view kExecutable = " (executable)";
  if (rest.size() >= kExecutable.size() && rest.substr(rest.size() - kExecutable.size()) == kExecutable) {
    m.is_executable = true;
    rest.remove_suffix(kExecutable.size());
  }
  size_t id = rest.rfind(" build-id=");
  if (id != std::string_view::npos) {
    std::string_view value = rest.substr(id + 10);
    m.build_id = value == "none" ? std::string() : std::string(value);
    rest = rest.substr(0, id);
  }
  m.path = std::string(rest);
  return !m.path.empty();
}

}  // namespace

uint64_t earlier_fault_pc_in(std::string_view line) noexcept {
  size_t digits = 0;
  while (digits < line.size() && line[digits] >= '0' && line[digits] <= '9') ++digits;
  if (digits == 0 || line.substr(digits, 19) != " ms before: signal ") return 0;
  size_t at = line.find(", at 0x");
  if (at == std::string_view::npos) return 0;
  std::string_view pc_text = line.substr(at + 5);
  pc_text = pc_text.substr(0, pc_text.find_first_of(" ;"));
  uint64_t pc = 0;
  return parse_hex(pc_text, pc) ? pc : 0;
}

bool looks_like_text_report(std::string_view data) noexcept {
  return data.substr(0, kPanicPrefix.size()) == kPanicPrefix;
}

Report parse_text_report(std::string_view data) {
  if (data.empty()) throw ReadError("empty file");
  if (!looks_like_text_report(data)) throw ReadError("not a panicstop text report or ELF core (first line is not \"panic: ...\")");
  if (data.find('\0') != std::string_view::npos) {
    size_t nul = data.find('\0');
    size_t line_no = 1;
    for (size_t i = 0; i < nul; ++i) line_no += data[i] == '\n';
    fail_at(line_no, "NUL byte in a text report");
  }

  Report report;
  report.kind = Report::Kind::kTextReport;
  enum class Section { kHeader, kThreads, kLocks, kModules, kOther } section = Section::kHeader;
  // Threads whose header came after the last frame: the next frames belong
  // to all of them, as one list they share (a copy each would make memory
  // grow as threads times frames).
  size_t group_begin = 0;
  bool group_has_frames = false;
  std::vector<Frame> group_frames;
  auto close_group = [&] {
    if (group_frames.empty()) return;
    FrameList shared(std::move(group_frames));
    group_frames.clear();
    for (size_t i = group_begin; i < report.threads.size(); ++i) report.threads[i].frames = shared;
  };
  size_t line_no = 0;
  size_t pos = 0;
  int dumping_tid = 0;
  while (pos < data.size()) {
    size_t end = data.find('\n', pos);
    if (end == std::string_view::npos) end = data.size();
    std::string_view raw = data.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line_no == 1) {  // starts with kPanicPrefix, checked above
      report.message = std::string(trim(raw.substr(kPanicPrefix.size())));
      continue;
    }
    while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\t' || raw.back() == '\r')) raw.remove_suffix(1);
    std::string_view t = trim(raw);
    if (t.empty()) continue;
    // Section and thread headers start at the left margin; indented lines
    // belong to the section above them.
    bool indented = raw[0] == ' ' || raw[0] == '\t';

    if (!indented && t.substr(0, 7) == "thread " && t.size() > 7 && t[7] >= '0' && t[7] <= '9') {
      if (group_has_frames) {
        close_group();
        group_begin = report.threads.size();
        group_has_frames = false;
      }
      report.threads.push_back(parse_thread_header(t, line_no));
      if (report.threads.back().state == "panicking" && report.panicking_tid == 0) {
        report.panicking_tid = report.threads.back().tid;
      }
      // The writer's word for the thread that took a live dump (kdb,
      // live_dump()); a program's text cannot start a header line.
      if (report.threads.back().state == "dumping" && dumping_tid == 0) dumping_tid = report.threads.back().tid;
      section = Section::kThreads;
      continue;
    }
    if (!indented && t == "locks:") {
      section = Section::kLocks;
      continue;
    }
    if (!indented && t == "modules:") {
      section = Section::kModules;
      continue;
    }
    if (section == Section::kThreads && indented) {
      if (is_frame_line(t)) {
        group_frames.push_back(parse_frame(t, line_no));
        group_has_frames = true;
      } else if (t == "(no frames)") {
        group_has_frames = true;
      } else if (t.substr(0, 15) == "(no registers: " && t.back() == ')') {
        // Every thread of the group gets a copy: capped, so a long line under
        // many headers cannot multiply (the writer's reasons are a few words).
        std::string why(t.substr(15, std::min<size_t>(t.size() - 16, kMaxSharedReasonBytes)));
        for (size_t i = group_begin; i < report.threads.size(); ++i) report.threads[i].no_registers = why;
        group_has_frames = true;
      } else if (t.front() == '(' && t.find(" threads with this stack)") != std::string_view::npos) {
        // The count is implied by the headers above.
      } else {
        if (t.substr(0, 14) == "did not stop: ") parse_did_not_stop(t, report.threads.back());
        if (uint64_t pc = earlier_fault_pc_in(t)) report.threads.back().earlier_fault_pc = pc;
        report.threads.back().notes.emplace_back(t);
      }
      continue;
    }
    if (section == Section::kLocks && indented) {
      report.locks.push_back(parse_lock_line(t));
      continue;
    }
    Module module;
    if (section == Section::kModules && indented && parse_module_line(t, module)) {
      report.modules.push_back(std::move(module));
      continue;
    }
    if (section == Section::kHeader) {
      if (!indented && t.substr(0, std::string_view(kLiveDumpHeading).size()) == kLiveDumpHeading) continue;
      int pid = 0;
      if (t.substr(0, 8) == "process " && report.pid == 0) {
        std::string_view digits = t.substr(8, t.find(' ', 8) - 8);
        if (parse_int(digits, pid)) report.pid = pid;
      }
      report.header_lines.emplace_back(raw);
      continue;
    }
    if (!indented) section = Section::kOther;
    report.other_lines.emplace_back(raw);
  }
  close_group();
  if (dumping_tid != 0 && report.panicking_tid == 0) mark_live_dump(report, dumping_tid);
  return report;
}

}  // namespace panicstop::read
