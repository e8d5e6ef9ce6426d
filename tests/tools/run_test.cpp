// `panicstop run`: unmodified programs get stopped threads and dumps.
#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <regex>
#include <string>
#include <thread>

#include "support/child_process.hpp"

namespace {

using panicstop::testing::ChildOptions;
using panicstop::testing::ChildResult;
using panicstop::testing::have_program;
using panicstop::testing::read_file;
using panicstop::testing::run_command;
using panicstop::testing::TempDir;

const std::string kTool = PANICSTOP_TOOL_PATH;

int count_lines_matching(const std::string& text, const std::regex& re) {
  int n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (std::regex_search(line, re)) ++n;
  return n;
}

TEST(Run, ReturnsTheProgramsExitStatus) {
  ChildResult r = run_command({kTool, "run", "--", "sh", "-c", "exit 7"});
  EXPECT_TRUE(r.exited && r.exit_code == 7) << r.describe();
}

TEST(Run, UsageErrorsAndMissingPrograms) {
  ChildResult none = run_command({kTool, "run"});
  EXPECT_TRUE(none.exited && none.exit_code == 2) << none.describe();
  ChildResult bad = run_command({kTool, "run", "--frobnicate", "--", "true"});
  EXPECT_TRUE(bad.exited && bad.exit_code == 2) << bad.describe();
  ChildResult core = run_command({kTool, "run", "--core", "huge", "--", "true"});
  EXPECT_TRUE(core.exited && core.exit_code == 2) << core.describe();
  ChildResult missing = run_command({kTool, "run", "--", "/nonexistent/program"});
  EXPECT_TRUE(missing.exited && missing.exit_code == 1) << missing.describe();
  EXPECT_NE(missing.output.find("no such program"), std::string::npos) << missing.describe();
  ChildResult help = run_command({kTool, "help", "run"});
  EXPECT_TRUE(help.exited && help.exit_code == 0) << help.describe();
  EXPECT_NE(help.output.find("pthread_create"), std::string::npos) << "the help names what the shim interposes";
}

// Programs the loader will not preload into: run says so, names why, and
// still runs them (a service wrapped in `panicstop run` must start).
TEST(Run, AStaticProgramRunsWithAWarningThatItIsUnprotected) {
  ChildResult r = run_command({kTool, "run", "--", PANICSTOP_STATIC_PROGRAM});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  EXPECT_NE(r.output.find("the static program ran"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("panicstop: run: warning: " + std::string(PANICSTOP_STATIC_PROGRAM) +
                          " is statically linked: LD_PRELOAD cannot bring panicstop into it; it runs without "
                          "panicstop"),
            std::string::npos)
      << r.output;
  // A script whose interpreter is that program: the same, said of the interpreter.
  TempDir dir;
  std::string script = dir.path() + "/script";
  std::ofstream(script) << "#!" << PANICSTOP_STATIC_PROGRAM << "\n";
  chmod(script.c_str(), 0755);
  ChildResult s = run_command({kTool, "run", "--", script});
  EXPECT_TRUE(s.exited && s.exit_code == 0) << s.describe() << s.output;
  EXPECT_NE(s.output.find("runs under " + std::string(PANICSTOP_STATIC_PROGRAM) + ", which is statically linked"),
            std::string::npos)
      << s.output;
  // A dynamic program gets no warning.
  ChildResult d = run_command({kTool, "run", "--", "sh", "-c", "exit 0"});
  EXPECT_EQ(d.output.find("warning"), std::string::npos) << d.output;
}

TEST(Run, ASetUserIdProgramRunsWithAWarningThatItIsUnprotected) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give a copy of a program to another user";
  TempDir dir;
  std::string copy = dir.path() + "/true";
  ASSERT_EQ(system(("cp /bin/true " + copy + " && chown 65534 " + copy + " && chmod 4755 " + copy).c_str()), 0);
  chmod(dir.path().c_str(), 0755);
  ChildResult r = run_command({kTool, "run", "--", copy});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  EXPECT_NE(r.output.find("runs set-user-ID or set-group-ID: the loader ignores LD_PRELOAD for it"),
            std::string::npos)
      << r.output;
}

TEST(Run, StackOverflowInAThreadTheProgramMadeGivesADumpOfEveryThread) {
  TempDir dir;
  ChildResult r = run_command({kTool, "run", "--dump-dir", dir.path(), "--", PANICSTOP_UNINSTRUMENTED});
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_TRUE(r.exited && r.exit_code == 128 + SIGSEGV) << r.describe();
  std::string report = dir.file_ending(".txt");
  ASSERT_FALSE(report.empty()) << "no text report; " << r.describe();
  std::string text = read_file(report);
  EXPECT_EQ(text.rfind("panic: fatal signal SIGSEGV", 0), 0u) << text;
  EXPECT_NE(text.find("5 threads: 4 stopped, 0 not stopped"), std::string::npos) << text;
  EXPECT_NE(text.find("recurse_forever"), std::string::npos) << text;
  EXPECT_FALSE(dir.file_ending(".core").empty());

  // The control: the same program without the shim dies with no dump.
  TempDir plain;
  ChildOptions opts;
  opts.cwd = plain.path();
  ChildResult bare = run_command({PANICSTOP_UNINSTRUMENTED}, opts);
  EXPECT_TRUE(bare.signaled && bare.term_signal == SIGSEGV) << bare.describe();
  EXPECT_TRUE(plain.file_ending(".txt").empty());
}

// The shim has its own hidden C++ runtime; a C++ program's uncaught
// exception still reaches panicstop through the program's std::terminate,
// with its type and what(), from main and from a thread alike.
TEST(Run, AnUncaughtExceptionInAProgramBuiltWithoutPanicstopIsNamed) {
  struct Case {
    const char* where;
    const char* panic;
  } cases[] = {
      {"main", "panic: uncaught exception of type (anonymous namespace)::DiskOnFire: the disk is on fire\n"},
      {"thread", "panic: uncaught exception of type (anonymous namespace)::DiskOnFire: the disk is on fire\n"},
      {"int", "panic: uncaught exception of type int\n"},
  };
  for (const Case& c : cases) {
    TempDir dir;
    ChildResult r = run_command(
        {kTool, "run", "--dump-dir", dir.path(), "--dump", "text", "--", PANICSTOP_UNCAUGHT_EXCEPTION, c.where});
    ASSERT_FALSE(r.hung) << r.describe();
    EXPECT_TRUE(r.exited && r.exit_code == 128 + SIGABRT) << c.where << ": " << r.describe();
    EXPECT_NE(r.output.find(c.panic), std::string::npos) << c.where << ": " << r.output;
    std::string report = dir.file_ending(".txt");
    ASSERT_FALSE(report.empty()) << c.where << ": " << r.output;
    EXPECT_EQ(read_file(report).rfind(c.panic, 0), 0u) << read_file(report).substr(0, 300);
  }
}

// A crash that leaves no dump is never silent: run names it, and the dump
// directory it looked in. One the shim cannot see (SIGSEGV given back to the
// kernel past it), and a SIGKILL; a crash that did leave its dump (the
// stack overflow above) gets no such line.
TEST(Run, ACrashThatLeftNoDumpIsSaidSo) {
  TempDir dir;
  ChildResult unseen = run_command({kTool, "run", "--dump-dir", dir.path(), "--", PANICSTOP_UNSEEN_CRASH});
  ASSERT_FALSE(unseen.hung) << unseen.describe();
  EXPECT_TRUE(unseen.exited && unseen.exit_code == 128 + SIGSEGV) << unseen.describe() << unseen.output;
  EXPECT_TRUE(dir.list().empty());
  EXPECT_NE(unseen.output.find(std::string("panicstop: run: ") + PANICSTOP_UNSEEN_CRASH + " (pid "),
            std::string::npos)
      << unseen.output;
  EXPECT_NE(unseen.output.find(") was killed by SIGSEGV; panicstop found no dump of it in " + dir.path() +
                               " or /tmp: the kernel ended it where no handler could run"),
            std::string::npos)
      << unseen.output;
  EXPECT_EQ(unseen.output.find("a directory it changed to"), std::string::npos) << "the directory was chosen";

  ChildResult killed = run_command({kTool, "run", "--dump-dir", dir.path(), "--", "sh", "-c", "kill -KILL $$"});
  EXPECT_TRUE(killed.exited && killed.exit_code == 128 + SIGKILL) << killed.describe() << killed.output;
  EXPECT_NE(killed.output.find(") was killed by SIGKILL, which no handler can catch; panicstop found no dump of it"),
            std::string::npos)
      << killed.output;

  // Dumps disabled: nothing was to be written, so nothing is missing.
  ChildResult none = run_command({kTool, "run", "--dump", "none", "--", PANICSTOP_UNSEEN_CRASH});
  EXPECT_EQ(none.output.find("found no dump"), std::string::npos) << none.output;

  TempDir dumped;
  ChildResult crashed = run_command({kTool, "run", "--dump-dir", dumped.path(), "--", PANICSTOP_UNINSTRUMENTED});
  EXPECT_TRUE(crashed.exited && crashed.exit_code == 128 + SIGSEGV) << crashed.describe();
  EXPECT_FALSE(dumped.file_ending(".txt").empty());
  EXPECT_EQ(crashed.output.find("found no dump"), std::string::npos) << crashed.output;
}

// --dump takes a list: the minidump joins the other two under the same base
// name, and `panicstop show` reads it back with the thread that overflowed.
TEST(Run, DumpFormatsListAddsAMinidumpThatShowReads) {
  TempDir dir;
  ChildResult r = run_command(
      {kTool, "run", "--dump-dir", dir.path(), "--dump", "text,core,minidump", "--", PANICSTOP_UNINSTRUMENTED});
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_TRUE(r.exited && r.exit_code == 128 + SIGSEGV) << r.describe();
  std::string report = dir.file_ending(".txt"), core = dir.file_ending(".core"),
              dmp = dir.file_ending(".dmp");
  ASSERT_FALSE(dmp.empty()) << r.output;
  EXPECT_FALSE(core.empty()) << r.output;
  ASSERT_FALSE(report.empty()) << r.output;
  EXPECT_EQ(report.substr(0, report.size() - 4), dmp.substr(0, dmp.size() - 4));
  EXPECT_NE(r.output.find("panicstop: wrote " + dmp), std::string::npos) << r.output;
  EXPECT_EQ(read_file(dmp).substr(0, 4), "MDMP");
  ChildResult show = run_command({kTool, "show", dmp});
  EXPECT_TRUE(show.exited && show.exit_code == 0) << show.describe() << "\n" << show.output;
  EXPECT_EQ(show.output.rfind("panic: fatal signal SIGSEGV", 0), 0u) << show.output;
  EXPECT_EQ(count_lines_matching(show.output, std::regex(R"(^thread \d+ )")), 5) << show.output;
  EXPECT_NE(show.output.find("recurse_forever"), std::string::npos) << show.output;
}

// A real multithreaded server from Debian that nobody here wrote.
int free_loopback_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

bool accepts_connections(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

// The pid of the process whose command line contains `needle` (and is not us).
int find_process(const std::string& needle) {
  DIR* d = opendir("/proc");
  int found = 0;
  while (dirent* e = readdir(d)) {
    int pid = atoi(e->d_name);
    if (pid <= 0 || pid == getpid()) continue;
    std::string cmd = read_file("/proc/" + std::string(e->d_name) + "/cmdline");
    for (char& c : cmd)
      if (c == '\0') c = ' ';
    if (cmd.rfind("memcached ", 0) == 0 && cmd.find(needle) != std::string::npos) found = pid;
  }
  closedir(d);
  return found;
}

// memcached under `panicstop run`, serving on a free loopback port.
struct ServedMemcached {
  ChildResult result;
  std::thread server;
  int port = 0;
  int pid = 0;
  int threads = 0;

  explicit ServedMemcached(const std::string& dump_dir) {
    port = free_loopback_port();
    std::string port_arg = std::to_string(port);
    server = std::thread([this, dump_dir, port_arg] {
      ChildOptions opts;
      opts.deadline = std::chrono::seconds(60);
      result = run_command({kTool, "run", "--dump-dir", dump_dir, "--", "memcached", "-u", "root", "-l",
                            "127.0.0.1", "-p", port_arg, "-U", "0", "-t", "4"},
                           opts);
    });
    // Wait (with a deadline) until memcached serves, so all its threads exist.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline && (pid == 0 || !accepts_connections(port))) {
      if (pid == 0) pid = find_process("-p " + port_arg);
      std::this_thread::yield();
    }
    if (DIR* d = opendir(("/proc/" + std::to_string(pid) + "/task").c_str())) {
      while (dirent* e = readdir(d))
        if (e->d_name[0] != '.') ++threads;
      closedir(d);
    }
  }
  ~ServedMemcached() {
    if (pid > 0 && server.joinable()) kill(pid, SIGKILL);
    if (server.joinable()) server.join();
  }
  ServedMemcached(const ServedMemcached&) = delete;
  ServedMemcached& operator=(const ServedMemcached&) = delete;

  // Ends it the way the test chooses and waits for `panicstop run` to return.
  void end_with(int sig) {
    kill(pid, sig);
    server.join();
  }
};

size_t gdb_thread_rows(const std::string& exe, const std::string& core, std::string* output) {
  ChildResult gdb = run_command({"gdb", "-nx", "-batch", "-ex", "info threads", "-ex", "thread apply all bt", exe, core},
                                ChildOptions{std::chrono::seconds(120), {}, {}, ""});
  *output = gdb.output;
  if (gdb.hung) return 0;
  return size_t(count_lines_matching(gdb.output, std::regex(R"(^\*?\s+\d+\s+(Thread|LWP))")));
}

TEST(Run, MemcachedKilledWithSegvGivesACoreWithEveryThread) {
  if (!have_program("memcached") || !have_program("gdb")) GTEST_SKIP() << "memcached or gdb not installed";
  TempDir dir;
  ServedMemcached memcached(dir.path());
  ASSERT_GT(memcached.pid, 0) << "memcached did not start";
  int threads = memcached.threads;
  ASSERT_GT(threads, 4);
  memcached.end_with(SIGSEGV);
  const ChildResult& result = memcached.result;
  EXPECT_TRUE(result.exited && result.exit_code == 128 + SIGSEGV) << result.describe();
  std::string core = dir.file_ending(".core");
  ASSERT_FALSE(core.empty()) << result.describe();
  std::string gdb;
  EXPECT_EQ(gdb_thread_rows("/usr/bin/memcached", core, &gdb), size_t(threads)) << gdb;
  EXPECT_EQ(gdb.find("Couldn't find general-purpose registers"), std::string::npos) << gdb;
  EXPECT_NE(gdb.find("main"), std::string::npos) << gdb;
}

// Issue 7's story on a real server: freeze it, see every thread, let it go
// on; take a core without ending it. One command each, no ptrace.
TEST(Run, MemcachedCanBeInspectedAndDumpedWhileItServes) {
  if (!have_program("memcached") || !have_program("gdb")) GTEST_SKIP() << "memcached or gdb not installed";
  TempDir dir, live;
  ServedMemcached memcached(dir.path());
  ASSERT_GT(memcached.pid, 0) << "memcached did not start";
  std::string pid = std::to_string(memcached.pid);

  ChildResult kdb = run_command({kTool, "kdb", pid, "-c", "threads"}, ChildOptions{std::chrono::seconds(30), {}, {}, ""});
  ASSERT_FALSE(kdb.hung) << kdb.describe();
  EXPECT_TRUE(kdb.exited && kdb.exit_code == 0) << kdb.describe() << kdb.output;
  EXPECT_EQ(count_lines_matching(kdb.output, std::regex(R"(\[stopped\])")), memcached.threads - 1) << kdb.output;
  EXPECT_NE(kdb.output.find("continuing"), std::string::npos) << kdb.output;
  EXPECT_TRUE(accepts_connections(memcached.port)) << "memcached stopped serving after kdb";

  ChildResult dump = run_command({kTool, "dump", pid, "--dir", live.path()}, ChildOptions{std::chrono::seconds(30), {}, {}, ""});
  ASSERT_FALSE(dump.hung) << dump.describe();
  EXPECT_TRUE(dump.exited && dump.exit_code == 0) << dump.describe() << dump.output;
  std::string core = live.file_ending(".core");
  ASSERT_FALSE(core.empty()) << dump.output;
  EXPECT_TRUE(accepts_connections(memcached.port)) << "memcached stopped serving after the live dump";
  std::string gdb;
  EXPECT_EQ(gdb_thread_rows("/usr/bin/memcached", core, &gdb), size_t(memcached.threads)) << gdb;

  memcached.end_with(SIGTERM);
  EXPECT_TRUE(memcached.result.exited) << memcached.result.describe();
  EXPECT_TRUE(dir.file_ending(".core").empty()) << "nothing crashed: no crash dump";
}

}  // namespace
