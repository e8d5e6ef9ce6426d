// A panic whose stderr nobody reads. run_in_child reads the child's output,
// which would drain the pipe, so these tests fork by hand: the parent keeps
// the read end open and never reads it, and waits for the child through a
// pidfd with a deadline.
#include "panicstop/panic.hpp"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <string>
#include <thread>

#include "panic_test_util.hpp"
#include "support/child_process.hpp"
#include "sys/syscall.hpp"

namespace panicstop {
namespace {

using testing::park;
using testing::TempDir;
using testing::wait_for_threads;

struct Outcome {
  bool hung = false;
  int status = 0;
};

// Fills the pipe through its write end, which stays blocking afterwards (the
// child inherits it as fd 2, and the library must not depend on its flags).
void fill_pipe(int write_end) {
  int flags = fcntl(write_end, F_GETFL);
  ASSERT_EQ(fcntl(write_end, F_SETFL, flags | O_NONBLOCK), 0);
  char block[4096] = {};
  for (;;) {
    ssize_t n = write(write_end, block, sizeof block);
    if (n < 0) {
      ASSERT_EQ(errno, EAGAIN);
      break;
    }
  }
  // Less than a block may still fit: fill to the last byte.
  while (write(write_end, block, 1) == 1) {
  }
  ASSERT_EQ(fcntl(write_end, F_SETFL, flags), 0);
}

// Runs body in a child whose stderr is a full pipe that is never read.
Outcome run_with_full_stderr(void (*body)(), const std::string& dump_dir, int deadline_ms) {
  Outcome out;
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << errno;
    return out;
  }
  fill_pipe(p[1]);
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    dup2(p[1], 2);
    setenv("PANICSTOP_DUMP_DIR", dump_dir.c_str(), 1);
    setenv("PANICSTOP_KDB_SOCKET", "0", 1);
    setenv("PANICSTOP_CORE_LIMIT", "ignore", 1);  // the test checks the core; ulimit -c may be 0
    body();
    _exit(0);
  }
  close(p[1]);
  setpgid(pid, pid);  // either side may win the race; both set the same group
  int pidfd = int(syscall(SYS_pidfd_open, pid, 0));
  struct pollfd pf = {pidfd, POLLIN, 0};
  int ready;
  do ready = poll(&pf, 1, deadline_ms);
  while (ready < 0 && errno == EINTR);
  if (ready == 0) {
    out.hung = true;
    kill(-pid, SIGKILL);
  }
  waitpid(pid, &out.status, 0);
  close(pidfd);
  close(p[0]);
  return out;
}

void panic_with_four_threads() {
  install();
  for (int i = 0; i < 3; ++i) std::thread([] { park(); }).detach();
  wait_for_threads(4);
  panic("stderr is full");
}

bool has_suffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Deadline well under the step watchdog's default 10 s: a fix that only
// relies on the watchdog to cut a blocked write is not enough.
TEST(PanicStderr, AFullPipeDelaysNeitherTheDumpsNorTheDeath) {
  TempDir dir;
  Outcome r = run_with_full_stderr(panic_with_four_threads, dir.path(), 5000);
  ASSERT_FALSE(r.hung) << "the panic blocked on stderr";
  EXPECT_TRUE(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT) << "status " << r.status;
  bool txt = false, core = false;
  for (const std::string& f : dir.list()) {
    EXPECT_FALSE(has_suffix(f, ".tmp")) << f;
    txt = txt || has_suffix(f, ".txt");
    core = core || has_suffix(f, ".core");
  }
  EXPECT_TRUE(txt);
  EXPECT_TRUE(core);
}

// The step watchdog's own message must not block either: a hook that overruns
// its deadline, then the dumps.
TEST(PanicStderr, AnOverrunWithAFullPipeStillEnds) {
  TempDir dir;
  Outcome r = run_with_full_stderr(
      [] {
        setenv("PANICSTOP_STEP_TIMEOUT_MS", "200", 1);
        install();
        on_panic(Stage::PreDump, [](void*) { park(); }, nullptr);
        panic("stderr is full and a hook hangs");
      },
      dir.path(), 5000);
  ASSERT_FALSE(r.hung) << "the panic blocked on stderr";
  EXPECT_TRUE(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT) << "status " << r.status;
  bool txt = false;
  for (const std::string& f : dir.list()) txt = txt || has_suffix(f, ".txt");
  EXPECT_TRUE(txt);
}

// A program that closed its stderr gets the next file it opens as fd 2. A
// data file there (opened for reading and writing, not appending) must come
// out of the crash as it went in, and the dumps must still be written; a
// log there (appending) still gets the panic's lines.
std::string crash_with_a_file_as_stderr(int open_flags, const TempDir& dumps) {
  std::string path = dumps.path() + ".data";
  auto r = testing::run_in_child(
      [&] {
        install();
        std::thread([] { park(); }).detach();
        wait_for_threads(2);
        close(2);
        int fd = open(path.c_str(), open_flags | O_CREAT | O_TRUNC, 0600);
        if (fd != 2) _exit(3);
        static const char kPage[] = "database page\n";
        if (write(fd, kPage, sizeof kPage - 1) != ssize_t(sizeof kPage - 1)) _exit(4);
        panic("crash with a file where stderr was");
      },
      testing::with_env({{"PANICSTOP_DUMP", "text"}, {"PANICSTOP_DUMP_DIR", dumps.path()}}));
  EXPECT_FALSE(r.hung) << r.describe();
  EXPECT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << "\n" << r.output;
  bool txt = false;
  for (const std::string& f : dumps.list()) txt = txt || has_suffix(f, ".txt");
  EXPECT_TRUE(txt) << "no report in " << dumps.path();
  std::string content = testing::read_file(path);
  unlink(path.c_str());
  return content;
}

TEST(PanicStderr, ADataFileWhereStderrWasIsLeftAsItWas) {
  TempDir dumps;
  EXPECT_EQ(crash_with_a_file_as_stderr(O_RDWR, dumps), "database page\n");
}

TEST(PanicStderr, ALogWhereStderrWasGetsThePanicsLines) {
  TempDir dumps;
  std::string log = crash_with_a_file_as_stderr(O_WRONLY | O_APPEND, dumps);
  EXPECT_EQ(log.rfind("database page\npanic: crash with a file where stderr was", 0), 0u) << log;
  EXPECT_NE(log.find("panicstop: wrote "), std::string::npos) << log;
}

}  // namespace
}  // namespace panicstop
