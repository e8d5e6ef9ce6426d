// `panicstop show` on hostile but readable input: a small text report whose
// thread headers and frames would multiply (memory must follow the file's
// size), run under an address-space limit in a child with a deadline.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "support/child_process.hpp"

namespace {

using panicstop::testing::ChildOptions;
using panicstop::testing::ChildResult;
using panicstop::testing::TempDir;

const std::string kTool = PANICSTOP_TOOL_PATH;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;  // the runtime reserves terabytes of shadow: no address-space limit
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

constexpr rlim_t kAddressSpaceLimit = rlim_t{256} << 20;

// Runs the tool with its address space limited to `limit` bytes; with
// discard_stdout its standard output goes to /dev/null (JSON of a large
// report is large by design: it lists every thread's frames).
ChildResult tool_limited(const std::vector<std::string>& args, rlim_t limit, bool discard_stdout = false) {
  ChildOptions options;
  options.deadline = std::chrono::milliseconds(60000);
  return panicstop::testing::run_in_child(
      [&] {
        struct rlimit rl = {limit, limit};
        if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(120);
        if (discard_stdout) {
          int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
          if (null < 0 || dup2(null, STDOUT_FILENO) < 0) _exit(121);
        }
        std::vector<char*> argv{const_cast<char*>(kTool.c_str())};
        for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        execv(kTool.c_str(), argv.data());
        _exit(127);
      },
      options);
}

// `threads` thread headers in a row, then `frames` frames: one group, so
// every thread has every frame. Counts that lie (a header claiming billions
// of threads, a group line claiming more) must not matter either.
std::string grouped_report(int threads, int frames) {
  std::string s = "panic: many threads share one deep stack\n";
  s += "process 100 (demo): demo\n";
  s += "4294967295 threads: 4294967295 stopped, 0 not stopped\n\n";
  for (int t = 1; t <= threads; ++t) s += "thread " + std::to_string(t) + " (w) [stopped] t\n";
  s += "  (18446744073709551615 threads with this stack)\n";
  for (int f = 0; f < frames; ++f) {
    s += "  #" + std::to_string(f) + " 0x" + std::to_string(4096 + f) + " a_function_name_on_the_heap+0x10 (libmodule_name_on_the_heap.so)\n";
  }
  return s;
}

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = 0; (pos = haystack.find(needle, pos)) != std::string::npos; pos += needle.size()) ++n;
  return n;
}

// The issue's case: threads times frames in memory. 3,000 x 3,000 frames of
// ~200 bytes each needed gigabytes; the file is under 400 KB.
TEST(ShowLimits, GroupedStackUsesMemoryInProportionToTheFile) {
  if (kSanitized) GTEST_SKIP() << "sanitizer runtimes do not run under an address-space limit";
  TempDir dir;
  const int kThreads = 3000, kFrames = 3000;
  std::string path = dir.path() + "/grouped.txt";
  std::string report = grouped_report(kThreads, kFrames);
  ASSERT_LT(report.size(), 400u << 10);
  std::ofstream(path, std::ios::binary) << report;

  ChildResult text = tool_limited({"show", path}, kAddressSpaceLimit);
  ASSERT_FALSE(text.hung) << text.describe();
  ASSERT_TRUE(text.exited && text.exit_code == 0) << text.describe() << "\n" << text.output.substr(0, 2000);
  EXPECT_EQ(count(text.output, "\nthread "), size_t(kThreads)) << text.output.substr(0, 2000);
  EXPECT_NE(text.output.find("(" + std::to_string(kThreads) + " threads with this stack)"), std::string::npos);
  EXPECT_EQ(count(text.output, " a_function_name_on_the_heap+0x10 "), size_t(kFrames));
  EXPECT_NE(text.output.find("  #" + std::to_string(kFrames - 1) + " 0x"), std::string::npos);

  // JSON repeats the frames for each thread by its schema: the output is
  // large, the memory is not.
  std::string smaller = dir.path() + "/smaller.txt";
  std::ofstream(smaller, std::ios::binary) << grouped_report(1500, 1500);
  ChildResult json = tool_limited({"show", "--json", smaller}, kAddressSpaceLimit, true);
  ASSERT_FALSE(json.hung) << json.describe();
  EXPECT_TRUE(json.exited && json.exit_code == 0) << json.describe() << "\n" << json.output.substr(0, 2000);
  EXPECT_EQ(json.output, "");
}

}  // namespace
