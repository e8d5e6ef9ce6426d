#include "dump/dump_step.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <regex>
#include <string>
#include <vector>

#include "dump/dump_files.hpp"
#include "panicstop/panic.hpp"
#include "snapshot/parked_threads.hpp"
#include "support/child_process.hpp"

namespace panicstop {
namespace {

using testing::ChildOptions;
using testing::ChildResult;
using testing::run_in_child;
using testing::TempDir;

// The paths of the "panicstop: wrote PATH" lines.
std::vector<std::string> written_paths(const std::string& output) {
  std::vector<std::string> paths;
  std::regex wrote(R"(panicstop: wrote (\S+))");
  for (std::sregex_iterator it(output.begin(), output.end(), wrote), end; it != end; ++it) paths.push_back((*it)[1]);
  return paths;
}

void write_live_dump(const char* dir) {
  detail::CrashRecord& rec = detail::reset_crash_record();
  if (!detail::capture_crash_record(rec)) _exit(3);
  _exit(detail::write_dumps(rec, detail::dump_options(), dir) > 0 ? 0 : 4);
}

TEST(DumpFiles, WritesUnderATemporaryNameThenRenames) {
  TempDir dir;
  ChildResult r = run_in_child([&] { write_live_dump(dir.path().c_str()); });
  ASSERT_FALSE(r.hung) << r.describe();
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  std::vector<std::string> paths = written_paths(r.output);
  ASSERT_FALSE(paths.empty()) << r.output;
  std::regex name(R"(panicstop-[A-Za-z0-9_.-]+-\d+-\d+\.(txt|core))");  // a comm may hold '-'
  for (const std::string& p : paths) {
    EXPECT_EQ(p.rfind(dir.path() + "/", 0), 0u) << p;
    std::string base = p.substr(p.rfind('/') + 1);
    EXPECT_TRUE(std::regex_match(base, name)) << base;
  }
  // Exactly the announced files: no temporary name survives a success.
  std::vector<std::string> listed = dir.list();
  ASSERT_EQ(listed.size(), paths.size()) << r.output;
  for (const std::string& f : listed) EXPECT_EQ(f.find(".tmp"), std::string::npos) << f;
  std::string text = testing::read_file(paths[0]);
  EXPECT_EQ(paths[0].substr(paths[0].size() - 4), ".txt");
  EXPECT_EQ(text.rfind("panic: ", 0), 0u);
}

// A path under a regular file fails even for root (ENOTDIR).
TEST(DumpFiles, FallsBackToTmpWhenTheDirectoryIsUnusable) {
  ChildResult r = run_in_child([] { write_live_dump("/etc/passwd/x"); });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("panicstop: cannot write /etc/passwd/x/panicstop-"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ENOTDIR"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("panicstop: falling back to /tmp"), std::string::npos) << r.output;
  std::vector<std::string> paths = written_paths(r.output);
  ASSERT_FALSE(paths.empty()) << r.output;
  for (const std::string& p : paths) {
    EXPECT_EQ(p.rfind("/tmp/panicstop-", 0), 0u) << p;
    EXPECT_EQ(testing::read_file(p).empty(), false) << p;
    unlink(p.c_str());
  }
}

// A server's worker that dropped root (nginx's `user www-data`) crashes:
// the dump directory it was given at install is root's. Its dump goes to
// /tmp, and the lines say why and what fixes it.
TEST(DumpFiles, AProcessThatChangedItsUserIsToldWhyItsDirectoryRefusedIt) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to become another user (uid 65534)";
  TempDir dir;  // 0700, root's
  ChildResult r = run_in_child(
      [&] {
        install();
        if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(90);
        panic("worker crashed");
      },
      testing::with_env({{"PANICSTOP_DUMP_DIR", dir.path()}, {"PANICSTOP_DUMP", "text"}}, 20000));
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("panicstop: cannot write " + dir.path() + "/panicstop-"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("EACCES"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("panicstop: this process runs as uid 65534, not as uid 0 as at install (it changed its "
                          "user): give that user the dump directory (chmod 1777 it, as /tmp is)"),
            std::string::npos)
      << r.output;
  std::vector<std::string> paths = written_paths(r.output);
  ASSERT_EQ(paths.size(), 1u) << r.output;
  EXPECT_EQ(paths[0].rfind("/tmp/panicstop-", 0), 0u) << paths[0];
  unlink(paths[0].c_str());

  // The same directory, made the worker's to write (as the message says): no
  // fallback, and no such line.
  chmod(dir.path().c_str(), 01777);
  r = run_in_child(
      [&] {
        install();
        if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(90);
        panic("worker crashed");
      },
      testing::with_env({{"PANICSTOP_DUMP_DIR", dir.path()}, {"PANICSTOP_DUMP", "text"}}, 20000));
  paths = written_paths(r.output);
  ASSERT_EQ(paths.size(), 1u) << r.output;
  EXPECT_EQ(paths[0].rfind(dir.path() + "/panicstop-", 0), 0u) << r.output;
  EXPECT_EQ(r.output.find("changed its user"), std::string::npos) << r.output;
}

// Every file write fails (a file size limit of 0: EFBIG, like a full disk):
// the text report goes to stderr and nothing half-written is left behind.
TEST(DumpFiles, FallsBackToStderrWhenNothingCanBeWritten) {
  TempDir dir;
  ChildResult r = run_in_child([&] {
    signal(SIGXFSZ, SIG_IGN);
    rlimit limit{0, 0};
    setrlimit(RLIMIT_FSIZE, &limit);
    printf("pid=%d\n", getpid());
    fflush(stdout);
    write_live_dump(dir.path().c_str());
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_TRUE(r.exited && r.exit_code == 4) << r.describe() << "\n" << r.output;
  EXPECT_TRUE(written_paths(r.output).empty()) << r.output;
  EXPECT_NE(r.output.find("EFBIG"), std::string::npos) << r.output;
  size_t fallback = r.output.find("panicstop: writing the text report to stderr instead\n");
  ASSERT_NE(fallback, std::string::npos) << r.output;
  EXPECT_NE(r.output.find("panic: ", fallback), std::string::npos);
  EXPECT_NE(r.output.find("\nthread ", fallback), std::string::npos);
  EXPECT_TRUE(dir.list().empty());
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex(R"(pid=(\d+))")));
  std::string needle = "-" + m[1].str() + "-";
  std::vector<std::string> leftovers;
  FILE* ls = popen("ls -a /tmp", "r");
  char line[512];
  while (fgets(line, sizeof line, ls) != nullptr)
    if (strstr(line, "panicstop-") != nullptr && strstr(line, needle.c_str()) != nullptr) leftovers.push_back(line);
  pclose(ls);
  EXPECT_TRUE(leftovers.empty()) << leftovers.front();
}

// The whole path: install, threads parked in known functions, panic. The
// report names every thread and each one's function.
TEST(DumpStep, PanicWritesTheReportWithEveryThread) {
  TempDir dir;
  ChildOptions opts;
  opts.set_env = {{"PANICSTOP_DUMP_DIR", dir.path()}, {"PANICSTOP_DUMP", "text"}};
  ChildResult r = run_in_child(
      [] {
        install();
        detail::register_dump_step();
        static testing::ParkedThreads* parked =
            new testing::ParkedThreads(4, {testing::park_in_alpha, testing::park_in_beta}, "worker");
        for (int tid : parked->tids()) printf("parked=%d\n", tid);
        fflush(stdout);
        panic("boom %d", 42);
      },
      opts);
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << "\n" << r.output;
  std::vector<std::string> paths = written_paths(r.output);
  ASSERT_EQ(paths.size(), 1u) << r.output;
  std::string text = testing::read_file(paths[0]);
  EXPECT_EQ(text.rfind("panic: boom 42\n", 0), 0u) << text.substr(0, 200);
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(\nthread \d+ \(.*\) \[panicking\] )"))) << text;
  std::regex parked(R"(parked=(\d+))");
  int count = 0;
  for (std::sregex_iterator it(r.output.begin(), r.output.end(), parked), end; it != end; ++it, ++count) {
    std::regex header("\nthread " + (*it)[1].str() + R"( \(worker-\d\) \[stopped\] )");
    EXPECT_TRUE(std::regex_search(text, header)) << (*it)[1] << "\n" << text;
  }
  EXPECT_EQ(count, 4);
  EXPECT_NE(text.find("park_in_alpha"), std::string::npos) << text;
  EXPECT_NE(text.find("park_in_beta"), std::string::npos) << text;
  // The panicking thread's own stack reaches this test's body.
  EXPECT_NE(text.find("DumpStep_PanicWritesTheReportWithEveryThread"), std::string::npos) << text;
}

}  // namespace
}  // namespace panicstop

namespace panicstop {
namespace {

// Both writers by default: the text report first, then the core, under one
// base name.
TEST(DumpStep, PanicWritesTextThenCoreByDefault) {
  testing::TempDir dir;
  testing::ChildOptions opts;
  opts.set_env = {{"PANICSTOP_DUMP_DIR", dir.path()}};
  opts.unset_env = {"PANICSTOP_DUMP", "PANICSTOP_CORE"};
  testing::ChildResult r = testing::run_in_child(
      [] {
        install();
        detail::register_dump_step();
        panic("two files");
      },
      opts);
  ASSERT_FALSE(r.hung) << r.describe();
  std::vector<std::string> paths = written_paths(r.output);
  ASSERT_EQ(paths.size(), 2u) << r.output;
  EXPECT_EQ(paths[0].substr(paths[0].size() - 4), ".txt");
  EXPECT_EQ(paths[1].substr(paths[1].size() - 5), ".core");
  EXPECT_EQ(paths[0].substr(0, paths[0].size() - 4), paths[1].substr(0, paths[1].size() - 5));
  EXPECT_EQ(dir.list().size(), 2u);
  EXPECT_EQ(testing::read_file(paths[1]).substr(0, 4), "\x7f" "ELF");
}

// A relative PANICSTOP_DUMP_DIR names a directory below the one the program
// started in: a daemon's chdir("/") after install() does not move it.
TEST(DumpStep, ARelativeDumpDirStaysWhereTheProgramStarted) {
  testing::TempDir dir;
  ASSERT_EQ(mkdir((dir.path() + "/dumps").c_str(), 0700), 0);
  testing::ChildOptions opts;
  opts.set_env = {{"PANICSTOP_DUMP_DIR", "dumps"}, {"PANICSTOP_DUMP", "text"}};
  opts.cwd = dir.path();
  testing::ChildResult r = testing::run_in_child(
      [] {
        install();
        detail::register_dump_step();
        if (chdir("/") != 0) _exit(3);
        panic("after the daemon's chdir");
      },
      opts);
  ASSERT_FALSE(r.hung) << r.describe();
  std::vector<std::string> paths = written_paths(r.output);
  ASSERT_EQ(paths.size(), 1u) << r.output;
  EXPECT_EQ(paths[0].rfind(dir.path() + "/dumps/panicstop-", 0), 0u) << paths[0];
}

}  // namespace
}  // namespace panicstop
