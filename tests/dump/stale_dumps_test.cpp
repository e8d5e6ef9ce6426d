// install() removes the temporary dump files that processes killed during
// their dump left behind, and nothing else.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <string>
#include <vector>

#include "panicstop/panic.hpp"
#include "support/child_process.hpp"
#include "sys/private_dir.hpp"

namespace {

using panicstop::testing::ChildResult;
using panicstop::testing::TempDir;

// The pid of a process that has exited and been reaped.
int dead_pid() {
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  int status = 0;
  waitpid(pid, &status, 0);
  return int(pid);
}

void touch(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(write(fd, "x", 1), 1);
  close(fd);
}

std::string name(const std::string& comm, long long pid, long long seconds, const std::string& rest) {
  return ".panicstop-" + comm + "-" + std::to_string(pid) + "-" + std::to_string(seconds) + rest;
}

bool has(const std::vector<std::string>& names, const std::string& n) {
  return std::find(names.begin(), names.end(), n) != names.end();
}

// The next install() sweeps this directory whenever it was last swept.
void forget_sweep(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << dir;
  panicstop::sys::forget_sweep(fd);
  close(fd);
}

// install() in a child, with dir as the dump directory.
void install_in(const std::string& dir) {
  ChildResult r = panicstop::testing::run_in_child([] { _exit(panicstop::install() ? 0 : 4); },
                                                   panicstop::testing::with_env({{"PANICSTOP_DUMP_DIR", dir},
                                                                                 {"PANICSTOP_DUMP", "none"}}));
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
}

TEST(StaleDumps, InstallRemovesTemporaryFilesOfDeadProcessesAndNothingElse) {
  TempDir dir;
  long long now = time(nullptr);
  int dead = dead_pid();
  int alive = int(getpid());  // this test, which outlives the child
  std::vector<std::string> removed = {
      name("prog", dead, now, ".core.tmp"),
      name("prog", dead, now, "-2.txt.tmp"),          // a second dump in the same second
      name("worker-7", dead, now, ".core.tmp"),       // a COMM that ends in digits
      name("prog", alive, 1000, ".core.tmp"),         // the pid was reused: its process started later
  };
  std::vector<std::string> kept = {
      name("prog", alive, now, ".core.tmp"),          // a live process may still be writing it
      name("prog", dead, now, ".core"),               // not a temporary name
      "panicstop-prog-" + std::to_string(dead) + "-1.core.tmp",  // no leading dot
      name("prog", dead, now, ".core.tmp.bak"),
      name("prog", dead, now, ".tmp"),                // no suffix
      ".panicstop-" + std::to_string(dead) + "-" + std::to_string(now) + ".core.tmp",  // no COMM
      "unrelated.tmp",
  };
  for (const std::string& n : removed) touch(dir.path() + "/" + n);
  for (const std::string& n : kept) touch(dir.path() + "/" + n);
  // Matching names that are not regular files: never touched.
  std::string as_dir = name("dirprog", dead, now, ".core.tmp");
  ASSERT_EQ(mkdir((dir.path() + "/" + as_dir).c_str(), 0700), 0);
  std::string as_link = name("linkprog", dead, now, ".txt.tmp");
  ASSERT_EQ(symlink((dir.path() + "/unrelated.tmp").c_str(), (dir.path() + "/" + as_link).c_str()), 0);
  kept.push_back(as_dir);
  kept.push_back(as_link);

  std::string path = dir.path();
  forget_sweep(path);  // an earlier directory may have had this inode number
  ChildResult r = panicstop::testing::run_in_child(
      [path, now] {
        // A file with this process's own pid is an earlier process's: this one
        // has not dumped yet.
        int fd = open((path + "/" + name("prog", getpid(), now, ".txt.tmp")).c_str(), O_WRONLY | O_CREAT, 0600);
        if (fd < 0) _exit(3);
        close(fd);
        if (!panicstop::install()) _exit(4);
      },
      panicstop::testing::with_env({{"PANICSTOP_DUMP_DIR", path}, {"PANICSTOP_DUMP", "none"}}));
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;

  std::vector<std::string> left = dir.list();
  for (const std::string& n : removed) EXPECT_FALSE(has(left, n)) << n;
  for (const std::string& n : kept) EXPECT_TRUE(has(left, n)) << n;
  for (const std::string& n : left)
    EXPECT_TRUE(has(kept, n)) << n << " is left, and only the names in kept should be";
}

// A program started again and again (each command of a script under
// `panicstop run`) reads the directory once a minute, not at every start: a
// file left in between waits for the next sweep.
TEST(StaleDumps, ADirectoryIsSweptAtMostOnceAMinute) {
  TempDir dir;
  long long now = time(nullptr);
  std::string first = name("prog", dead_pid(), now, ".core.tmp");
  touch(dir.path() + "/" + first);
  forget_sweep(dir.path());
  install_in(dir.path());
  EXPECT_FALSE(has(dir.list(), first)) << "the first start sweeps";
  std::string second = name("prog", dead_pid(), now, ".txt.tmp");
  touch(dir.path() + "/" + second);
  install_in(dir.path());
  EXPECT_TRUE(has(dir.list(), second)) << "a start within the minute does not read the directory";
  forget_sweep(dir.path());  // as if the minute had passed
  install_in(dir.path());
  EXPECT_FALSE(has(dir.list(), second)) << "the next sweep takes it";
}

}  // namespace
