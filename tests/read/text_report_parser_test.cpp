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
  ASSERT_EQ(r.threads.size(), 4u);
  EXPECT_EQ(r.panicking_tid, 101);
  const Thread& main = r.threads[0];
  EXPECT_EQ(main.tid, 101);
  EXPECT_EQ(main.name, "main");
  EXPECT_EQ(main.state, "panicking");
  ASSERT_EQ(main.frames.size(), 3u);
  EXPECT_EQ(main.frames[1].pc, 0x401234u);
  EXPECT_EQ(main.frames[1].function, "_ZN4demo5crashEv");
  ASSERT_TRUE(main.frames[1].offset.has_value());
  EXPECT_EQ(*main.frames[1].offset, 0x24u);
  EXPECT_EQ(main.frames[1].module, "/nonexistent/demo");
  EXPECT_EQ(r.threads[1].name, "worker 1");
  ASSERT_EQ(r.threads[1].frames.size(), 2u) << "the shared stack belongs to both threads";
  ASSERT_EQ(r.threads[2].frames.size(), 2u);
  EXPECT_EQ(r.threads[2].frames[0].function, "") << "?? is an unknown function";
  EXPECT_EQ(r.threads[2].frames[1].function, "worker_loop");
  EXPECT_TRUE(r.threads[3].frames.empty());
  EXPECT_EQ(r.threads[3].state, "not_stopped");
  ASSERT_EQ(r.locks.size(), 1u);
  EXPECT_EQ(r.locks[0].address, "0x7f0000001000");
  EXPECT_EQ(r.locks[0].owner, 102);
  EXPECT_EQ(r.locks[0].name, "queue_lock");
  ASSERT_EQ(r.other_lines.size(), 1u);
  EXPECT_EQ(r.other_lines[0], "fault: SIGABRT in thread 101");
}

void expect_same(const Report& a, const Report& b) {
  EXPECT_EQ(a.message, b.message);
  EXPECT_EQ(a.other_lines, b.other_lines);
  ASSERT_EQ(a.threads.size(), b.threads.size());
  for (size_t i = 0; i < a.threads.size(); ++i) {
    EXPECT_EQ(a.threads[i].tid, b.threads[i].tid);
    EXPECT_EQ(a.threads[i].name, b.threads[i].name);
    EXPECT_EQ(a.threads[i].state, b.threads[i].state);
    ASSERT_EQ(a.threads[i].frames.size(), b.threads[i].frames.size());
    for (size_t f = 0; f < a.threads[i].frames.size(); ++f) {
      const Frame& x = a.threads[i].frames[f];
      const Frame& y = b.threads[i].frames[f];
      EXPECT_EQ(x.pc, y.pc);
      EXPECT_EQ(x.function, y.function);
      EXPECT_EQ(x.offset, y.offset);
      EXPECT_EQ(x.module, y.module);
      EXPECT_EQ(x.file, y.file);
      EXPECT_EQ(x.line, y.line);
    }
  }
  ASSERT_EQ(a.locks.size(), b.locks.size());
  for (size_t i = 0; i < a.locks.size(); ++i) EXPECT_EQ(a.locks[i].text, b.locks[i].text);
}

TEST(TextReportParser, OwnOutputReadsBackTheSame) {
  Report first = parse_text_report(sample());
  // A symbolized frame must survive the trip too.
  first.threads[0].frames[1].function = "demo::crash(int, std::pair<int, int>)";
  first.threads[0].frames[1].file = "/src/demo (copy).cpp";
  first.threads[0].frames[1].line = 42;
  std::ostringstream text;
  render_text(first, text);
  Report second = parse_text_report(text.str());
  expect_same(first, second);
  std::ostringstream again;
  render_text(second, again);
  EXPECT_EQ(text.str(), again.str());
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

TEST(TextReportParser, KeepsUnknownSectionsAsLines) {
  Report r = parse_text_report("panic: x\nthread 1 (a) [stopped]\n  #0 0x10 f+0x1 (m)\nnested panics:\n  thread 2: boom\n");
  ASSERT_EQ(r.threads.size(), 1u);
  EXPECT_EQ(r.threads[0].frames.size(), 1u);
  ASSERT_EQ(r.other_lines.size(), 2u);
  EXPECT_EQ(r.other_lines[0], "nested panics:");
  EXPECT_EQ(r.other_lines[1], "  thread 2: boom");
}

}  // namespace
}  // namespace panicstop::read
