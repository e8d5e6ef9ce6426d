// kdb's console through the control socket: each command's answer, the idle
// timeout, over-long lines, `dump`, and `panic` taking the panic path once.
//
// Each test runs a workload in a child process (run_in_child, with a
// deadline): named threads, one holding Mutex "table", one waiting for it,
// one parked in a function with a known name. The workers block the request
// signal, so the main thread serves the socket; a client forked from the
// child sends the request and writes the console's transcript to a file the
// test reads afterwards.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>

#include "kdb/control_socket.hpp"
#include "lockprof/stuck_report.hpp"
#include "panicstop/panicstop.hpp"
#include "snapshot/parked_threads.hpp"
#include "support/child_process.hpp"
#include "support/seccomp.hpp"
#include "sys/syscall.hpp"
#include "thread/signal_sections.hpp"

namespace panicstop {
namespace {

using testing::ChildResult;
using testing::run_in_child;
using testing::TempDir;

Mutex g_table{"table"};
std::atomic<uint32_t> g_release{0};
std::atomic<int> g_holder_tid{0}, g_waiter_tid{0}, g_parked_tid{0};

void block_request_signal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, detail::kdb_request_signal());
  testing::raw_sigmask(SIG_BLOCK, &set);  // pthread_sigmask would not block a reserved signal
}

void wait_for_release() {
  uint32_t seen = 0;
  while ((seen = g_release.load()) == 0) sys::futex_wait(&g_release, seen);
}

__attribute__((noinline)) void kdb_test_parked_in_named_function() {
  wait_for_release();
  __asm__ volatile("" ::: "memory");
}

void holder() {
  block_request_signal();
  set_thread_name("kdb-holder");
  g_table.lock();
  g_holder_tid = current_tid();
  wait_for_release();
  g_table.unlock();
}

void waiter() {
  block_request_signal();
  set_thread_name("kdb-waiter");
  while (g_holder_tid.load() == 0) std::this_thread::yield();
  g_waiter_tid = current_tid();
  g_table.lock();
  g_table.unlock();
}

void parked() {
  block_request_signal();
  set_thread_name("kdb-parked");
  g_parked_tid = current_tid();
  kdb_test_parked_in_named_function();
}

// Connects to this process's control socket from a forked client, sends
// `request` and writes everything the console answers to `transcript`. The
// calling thread waits for the client, and is the one that serves it. With
// `hang_up`, the client shuts its sending side after the request (the
// console then sees the end of its input).
void converse_from_client(const std::string& request, const std::string& transcript, bool hang_up) {
  // Taken before the fork: the client, a child, listens on a socket of its own.
  std::string path = detail::control_socket_path();
  pid_t client = fork();
  if (client == 0) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    sys::copy_string(addr.sun_path, sizeof addr.sun_path, path.c_str());
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) _exit(3);
    if (!sys::write_all(fd, request.data(), request.size())) _exit(4);
    if (hang_up) shutdown(fd, SHUT_WR);
    int out = open(transcript.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char buf[4096];
    for (long n; (n = read(fd, buf, sizeof buf)) > 0;) sys::write_all(out, buf, size_t(n));
    close(out);
    _exit(0);
  }
  int status = 0;
  while (waitpid(client, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fprintf(stderr, "client failed: status %d\n", status);
}

// The workload: install, start the workers, wait until they sleep, then let
// `request` build the console input from their tids and run the conversation.
// Afterwards the workers are released: their completion proves the session
// restarted them.
template <class Request>
void workload(const std::string& transcript, Request request, bool hang_up = true) {
  install();
  std::thread h(holder), w(waiter), p(parked);
  while (g_holder_tid == 0 || g_waiter_tid == 0 || g_parked_tid == 0) std::this_thread::yield();
  for (int tid : {g_holder_tid.load(), g_waiter_tid.load(), g_parked_tid.load()})
    while (testing::kernel_state(tid) != 'S') std::this_thread::yield();
  converse_from_client(request(), transcript, hang_up);
  g_release = 1;
  sys::futex_wake(&g_release, 1 << 30);
  h.join();
  w.join();
  p.join();
  fprintf(stderr, "workload finished after the session\n");
}

std::string tid_text(const std::atomic<int>& tid) { return std::to_string(tid.load()); }

testing::ChildOptions options(const TempDir& dir, const char* idle_ms = "20000") {
  return testing::with_env({{"PANICSTOP_KDB_SOCKET", dir.path()},
                            {"PANICSTOP_DUMP_DIR", dir.path()},
                            {"PANICSTOP_KDB_IDLE_MS", idle_ms}},
                           20000);
}

// The tid of the thread named `name` in the `threads` answer.
int tid_named(const std::string& text, const std::string& name) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex("\\n  (\\d+) +" + name + " +\\[stopped\\] \\S"))) return 0;
  return std::stoi(m[1]);
}

