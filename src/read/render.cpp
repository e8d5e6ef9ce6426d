#include "read/render.hpp"

#include <csignal>
#include <cstring>

#include "read/elf_core_parser.hpp"

namespace panicstop::read {
namespace {

std::string hex(uint64_t v) {
  char buf[24];
  static const char digits[] = "0123456789abcdef";
  int n = 0;
  do {
    buf[n++] = digits[v & 15];
    v >>= 4;
  } while (v != 0);
  std::string s = "0x";
  while (n > 0) s += buf[--n];
  return s;
}

std::string signal_text(int signo) {
  const char* abbrev = sigabbrev_np(signo);
  return abbrev != nullptr ? std::to_string(signo) + " (SIG" + abbrev + ")" : std::to_string(signo);
}

std::string frame_text(size_t index, const Frame& f) {
  std::string s = "#" + std::to_string(index) + " " + hex(f.pc) + " " + (f.function.empty() ? "??" : f.function);
  if (f.offset) s += "+" + hex(*f.offset);
  // As the writer does: a module offset only where there is no function.
  bool show_module_offset = f.function.empty() && f.module_offset;
  if (!f.module.empty()) s += " (" + f.module + (show_module_offset ? "+" + hex(*f.module_offset) : "") + ")";
  if (!f.file.empty() && f.line > 0) s += " at " + f.file + ":" + std::to_string(f.line);
  return s;
}

bool same_stack(const Thread& a, const Thread& b) {
  if (a.frames.size() != b.frames.size() || a.frames.empty() || a.has_registers || b.has_registers) return false;
  if (a.frames.same_list(b.frames)) return true;
  for (size_t i = 0; i < a.frames.size(); ++i) {
    if (a.frames[i].pc != b.frames[i].pc || a.frames[i].function != b.frames[i].function) return false;
  }
  return true;
}

void thread_header(const Thread& t, std::ostream& out) {
  out << "thread " << t.tid;
  if (!t.name.empty()) out << " (" << t.name << ")";
  // "[]" for an empty state before a kernel state, or the kernel state
  // would read back as part of the name.
  if (!t.state.empty() || !t.kernel_state.empty()) out << " [" << t.state << "]";
  if (!t.kernel_state.empty()) out << " " << t.kernel_state;
  out << "\n";
  for (const std::string& note : t.notes) out << "  " << note << "\n";
  if (t.signal != 0) out << "  signal " << signal_text(t.signal) << "\n";
}

// Appends the UTF-8 sequence at s[i] (valid ones only) and returns its length, or 0.
size_t utf8_sequence_length(const std::string& s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
  }
  if (n == 3 && ((c == 0xe0 && byte(i + 1) < 0xa0) || (c == 0xed && byte(i + 1) >= 0xa0))) return 0;
  if (n == 4 && ((c == 0xf0 && byte(i + 1) < 0x90) || (c == 0xf4 && byte(i + 1) >= 0x90))) return 0;
  return n;
}

std::string json_opt_string(const std::string& s) { return s.empty() ? "null" : json_string(s); }
std::string json_opt_int(long long v) { return v == 0 ? "null" : std::to_string(v); }

template <typename List, typename Fn>
void json_array(std::ostream& out, const List& items, Fn&& item) {
  out << "[";
  size_t i = 0;
  for (const auto& element : items) {
    if (i > 0) out << ",";
    item(element, i++);
  }
  out << "]";
}

}  // namespace

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\u00";
      out += "0123456789abcdef"[c >> 4];
      out += "0123456789abcdef"[c & 15];
    } else if (c >= 0x80) {
      size_t n = utf8_sequence_length(s, i);
      if (n == 0) {
        out += "\\u00";
        out += "0123456789abcdef"[c >> 4];
        out += "0123456789abcdef"[c & 15];
      } else {
        out.append(s, i, n);
        i += n;
        continue;
      }
    } else {
      out += static_cast<char>(c);
    }
    ++i;
  }
  return out + "\"";
}

