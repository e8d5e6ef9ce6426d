// Issue 7's soak: a 32-thread workload keeps running correctly through 1,000
// kdb enter/continue cycles and 100 live dumps, and every live core opens in
// gdb with every thread.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "kdb/workload.hpp"
#include "panicstop/kdb.hpp"
#include "panicstop/panic.hpp"
#include "support/child_process.hpp"

namespace panicstop {
namespace {

using testing::run_command;
using testing::run_in_child;
using testing::say;
using testing::SelfCheckingWorkload;
using testing::TempDir;
using testing::with_env;

constexpr int kWorkers = 32;
constexpr int kKdbCycles = 1000;
constexpr int kLiveDumps = 100;

// Rows of gdb's `info threads`: "* 1    Thread 0x... (LWP N) ..." or "  2    LWP N ...".
size_t thread_rows(const std::string& text) {
  size_t rows = 0;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(begin, end - begin);
    size_t i = line.find_first_not_of(" *");
    if (i != std::string::npos && i > 0 && isdigit(static_cast<unsigned char>(line[i]))) {
      size_t j = line.find_first_not_of("0123456789", i);
      size_t k = j == std::string::npos ? j : line.find_first_not_of(' ', j);
      if (k != std::string::npos && (line.compare(k, 7, "Thread ") == 0 || line.compare(k, 4, "LWP ") == 0)) ++rows;
    }
    begin = end + 1;
  }
  return rows;
}

TEST(KdbSoak, WorkloadStaysCorrectThroughAThousandCyclesAndAHundredLiveDumps) {
  TempDir dumps;
  auto r = run_in_child(
      [&] {
        install();
        SelfCheckingWorkload work(kWorkers);
        int entered = 0, dumped = 0, unbalanced = 0;
        auto started = std::chrono::steady_clock::now();
        for (int i = 0; i < kKdbCycles; ++i) {
          entered += kdb_enter("soak") == KdbResult::kDone;
          // Every worker ran again before the next stop: none was left behind.
          if (i % 50 == 0) work.wait_until_all_progress();
        }
        auto kdb_done = std::chrono::steady_clock::now();
        for (int i = 0; i < kLiveDumps; ++i) {
          dumped += live_dump(dumps.path().c_str()) == 2;
          if (i % 10 == 0) unbalanced += !work.books_balance();
        }
        work.wait_until_all_progress();
        unbalanced += !work.books_balance();
        auto ms = [](auto d) { return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()); };
        say("entered=" + std::to_string(entered) + " dumped=" + std::to_string(dumped) +
            " unbalanced=" + std::to_string(unbalanced) + " (kdb cycles " + ms(kdb_done - started) +
            " ms, live dumps " + ms(std::chrono::steady_clock::now() - kdb_done) + " ms)");
      },
      with_env({{"PANICSTOP_KDB_OUTPUT", "/dev/null"}, {"PANICSTOP_DUMP", "text,core"}}, 240000));
  ASSERT_FALSE(r.hung) << r.describe() << r.output.substr(0, 2000);
  ASSERT_NE(r.output.find("entered=1000 dumped=100 unbalanced=0"), std::string::npos)
      << r.output.substr(r.output.size() > 2000 ? r.output.size() - 2000 : 0);

  std::vector<std::string> cores;
  for (const auto& name : dumps.list())
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".core") == 0) cores.push_back(dumps.path() + "/" + name);
  ASSERT_EQ(cores.size(), size_t(kLiveDumps));
  std::printf("%s", r.output.substr(r.output.find("entered=")).c_str());

  if (!testing::have_program("gdb")) GTEST_SKIP() << "gdb is not installed: the cores were not opened";
  // One gdb for all the cores (startup and the executable's symbols once),
  // with a marker before each core's thread list.
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  ASSERT_GT(n, 0);
  exe[n] = '\0';
  std::vector<std::string> argv = {"gdb", "-nx", "-batch", exe};
  for (size_t i = 0; i < cores.size(); ++i) {
    argv.insert(argv.end(), {"-ex", "echo ==core " + std::to_string(i) + "==\\n", "-ex", "core-file " + cores[i],
                             "-ex", "info threads"});
  }
  auto g = run_command(argv, with_env({}, 240000));
  ASSERT_FALSE(g.hung) << g.describe();
  int complete = 0;
  for (size_t i = 0; i < cores.size(); ++i) {
    std::string marker = "==core " + std::to_string(i) + "==";
    size_t begin = g.output.find(marker);
    size_t end = g.output.find("==core " + std::to_string(i + 1) + "==");
    ASSERT_NE(begin, std::string::npos) << g.output.substr(0, 3000);
    std::string part = g.output.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    // main plus 32 workers; gdb lists each as "Thread 0x... (LWP N)" or "LWP N".
    size_t threads = thread_rows(part);
    if (threads == size_t(kWorkers + 1) && part.find("Couldn't") == std::string::npos) ++complete;
    else ADD_FAILURE() << "core " << cores[i] << ": " << threads << " threads\n" << part.substr(0, 3000);
  }
  EXPECT_EQ(complete, kLiveDumps);
}

}  // namespace
}  // namespace panicstop