TEST(KdbConsole, EveryCommandAnswersThroughTheSocket) {
  TempDir dir;
  std::string transcript = dir.path() + "/transcript";
  ChildResult r = run_in_child(
      [&] {
        workload(transcript, [] {
          return "kdb\nthreads\nbt " + tid_text(g_parked_tid) + "\nbt " + tid_text(g_waiter_tid) +
                 "\nlocks\nwitness\nlockprof\nhelp\nfrobnicate\nl\nbt 999999999\nth\ncontinue\n";
        });
      },
      options(dir));
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("workload finished after the session"), std::string::npos) << r.output;
  std::string text = testing::read_file(transcript);

  // Banner, then a prompt.
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(^kdb: process \d+ \(\S+\) stopped: kdb: requested by panicstop kdb; 3 threads stopped, 0 not stopped; type help for commands\nkdb> )")))
      << text;
  // threads: every worker, by name, stopped; the waiter names the lock and its owner.
  int holder = tid_named(text, "kdb-holder"), waiter = tid_named(text, "kdb-waiter"), parked = tid_named(text, "kdb-parked");
  ASSERT_NE(holder, 0) << text;
  ASSERT_NE(waiter, 0) << text;
  ASSERT_NE(parked, 0) << text;
  EXPECT_TRUE(std::regex_search(
      text, std::regex("\\n  " + std::to_string(waiter) + " +kdb-waiter +\\[stopped\\] \\S  waiting for mutex \"table\" \\(0x[0-9a-f]+\\) held by thread " +
                       std::to_string(holder) + "\\n")))
      << text;
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(\n  \d+ +\S+ +\[dumping\] R)"))) << text;
  // bt TID: the report's block, frames named.
  EXPECT_TRUE(std::regex_search(
      text, std::regex("kdb> thread " + std::to_string(parked) +
                       R"( \(kdb-parked\) \[stopped\] \S\n(  #\d+ .*\n)*  #\d+ 0x[0-9a-f]+ [^\n]*kdb_test_parked_in_named_function[^\n]*\+0x[0-9a-f]+ \(kdb_console_test\)\n)")))
      << text;
  EXPECT_TRUE(std::regex_search(text, std::regex("kdb> thread " + std::to_string(waiter) +
                                                 R"( \(kdb-waiter\) \[stopped\] \S\n  waiting for mutex "table")")))
      << text;
  // locks: the lock, its owner and its waiter.
  EXPECT_TRUE(std::regex_search(text, std::regex("kdb> locks:\\n  0x[0-9a-f]+ kind=mutex name=table owner=" +
                                                 std::to_string(holder) + " readers=0 word=0x[0-9a-f]+ waiters=" +
                                                 std::to_string(waiter) + "\\n")))
      << text;
  if (!kWitnessBuiltIn) {
    EXPECT_NE(text.find("kdb> WITNESS is not built in"), std::string::npos) << text;
  } else {
    EXPECT_NE(text.find("kdb> WITNESS: mode"), std::string::npos) << text;
    EXPECT_NE(text.find("thread " + std::to_string(holder) + " (kdb-holder):\n  holding mutex \"table\""), std::string::npos)
        << text;
  }
  EXPECT_NE(text.find("kdb> lock profiling is off"), std::string::npos) << text;
  for (const char* command : {"threads", "bt TID|all", "locks", "witness", "lockprof", "dump [DIR]", "panic [MESSAGE]",
                              "continue", "help"})
    EXPECT_NE(text.find(std::string("\n  ") + command), std::string::npos) << command << "\n" << text;
  EXPECT_NE(text.find("kdb> unknown command 'frobnicate'; type help\n"), std::string::npos) << text;
  EXPECT_NE(text.find("kdb> ambiguous command 'l'; type help\n"), std::string::npos) << text;
  EXPECT_NE(text.find("kdb> bt: no thread 999999999 in this process; type threads\n"), std::string::npos) << text;
  // "th" ran threads a second time.
  EXPECT_NE(text.find("\nkdb> 4 threads", text.find("ambiguous")), std::string::npos) << text;
  EXPECT_TRUE(text.ends_with("\nkdb> continuing\n")) << text;
}