void render_text(const Report& report, std::ostream& out) {
  out << "panic: " << report.message << "\n";
  if (report.live_dump) {
    out << kLiveDumpHeading;
    if (report.dumping_tid != 0) {
      out << "; thread " << report.dumping_tid;
      for (const Thread& t : report.threads)
        if (t.tid == report.dumping_tid && !t.name.empty()) out << " (" << t.name << ")";
      out << " took the dump";
    }
    out << "\n";
  }
  for (const std::string& line : report.header_lines) out << line << "\n";
  if (report.kind == Report::Kind::kCore) {
    out << "core: pid " << report.pid;
    if (report.signal != 0) out << ", signal " << signal_text(report.signal);
    if (!report.executable.empty()) out << ", executable " << report.executable;
    out << ", " << report.threads.size() << " threads\n";
    if (report.truncated) out << describe_truncation(*report.truncated) << "\n";
  }
  for (size_t i = 0; i < report.threads.size();) {
    size_t group_end = i + 1;
    while (group_end < report.threads.size() && same_stack(report.threads[i], report.threads[group_end])) ++group_end;
    out << "\n";
    for (size_t k = i; k < group_end; ++k) thread_header(report.threads[k], out);
    const Thread& t = report.threads[i];
    if (group_end - i > 1) out << "  (" << group_end - i << " threads with this stack)\n";
    if (t.has_registers) out << "  pc " << hex(t.pc) << " sp " << hex(t.sp) << "\n";
    if (t.frames.empty() && !t.no_registers.empty()) out << "  (no registers: " << t.no_registers << ")\n";
    if (t.frames.empty() && t.no_registers.empty()) out << "  (no frames)\n";
    for (size_t f = 0; f < t.frames.size(); ++f) out << "  " << frame_text(f, t.frames[f]) << "\n";
    i = group_end;
  }
  if (!report.locks.empty()) {
    out << "\nlocks:\n";
    for (const Lock& l : report.locks) {
      if (!l.text.empty()) {
        out << "  " << l.text << "\n";
        continue;
      }
      out << "  lock=" << l.address << " kind=" << l.kind << " name=" << l.name << " owner=" << l.owner
          << " readers=" << l.readers << "\n";
    }
  }
  if (!report.waits.empty()) {
    out << "\nwaits:\n";
    for (const Wait& w : report.waits) out << "  thread " << w.tid << " waits for " << w.lock << " (" << w.mode << ")\n";
  }
  if (!report.nested.empty()) {
    out << "\nnested panics:\n";
    for (const NestedPanic& n : report.nested) {
      out << "  thread " << n.tid << " step " << n.step;
      if (n.signal != 0) out << " signal " << signal_text(n.signal);
      if (!n.message.empty()) out << ": " << n.message;
      out << "\n";
    }
  }
  if (!report.not_stopped.empty()) {
    out << "\nnot stopped:";
    for (int tid : report.not_stopped) out << " " << tid;
    out << "\n";
  }
  // Indented lines the parser did not know (a modules section's junk)
  // would read back as the frames of the last thread or as locks: a heading
  // of their own keeps them apart.
  auto indented = [](const std::string& line) { return !line.empty() && (line[0] == ' ' || line[0] == '\t'); };
  if (!report.other_lines.empty() && indented(report.other_lines.front())) out << "\n" << kUnrecognizedHeading << "\n";
  for (const std::string& line : report.other_lines) {
    if (!indented(line)) out << "\n";
    out << line << "\n";
  }
  if (!report.modules.empty()) {
    out << "\nmodules:\n";
    for (const Module& m : report.modules) {
      out << "  " << hex(m.start) << "-" << hex(m.end) << " " << m.path
          << " build-id=" << (m.build_id.empty() ? "none" : m.build_id) << (m.is_executable ? " (executable)" : "")
          << "\n";
    }
  }
}

