// The locks' Clang thread-safety annotations do their job: a misuse fails to
// compile under -Wthread-safety -Werror for each expected reason, and correct
// use of every lock compiles cleanly. Both files are compiled by clang++ at
// test time (tests/lock/CMakeLists.txt passes the paths); without clang++ the
// tests skip.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "support/child_process.hpp"

namespace panicstop {
namespace {

testing::ChildResult compile(const char* file) {
  testing::ChildOptions opts;
  opts.deadline = std::chrono::seconds(60);
  return testing::run_command({PANICSTOP_CLANGXX, "-std=c++20", "-fsyntax-only", "-Wthread-safety", "-Werror",
                               "-I" PANICSTOP_INCLUDE_DIR,
                               "-I" PANICSTOP_BUILD_INCLUDE_DIR, std::string(PANICSTOP_LOCK_TEST_DIR) + "/" + file},
                              opts);
}

#define SKIP_WITHOUT_CLANG()                                                  \
  do {                                                                        \
    if (std::string(PANICSTOP_CLANGXX).empty()) GTEST_SKIP() << "no clang++"; \
  } while (0)

TEST(ThreadSafetyAnnotations, CorrectUseCompilesCleanly) {
  SKIP_WITHOUT_CLANG();
  auto r = compile("thread_safety_clean.cpp");
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  EXPECT_EQ(r.output.find("warning"), std::string::npos) << r.output;
}

TEST(ThreadSafetyAnnotations, MisuseFailsForEachExpectedReason) {
  SKIP_WITHOUT_CLANG();
  auto r = compile("thread_safety_misuse.cpp");
  EXPECT_FALSE(r.hung) << r.describe();
  EXPECT_TRUE(r.exited && r.exit_code != 0) << "the misuse compiled: " << r.describe();
  // Every "// expect: MESSAGE" line of the file is one diagnostic clang must give.
  std::istringstream source(testing::read_file(std::string(PANICSTOP_LOCK_TEST_DIR) + "/thread_safety_misuse.cpp"));
  std::vector<std::string> expected;
  for (std::string line; std::getline(source, line);)
    if (line.rfind("// expect: ", 0) == 0) expected.push_back(line.substr(11));
  ASSERT_EQ(expected.size(), 4u);
  for (const auto& e : expected) EXPECT_NE(r.output.find(e), std::string::npos) << "missing: " << e << "\n" << r.output;
  EXPECT_NE(r.output.find("-Wthread-safety-analysis"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace panicstop