TEST(KdbConsole, QuietConsoleContinuesByItself) {
  TempDir dir;
  std::string transcript = dir.path() + "/transcript";
  ChildResult r = run_in_child([&] { workload(transcript, [] { return std::string("kdb\nthr"); }, false); },
                               options(dir, "300"));
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("workload finished after the session"), std::string::npos) << r.output;
  std::string text = testing::read_file(transcript);
  EXPECT_NE(text.find("kdb> \nkdb: no input for 300 ms; continuing\n"), std::string::npos) << text;
}

TEST(KdbConsole, OverlongLineIsRefusedAndTheConsoleGoesOn) {
  TempDir dir;
  std::string transcript = dir.path() + "/transcript";
  ChildResult r = run_in_child(
      [&] { workload(transcript, [] { return "kdb\n" + std::string(2000, 'x') + "\nthreads\ncontinue\n"; }); },
      options(dir));
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  std::string text = testing::read_file(transcript);
  EXPECT_NE(text.find("kdb: line longer than 512 bytes ignored\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("unknown command"), std::string::npos) << text;  // no tail of the long line ran
  EXPECT_NE(text.find("kdb-waiter"), std::string::npos) << text;
  EXPECT_NE(text.find("kdb> continuing\n"), std::string::npos) << text;
}

TEST(KdbConsole, EndOfInputContinues) {
  TempDir dir;
  std::string transcript = dir.path() + "/transcript";
  ChildResult r = run_in_child([&] { workload(transcript, [] { return std::string("kdb\nthreads"); }); }, options(dir));
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  std::string text = testing::read_file(transcript);
  // The unterminated last line still runs; then the end of input continues.
  EXPECT_NE(text.find("kdb-parked"), std::string::npos) << text;
  EXPECT_TRUE(text.ends_with("kdb> \nkdb: end of input; continuing\n")) << text;
  EXPECT_NE(r.output.find("workload finished after the session"), std::string::npos) << r.output;
}

TEST(KdbConsole, DumpWritesTheFilesAndRefusesRelativeDirectories) {
  TempDir dir;
  std::string transcript = dir.path() + "/transcript";
  std::string out = dir.path() + "/out";
  ASSERT_EQ(mkdir(out.c_str(), 0700), 0);
  ChildResult r = run_in_child(
      [&] { workload(transcript, [&] { return "kdb\ndump relative/dir\ndump " + out + "\ncontinue\n"; }); },
      options(dir));
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  std::string text = testing::read_file(transcript);
  EXPECT_NE(text.find("kdb> dump: 'relative/dir' is relative; give an absolute directory"), std::string::npos) << text;
  EXPECT_TRUE(std::regex_search(text, std::regex("panicstop: wrote " + out + "/panicstop-\\S+\\.txt\\n"))) << text;
  EXPECT_TRUE(std::regex_search(text, std::regex("panicstop: wrote " + out + "/panicstop-\\S+\\.core\\n"))) << text;
  EXPECT_NE(text.find("dump: 2 files written\n"), std::string::npos) << text;
  std::string report;
  for (const auto& entry : std::filesystem::directory_iterator(out))
    if (entry.path().extension() == ".txt") report = testing::read_file(entry.path().string());
  EXPECT_NE(report.find("(kdb-parked) [stopped]"), std::string::npos) << report.substr(0, 2000);
}

// A worker that would say so if the panic restarted the threads kdb stopped.
void watch_for_restart() {
  block_request_signal();
  set_thread_name("kdb-watcher");
  while (!panicking()) sys::sleep_ns(1'000'000);
  static const char kMsg[] = "watcher ran after the panic\n";
  sys::write_all(2, kMsg, sizeof kMsg - 1);
}

TEST(KdbConsole, PanicTakesThePanicPathOnceAndRestartsNothing) {
  TempDir dir;
  std::string transcript = dir.path() + "/transcript";
  ChildResult r = run_in_child(
      [&] {
        install();
        std::thread watcher(watch_for_restart);
        watcher.detach();
        workload(transcript, [] { return std::string("kdb\npanic the server is wedged\n"); });
      },
      options(dir));
  EXPECT_FALSE(r.hung) << r.describe();
  EXPECT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << "\n" << r.output;
  std::string text = testing::read_file(transcript);
  EXPECT_NE(text.find("kdb> panicking: the panic path takes over"), std::string::npos) << text;
  size_t first = r.output.find("panic: kdb: the server is wedged\n");
  ASSERT_NE(first, std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("panic: kdb:", first + 1), std::string::npos) << "a second panic banner\n" << r.output;
  EXPECT_EQ(r.output.find("watcher ran after the panic"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("workload finished"), std::string::npos) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex("panicstop: wrote " + dir.path() + "/panicstop-\\S+\\.txt"))) << r.output;
}

// A thread that the session stopped inside a lock profile report (its output
// pipe was full) holds the profile table's lock until the session ends: the
// console's `lockprof` says it cannot write the table instead of waiting for
// a thread that will not run.
TEST(KdbConsole, LockprofAnswersWhileAStoppedThreadHoldsTheTable) {
  TempDir dir;
  std::string transcript = dir.path() + "/transcript";
  ChildResult r = run_in_child(
      [&] {
        install();
        lockprof_enable(true);
        testing::StuckReport stuck(block_request_signal);
        converse_from_client("kdb\nlockprof\ncontinue\n", transcript, true);
      },
      options(dir));
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  std::string text = testing::read_file(transcript);
  EXPECT_NE(text.find("kdb> lockprof: the table could not be written\n"), std::string::npos) << text;
}

// In a sandbox that refuses signals to threads (a seccomp filter), the
// session stops nobody; its banner says so and why, instead of leaving the
// user to wonder why the threads run on.
TEST(KdbConsole, TheBannerSaysWhenASandboxRefusesTheStopSignal) {
  if (!testing::sandbox_available()) GTEST_SKIP() << "no seccomp filter can be set here";
  TempDir dir;
  std::string transcript = dir.path() + "/transcript";
  ChildResult r = run_in_child(
      [&] {
        install();
        std::thread h(holder), w(waiter);
        while (g_holder_tid == 0 || g_waiter_tid == 0) std::this_thread::yield();
        if (!testing::refuse_thread_signals()) _exit(2);
        converse_from_client("kdb\ncontinue\n", transcript, true);
        g_release = 1;
        sys::futex_wake(&g_release, 1 << 30);
        h.join();
        w.join();
      },
      options(dir));
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  std::string text = testing::read_file(transcript);
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(; 0 threads stopped, 2 not stopped; type help for commands\n)")))
      << text;
  EXPECT_NE(text.find("kdb: the stop signal could not be sent to 2 threads (not permitted (EPERM): a seccomp filter "
                      "or a security module refuses it): they run on\n"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace panicstop