void render_json(const Report& report, const std::string& file, std::ostream& out) {
  out << "{\"format\":\"panicstop-show\",\"version\":1,\"kind\":"
      << (report.kind == Report::Kind::kCore       ? "\"core\""
          : report.kind == Report::Kind::kMinidump ? "\"minidump\""
                                                   : "\"text-report\"")
      << ",\"file\":" << json_string(file)
      << ",\"message\":" << json_string(report.message) << ",\"pid\":" << json_opt_int(report.pid)
      << ",\"signal\":" << json_opt_int(report.signal) << ",\"panicking_tid\":" << json_opt_int(report.panicking_tid)
      << ",\"live_dump\":" << (report.live_dump ? "true" : "false")
      << ",\"dumping_tid\":" << json_opt_int(report.dumping_tid)
      << ",\"executable\":" << json_opt_string(report.executable) << ",\"threads\":";
  json_array(out, report.threads, [&](const Thread& t, size_t) {
    out << "{\"tid\":" << t.tid << ",\"name\":" << json_opt_string(t.name) << ",\"state\":" << json_opt_string(t.state)
        << ",\"kernel_state\":" << json_opt_string(t.kernel_state) << ",\"signal\":" << json_opt_int(t.signal)
        << ",\"notes\":";
    json_array(out, t.notes, [&](const std::string& n, size_t) { out << json_string(n); });
    out << ",\"registers\":";
    if (t.has_registers) {
      out << "{\"pc\":\"" << hex(t.pc) << "\",\"sp\":\"" << hex(t.sp) << "\"}";
    } else {
      out << "null";
    }
    // Only threads that did not stop carry these, so every other thread's
    // object reads as before.
    if (t.did_not_stop) {
      out << ",\"stopped\":false,\"register_source\":" << json_opt_string(t.register_source)
          << ",\"syscall\":" << (t.syscall ? std::to_string(*t.syscall) : "null")
          << ",\"syscall_name\":" << json_opt_string(t.syscall_name) << ",\"wchan\":" << json_opt_string(t.wchan)
          << ",\"no_registers\":" << json_opt_string(t.no_registers);
    }
    out << ",\"frames\":";
    json_array(out, t.frames, [&](const Frame& f, size_t index) {
      out << "{\"index\":" << index << ",\"pc\":\"" << hex(f.pc) << "\",\"function\":" << json_opt_string(f.function)
          << ",\"offset\":" << (f.offset ? std::to_string(*f.offset) : "null")
          << ",\"module\":" << json_opt_string(f.module)
          << ",\"module_offset\":" << (f.module_offset ? std::to_string(*f.module_offset) : "null")
          << ",\"file\":" << json_opt_string(f.file)
          << ",\"line\":" << json_opt_int(f.line) << "}";
    });
    out << "}";
  });
  out << ",\"locks\":";
  json_array(out, report.locks, [&](const Lock& l, size_t) {
    out << "{\"address\":" << json_opt_string(l.address) << ",\"kind\":" << json_opt_string(l.kind)
        << ",\"name\":" << json_opt_string(l.name) << ",\"owner\":" << json_opt_int(l.owner)
        << ",\"readers\":" << l.readers << ",\"text\":" << json_opt_string(l.text) << "}";
  });
  out << ",\"waits\":";
  json_array(out, report.waits, [&](const Wait& w, size_t) {
    out << "{\"tid\":" << w.tid << ",\"lock\":" << json_opt_string(w.lock) << ",\"mode\":" << json_opt_string(w.mode)
        << "}";
  });
  out << ",\"nested\":";
  json_array(out, report.nested, [&](const NestedPanic& n, size_t) {
    out << "{\"tid\":" << n.tid << ",\"signal\":" << n.signal << ",\"step\":" << n.step
        << ",\"message\":" << json_string(n.message) << "}";
  });
  out << ",\"not_stopped\":";
  json_array(out, report.not_stopped, [&](int tid, size_t) { out << tid; });
  out << ",\"modules\":";
  json_array(out, report.modules, [&](const Module& m, size_t) {
    out << "{\"start\":\"" << hex(m.start) << "\",\"end\":\"" << hex(m.end) << "\",\"path\":" << json_string(m.path)
        << ",\"build_id\":" << json_opt_string(m.build_id) << ",\"executable\":" << (m.is_executable ? "true" : "false")
        << "}";
  });
  out << ",\"header_lines\":";
  json_array(out, report.header_lines, [&](const std::string& s, size_t) { out << json_string(s); });
  out << ",\"other_lines\":";
  json_array(out, report.other_lines, [&](const std::string& s, size_t) { out << json_string(s); });
  out << ",\"truncated\":";
  if (report.truncated) {
    const Truncation& c = *report.truncated;
    out << "{\"file_bytes\":" << c.file_bytes << ",\"expected_bytes\":" << c.expected_bytes
        << ",\"segments\":" << c.segments << ",\"segments_cut\":" << c.segments_cut
        << ",\"segments_missing\":" << c.segments_missing << ",\"notes_cut\":" << (c.notes_cut ? "true" : "false")
        << ",\"notes_read\":" << c.notes_read << ",\"unreadable_stacks\":";
    json_array(out, c.unreadable_stacks, [&](int tid, size_t) { out << tid; });
    out << "}";
  } else {
    out << "null";
  }
  out << ",\"warnings\":";
  json_array(out, report.warnings, [&](const std::string& s, size_t) { out << json_string(s); });
  out << "}\n";
}

}  // namespace panicstop::read
