// The report writer prints C++ names demangled (sys::demangle): spaces,
// parentheses, commas, "[clone .cold]" and lambdas inside a frame's function
// must still split into function, offset and module.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "read/text_report_parser.hpp"

namespace panicstop::read {
namespace {

struct FrameCase {
  const char* function;
  const char* module;
};

constexpr FrameCase kFrames[] = {
    {"std::thread::_State_impl<std::thread::_Invoker<std::tuple<void (*)()> > >::_M_run()", "libstdc++.so.6"},
    {"std::map<int, std::pair<int, char> >::at(int const&) const", "demo"},
    {"main::{lambda(int)#1}::operator()(int) const", "demo"},
    {"f(int) [clone .isra.0] [clone .cold]", "demo"},
    {"void g<(anonymous namespace)::X>(int (&) [3], void (A::*)() const)", "demo (deleted)"},
    {"operator<<(std::ostream&, char const*)", "demo"},
};

TEST(DemangledFrames, FunctionOffsetAndModuleSplitAsWritten) {
  std::string report =
      "panic: boom\n"
      "process 100 (demo): demo\n"
      "panicking thread 101 (main): SIGABRT (signal 6)\n"
      "1 threads: 0 stopped, 0 not stopped\n"
      "\n"
      "thread 101 (main) [panicking] R\n";
  for (size_t i = 0; i < sizeof kFrames / sizeof kFrames[0]; ++i)
    report += "  #" + std::to_string(i) + " 0x40" + std::to_string(i) + "000 " + kFrames[i].function + "+0x" +
              std::to_string(10 + i) + " (" + kFrames[i].module + ")\n";
  Report r = parse_text_report(report);
  ASSERT_EQ(r.threads.size(), 1u);
  const FrameList& frames = r.threads[0].frames;
  ASSERT_EQ(frames.size(), sizeof kFrames / sizeof kFrames[0]);
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i].function, kFrames[i].function);
    EXPECT_EQ(frames[i].module, kFrames[i].module);
    ASSERT_TRUE(frames[i].offset.has_value()) << kFrames[i].function;
    EXPECT_EQ(*frames[i].offset, std::stoull(std::to_string(10 + i), nullptr, 16));
  }
}

}  // namespace
}  // namespace panicstop::read
