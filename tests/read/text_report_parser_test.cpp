// The text-report parser: the layout the writer uses, grouped stacks, the
// tool's own output read back unchanged, and malformed lines rejected.
#include "read/text_report_parser.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "read/render.hpp"
#include "support/child_process.hpp"

namespace panicstop::read {
namespace {

std::string sample() { return testing::read_file(PANICSTOP_FUZZ_CORPUS "/valid-report.txt"); }

TEST(TextReportParser, ReadsMessageThreadsFramesAndLocks) {
  Report r = parse_text_report(sample());
  EXPECT_EQ(r.message, "assertion failed: queue not empty");
  EXPECT_EQ(r.pid, 100);
  ASSERT_EQ(r.header_lines.size(), 3u);
  EXPECT_EQ(r.header_lines[0], "process 100 (demo): demo --crash");
  ASSERT_EQ(r.threads.size(), 4u);
  EXPECT_EQ(r.panicking_tid, 101);
  const Thread& main = r.threads[0];
  EXPECT_EQ(main.tid, 101);
  EXPECT_EQ(main.name, "main");
  EXPECT_EQ(main.state, "panicking");
  EXPECT_EQ(main.kernel_state, "R");
  EXPECT_EQ(main.notes, std::vector<std::string>{"SIGABRT (signal 6)"});
  ASSERT_EQ(main.frames.size(), 3u);
  EXPECT_EQ(main.frames[1].pc, 0x401234u);
  EXPECT_EQ(main.frames[1].function, "_ZN4demo5crashEv");
  ASSERT_TRUE(main.frames[1].offset.has_value());
  EXPECT_EQ(*main.frames[1].offset, 0x24u);
  EXPECT_EQ(main.frames[1].module, "demo");
  EXPECT_EQ(r.threads[1].name, "worker 1");
  ASSERT_EQ(r.threads[1].notes.size(), 1u);
  EXPECT_EQ(r.threads[1].notes[0].rfind("waiting for exclusive mutex", 0), 0u);
  ASSERT_EQ(r.threads[1].frames.size(), 2u) << "the shared stack belongs to both threads";
  ASSERT_EQ(r.threads[2].frames.size(), 2u);
  EXPECT_EQ(r.threads[2].frames[0].function, "") << "?? is an unknown function";
  EXPECT_EQ(r.threads[2].frames[0].module, "libc.so.6");
  EXPECT_EQ(r.threads[2].frames[0].module_offset, std::optional<uint64_t>(0x2000));
  EXPECT_EQ(r.threads[2].frames[1].function, "worker_loop");
  EXPECT_TRUE(r.threads[3].frames.empty());
  EXPECT_EQ(r.threads[3].state, "not_stopped");
  ASSERT_EQ(r.locks.size(), 1u);
  EXPECT_EQ(r.locks[0].address, "0x7f0000001000");
  EXPECT_EQ(r.locks[0].kind, "mutex");
  EXPECT_EQ(r.locks[0].owner, 103);
  EXPECT_EQ(r.locks[0].name, "queue_lock");
  ASSERT_EQ(r.other_lines.size(), 4u);
  EXPECT_EQ(r.other_lines[0], "nested panics:");
  EXPECT_EQ(r.other_lines[3], "  104");
  ASSERT_EQ(r.modules.size(), 2u);
  EXPECT_EQ(r.modules[0].start, 0x400000u);
  EXPECT_EQ(r.modules[0].end, 0x402000u);
  EXPECT_EQ(r.modules[0].path, "/nonexistent/demo");
  EXPECT_EQ(r.modules[0].build_id, "0011aabb");
  EXPECT_TRUE(r.modules[0].is_executable);
  EXPECT_EQ(r.modules[1].build_id, "");
  EXPECT_FALSE(r.modules[1].is_executable);
}

void expect_same(const Report& a, const Report& b) {
  EXPECT_EQ(a.message, b.message);
  EXPECT_EQ(a.header_lines, b.header_lines);
  EXPECT_EQ(a.other_lines, b.other_lines);
  EXPECT_EQ(a.live_dump, b.live_dump);
  EXPECT_EQ(a.dumping_tid, b.dumping_tid);
  EXPECT_EQ(a.modules.size(), b.modules.size());
  ASSERT_EQ(a.threads.size(), b.threads.size());
  for (size_t i = 0; i < a.threads.size(); ++i) {
    EXPECT_EQ(a.threads[i].tid, b.threads[i].tid);
    EXPECT_EQ(a.threads[i].name, b.threads[i].name);
    EXPECT_EQ(a.threads[i].state, b.threads[i].state);
    EXPECT_EQ(a.threads[i].kernel_state, b.threads[i].kernel_state);
    EXPECT_EQ(a.threads[i].notes, b.threads[i].notes);
    ASSERT_EQ(a.threads[i].frames.size(), b.threads[i].frames.size());
    for (size_t f = 0; f < a.threads[i].frames.size(); ++f) {
      const Frame& x = a.threads[i].frames[f];
      const Frame& y = b.threads[i].frames[f];
      EXPECT_EQ(x.pc, y.pc);
      EXPECT_EQ(x.function, y.function);
      EXPECT_EQ(x.offset, y.offset);
      EXPECT_EQ(x.module, y.module);
      EXPECT_EQ(x.module_offset, y.module_offset);
      EXPECT_EQ(x.file, y.file);
      EXPECT_EQ(x.line, y.line);
    }
  }
  ASSERT_EQ(a.locks.size(), b.locks.size());
  for (size_t i = 0; i < a.locks.size(); ++i) EXPECT_EQ(a.locks[i].text, b.locks[i].text);
}

// show's text of `report` reads back as the same report, and prints the same again.
void expect_reads_back(const Report& report) {
  std::ostringstream text;
  render_text(report, text);
  Report second = parse_text_report(text.str());
  expect_same(report, second);
  std::ostringstream again;
  render_text(second, again);
  EXPECT_EQ(text.str(), again.str());
}

TEST(TextReportParser, OwnOutputReadsBackTheSame) {
  Report first = parse_text_report(sample());
  // A symbolized frame must survive the trip too.
  first.threads[0].frames.shared()[1].function = "demo::crash(int, std::pair<int, int>)";
  first.threads[0].frames.shared()[1].file = "/src/demo (copy).cpp";
  first.threads[0].frames.shared()[1].line = 42;
  expect_reads_back(first);
  // And the writer's text, apart from blank lines, is printed as written.
  std::string original = sample(), without_blanks;
  for (size_t i = 0; i < original.size(); ++i) {
    if (original[i] == '\n' && (i + 1 == original.size() || original[i + 1] == '\n')) continue;
    without_blanks += original[i];
  }
  std::ostringstream plain;
  render_text(parse_text_report(original), plain);
  std::string printed = plain.str(), printed_without_blanks;
  for (size_t i = 0; i < printed.size(); ++i) {
    if (printed[i] == '\n' && (i + 1 == printed.size() || printed[i + 1] == '\n')) continue;
    printed_without_blanks += printed[i];
  }
  EXPECT_EQ(printed_without_blanks, without_blanks);
}

// A live dump's report, as the writer makes it: its capturing thread is
// "[dumping]". The reader marks it live; show's added heading line is not
// taken for one of the report's header lines, so it reads back once.
TEST(TextReportParser, LiveDumpReportReadsAsLiveAndBackTheSame) {
  std::string text =
      "panic: (none) live dump: requested by panicstop dump\n"
      "process 100 (demo): demo\n"
      "dumping thread 100 (demo): dump requested\n"
      "2 threads: 1 stopped, 0 not stopped\n\n"
      "thread 100 (demo) [dumping] R\n  #0 0x401000 main+0x10 (demo)\n\n"
      "thread 101 (worker) [stopped] S\n  #0 0x401100 work+0x4 (demo)\n";
  Report r = parse_text_report(text);
  EXPECT_TRUE(r.live_dump);
  EXPECT_EQ(r.dumping_tid, 100);
  EXPECT_EQ(r.panicking_tid, 0);
  EXPECT_EQ(r.header_lines.size(), 3u);
  std::ostringstream shown;
  render_text(r, shown);
  EXPECT_NE(shown.str().find(std::string("\n") + kLiveDumpHeading + "; thread 100 (demo) took the dump\n"),
            std::string::npos)
      << shown.str();
  expect_reads_back(r);
  Report again = parse_text_report(shown.str());
  EXPECT_TRUE(again.live_dump);
  EXPECT_EQ(again.header_lines, r.header_lines);

  Report crash = parse_text_report(sample());
  EXPECT_FALSE(crash.live_dump);
  EXPECT_EQ(crash.dumping_tid, 0);
}

TEST(TextReportParser, RejectsMalformedInputWithTheLineNumber) {
  struct Case {
    const char* input;
    const char* error;
  } cases[] = {
      {"", "empty file"},
      {"hello\n", "not a panicstop text report"},
      {"panic: x\nthread 12x (a) [b]\n", "line 2: bad thread id"},
      {"panic: x\nthread 0 (a) [b]\n", "line 2: bad thread id"},
      {"panic: x\nthread 1 (a) [b\n", "line 2: thread state without ']'"},
      {"panic: x\nthread 1 a [b]\n", "line 2: thread name not in parentheses"},
      {"panic: x\nthread 1 (a)\n  #0 main+0x1\n", "line 3: frame address is not 0x-hex"},
      {"panic: x\nthread 1 (a)\n  #1x 0x1\n", "line 3: bad frame number"},
      {"panic: x\nthread 1 (a)\n  #0\n", "line 3: frame without an address"},
      {"panic: x\n\nthread 1 (a)\0\n", "line 3: NUL byte"},
  };
  for (const Case& c : cases) {
    std::string input(c.input, c.input + std::char_traits<char>::length(c.input));
    if (std::string(c.error).find("NUL") != std::string::npos) input = std::string("panic: x\n\nthread 1 (a)\0\n", 24);
    try {
      parse_text_report(input);
      ADD_FAILURE() << "accepted: " << c.input;
    } catch (const ReadError& e) {
      EXPECT_NE(std::string(e.what()).find(c.error), std::string::npos) << e.what() << " for " << c.input;
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    }
  }
}

// Found by the fuzzer: a thread with an empty state and a kernel state
// ("[] R") was printed without the brackets and did not read back.
TEST(TextReportParser, EmptyStateBeforeAKernelStateReadsBack) {
  Report r = parse_text_report("panic: x\nthread 1 (a) [] R\n  #0 0x1 f+0x1 (m)\nthread 2 [] S\n");
  ASSERT_EQ(r.threads.size(), 2u);
  EXPECT_EQ(r.threads[0].state, "");
  EXPECT_EQ(r.threads[0].kernel_state, "R");
  EXPECT_EQ(r.threads[1].kernel_state, "S");
  expect_reads_back(r);
}

// Found by the fuzzer: text after the state that holds " [" ("[stopped][x"
// is read as state "stopped" and kernel state "[x") was printed back as
// "[stopped] [x", whose last " [" has no ']' after it: the state is the last
// " [" that closes and leaves a name in parentheses before it.
TEST(TextReportParser, AKernelStateHoldingABracketReadsBack) {
  Report r = parse_text_report("panic: x\nthread 1 (a [b] c) [stopped][[[ t\n  #0 0x1 f+0x1 (m)\n");
  ASSERT_EQ(r.threads.size(), 1u);
  EXPECT_EQ(r.threads[0].name, "a [b] c");
  EXPECT_EQ(r.threads[0].state, "stopped");
  EXPECT_EQ(r.threads[0].kernel_state, "[[[ t");
  expect_reads_back(r);
}

// Found by the fuzzer: an indented line the parser keeps as unknown (here a
// frame-like line under "modules:") was printed after the last thread and
// read back as its frame; printed under a heading of its own, it stays a line.
TEST(TextReportParser, UnknownIndentedLinesReadBackAsLines) {
  Report r = parse_text_report(testing::read_file(PANICSTOP_FUZZ_CORPUS "/valid-report-frame-in-modules.txt"));
  ASSERT_EQ(r.threads.size(), 1u);
  EXPECT_TRUE(r.threads[0].frames.empty());
  ASSERT_EQ(r.locks.size(), 1u);
  ASSERT_EQ(r.other_lines.size(), 2u);
  EXPECT_EQ(r.other_lines[0], "  #0 0x10 f+0x1 (m)");
  std::ostringstream text;
  render_text(r, text);
  Report again = parse_text_report(text.str());
  ASSERT_EQ(again.threads.size(), 1u);
  EXPECT_TRUE(again.threads[0].frames.empty()) << text.str();
  EXPECT_EQ(again.locks.size(), 1u) << text.str();
  expect_reads_back(again);
}

TEST(TextReportParser, EmptyMessageAndNothingElse) {
  // Found by the fuzzer: "panic: " with trailing space only.
  EXPECT_EQ(parse_text_report("panic: \n").message, "");
  EXPECT_EQ(parse_text_report("panic: ").message, "");
  EXPECT_EQ(parse_text_report("panic: \t \r\n\n").threads.size(), 0u);
}

TEST(TextReportParser, KeepsUnknownSectionsAsLines) {
  Report r = parse_text_report("panic: x\nthread 1 (a) [stopped]\n  #0 0x10 f+0x1 (m)\nnested panics:\n  thread 2: boom\n");
  ASSERT_EQ(r.threads.size(), 1u);
  EXPECT_EQ(r.threads[0].frames.size(), 1u);
  ASSERT_EQ(r.other_lines.size(), 2u) << "an indented thread line is not a thread header";
  EXPECT_EQ(r.other_lines[0], "nested panics:");
  EXPECT_EQ(r.other_lines[1], "  thread 2: boom");
}

// Threads that did not stop: the writer's line of what /proc showed, and
// "(no registers: ...)" in place of a stack, which ends a group like
// "(no frames)" does (the next thread's frames are its own).
TEST(TextReportParser, ReadsThreadsThatDidNotStop) {
  const std::string text =
      "panic: x\n"
      "thread 1 (main) [panicking] R\n"
      "  #0 0x10 main+0x1 (demo)\n"
      "thread 2 (reader) [not_stopped] S\n"
      "  did not stop: state S, blocked in syscall 0 (read), wchan anon_pipe_read, hard-stop signal blocked; "
      "pc and sp from /proc/self/task/2/syscall\n"
      "  #0 0x20 read+0x4c (libc.so.6)\n"
      "thread 3 (spin) [not_stopped] R\n"
      "  did not stop: state R, running, hard-stop signal blocked; no registers\n"
      "thread 4 (spin2) [running] R\n"
      "  did not stop: state R, running; no registers\n"
      "  (2 threads with this stack)\n"
      "  (no registers: the thread was running)\n"
      "thread 5 (odd) [not_stopped] D\n"
      "  did not stop: state D, blocked in syscall 999; /proc/self/task/5/syscall unreadable\n"
      "  (no registers: its /proc syscall file was unreadable)\n"
      "thread 6 (worker) [stopped] S\n"
      "  #0 0x30 work+0x2 (demo)\n";
  Report r = parse_text_report(text);
  ASSERT_EQ(r.threads.size(), 6u);
  EXPECT_FALSE(r.threads[0].did_not_stop);
  EXPECT_EQ(r.threads[0].register_source, "");
  const Thread& reader = r.threads[1];
  EXPECT_TRUE(reader.did_not_stop);
  EXPECT_EQ(reader.register_source, "kernel");
  EXPECT_EQ(reader.syscall, std::optional<long>(0));
  EXPECT_EQ(reader.syscall_name, "read");
  EXPECT_EQ(reader.wchan, "anon_pipe_read");
  EXPECT_EQ(reader.no_registers, "");
  ASSERT_EQ(reader.frames.size(), 1u);
  EXPECT_EQ(reader.frames[0].function, "read");
  ASSERT_EQ(reader.notes.size(), 1u) << "the line stays a note, so show prints it";
  for (int i : {2, 3}) {
    const Thread& spin = r.threads[i];
    EXPECT_TRUE(spin.did_not_stop);
    EXPECT_EQ(spin.register_source, "none");
    EXPECT_FALSE(spin.syscall.has_value());
    EXPECT_EQ(spin.wchan, "");
    EXPECT_EQ(spin.no_registers, "the thread was running");
    EXPECT_TRUE(spin.frames.empty());
  }
  EXPECT_EQ(r.threads[4].syscall, std::optional<long>(999));
  EXPECT_EQ(r.threads[4].syscall_name, "");
  EXPECT_EQ(r.threads[4].register_source, "none");
  EXPECT_EQ(r.threads[4].no_registers, "its /proc syscall file was unreadable");
  EXPECT_TRUE(r.threads[4].frames.empty());
  EXPECT_FALSE(r.threads[5].did_not_stop);
  ASSERT_EQ(r.threads[5].frames.size(), 1u);
  EXPECT_EQ(r.threads[5].frames[0].function, "work");

  // show prints it back as written (but for a group without frames, which it
  // does not group) and reads its own output back the same.
  std::ostringstream out;
  render_text(r, out);
  EXPECT_NE(out.str().find("(spin) [not_stopped] R\n  did not stop: state R, running, hard-stop signal blocked; "
                           "no registers\n  (no registers: the thread was running)\n\n"),
            std::string::npos)
      << out.str();
  Report again = parse_text_report(out.str());
  expect_same(r, again);
  EXPECT_EQ(again.threads[2].no_registers, "the thread was running");
  EXPECT_EQ(again.threads[3].no_registers, "the thread was running");
}

// Demangled C++ names as the writer prints them: templates, spaces,
// commas, parentheses (function pointer types, lambdas, operator()),
// "[clone .cold]", a name cut short by a fixed buffer, and module paths with
// spaces and parentheses. Each frame keeps its whole name, offset and
// module, and show's output (with " at FILE:LINE") reads back the same.
TEST(TextReportParser, DemangledNamesWithSpacesParenthesesAndTemplates) {
  struct Expected {
    const char* line;
    const char* function;
    uint64_t offset;
    const char* module;
  } frames[] = {
      {"std::thread::_State_impl<std::thread::_Invoker<std::tuple<void (*)(int), int> > >::_M_run()+0x1c "
       "(libstdc++.so.6)",
       "std::thread::_State_impl<std::thread::_Invoker<std::tuple<void (*)(int), int> > >::_M_run()", 0x1c,
       "libstdc++.so.6"},
      {"(anonymous namespace)::worker(std::vector<int, std::allocator<int> > const&)+0x10 (demo)",
       "(anonymous namespace)::worker(std::vector<int, std::allocator<int> > const&)", 0x10, "demo"},
      {"main::{lambda(int)#1}::operator()(int) const+0x8 (demo)", "main::{lambda(int)#1}::operator()(int) const", 0x8,
       "demo"},
      {"operator+(Money, Money)+0x4 (demo)", "operator+(Money, Money)", 0x4, "demo"},
      {"std::function<void (int)>::operator()(int) const+0x20 (demo)",
       "std::function<void (int)>::operator()(int) const", 0x20, "demo"},
      {"cold_path() [clone .cold]+0x5 (demo)", "cold_path() [clone .cold]", 0x5, "demo"},
      {"void (*handler_for<int>(int))(int)+0x2 (demo)", "void (*handler_for<int>(int))(int)", 0x2, "demo"},
      {"std::vector<int, std::allocator<int> >::at(unsigned long) const+0x30 (/opt/my app (v2)/lib, x.so)",
       "std::vector<int, std::allocator<int> >::at(unsigned long) const", 0x30, "/opt/my app (v2)/lib, x.so"},
      {"std::map<int, std::basic_string<char, std::char_traits<ch...+0x40 (demo)",
       "std::map<int, std::basic_string<char, std::char_traits<ch...", 0x40, "demo"},
      {"f(int (*)(int, char), ...+0x7 (demo)", "f(int (*)(int, char), ...", 0x7, "demo"},
  };
  std::string text = "panic: x\nthread 1 (pool (io), #3 [x]) [panicking] R\n";
  for (size_t i = 0; i < std::size(frames); ++i) {
    text += "  #" + std::to_string(i) + " 0x" + std::to_string(1000 + i) + " " + frames[i].line + "\n";
  }
  Report r = parse_text_report(text);
  ASSERT_EQ(r.threads.size(), 1u);
  EXPECT_EQ(r.threads[0].name, "pool (io), #3 [x]");
  EXPECT_EQ(r.threads[0].state, "panicking");
  ASSERT_EQ(r.threads[0].frames.size(), std::size(frames));
  for (size_t i = 0; i < std::size(frames); ++i) {
    const Frame& f = r.threads[0].frames[i];
    EXPECT_EQ(f.function, frames[i].function) << frames[i].line;
    EXPECT_EQ(f.offset, std::optional<uint64_t>(frames[i].offset)) << frames[i].line;
    EXPECT_EQ(f.module, frames[i].module) << frames[i].line;
    EXPECT_EQ(f.file, "") << frames[i].line;
  }

  // With file:line, as show prints them (a file with " at " and parentheses).
  for (size_t i = 0; i < std::size(frames); ++i) {
    Frame& f = r.threads[0].frames.shared()[i];
    f.file = i % 2 == 0 ? "/src/a (b).cpp" : "/src/look at this/x.cpp";
    f.line = static_cast<int>(10 + i);
  }
  expect_reads_back(r);
}

}  // namespace
}  // namespace panicstop::read
