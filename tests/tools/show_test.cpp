// `panicstop show` and the command line, run as a child process with a
// deadline: usage errors, help, the damaged-file corpus (exit 1 with one
// line each, never a crash or a hang), text reports with file:line and JSON,
// and a gcore core of a 4-thread program parked in known functions.
#include <gtest/gtest.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <dirent.h>
#include <fstream>
#include <pthread.h>
#include <string>
#include <thread>
#include <vector>

#include "panicstop/panic.hpp"
#include "panicstop/thread.hpp"
#include "support/child_process.hpp"

namespace {

using panicstop::testing::ChildOptions;
using panicstop::testing::ChildResult;
using panicstop::testing::run_command;
using panicstop::testing::TempDir;

const std::string kTool = PANICSTOP_TOOL_PATH;
const std::string kCorpus = PANICSTOP_FUZZ_CORPUS;

ChildResult tool(const std::vector<std::string>& args) {
  std::vector<std::string> argv{kTool};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildOptions options;
  options.deadline = std::chrono::milliseconds(30000);
  return run_command(argv, options);
}

// stdout only (stderr dropped), through bash; with pipe_to, fails if either side fails.
ChildResult tool_stdout(const std::string& args_for_shell, const std::string& pipe_to = "") {
  std::string command = "'" + kTool + "' " + args_for_shell + " 2>/dev/null" + (pipe_to.empty() ? "" : " | " + pipe_to);
  ChildOptions options;
  options.deadline = std::chrono::milliseconds(30000);
  return run_command({"bash", "-c", "set -o pipefail; " + command}, options);
}

size_t count_lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

std::vector<std::string> corpus_files(const std::string& prefix) {
  std::vector<std::string> out;
  DIR* dir = opendir(kCorpus.c_str());
  if (dir == nullptr) return out;
  while (dirent* e = readdir(dir)) {
    std::string name = e->d_name;
    if (name.rfind(prefix, 0) == 0) out.push_back(kCorpus + "/" + name);
  }
  closedir(dir);
  return out;
}

void expect_one_line_failure(const std::string& file) {
  ChildResult r = tool({"show", file});
  ASSERT_FALSE(r.hung) << file << ": " << r.describe();
  ASSERT_TRUE(r.exited) << file << ": " << r.describe() << "\n" << r.output;
  EXPECT_EQ(r.exit_code, 1) << file << ": " << r.output;
  EXPECT_EQ(count_lines(r.output), 1u) << file << ": " << r.output;
  EXPECT_EQ(r.output.rfind("panicstop: " + file + ": ", 0), 0u) << r.output;
}

TEST(ShowCommand, HelpAndVersionSucceed) {
  ChildResult help = tool({"--help"});
  EXPECT_TRUE(help.exited && help.exit_code == 0) << help.describe();
  for (const char* needle : {"Usage:", "show", "Exit status", "Environment", "Examples"}) {
    EXPECT_NE(help.output.find(needle), std::string::npos) << needle;
  }
  // Every command in the table is listed.
  EXPECT_NE(help.output.find("  drill "), std::string::npos);
  ChildResult version = tool({"--version"});
  EXPECT_TRUE(version.exited && version.exit_code == 0) << version.describe();
  EXPECT_EQ(version.output.rfind("panicstop ", 0), 0u) << version.output;
  ChildResult show_help = tool({"help", "show"});
  EXPECT_TRUE(show_help.exited && show_help.exit_code == 0) << show_help.describe();
  EXPECT_NE(show_help.output.find("\"format\":\"panicstop-show\""), std::string::npos);
  ChildResult show_dash_help = tool({"show", "--help"});
  EXPECT_EQ(show_dash_help.exit_code, 0);
  EXPECT_EQ(show_dash_help.output, show_help.output);
}

TEST(ShowCommand, UsageErrorsExitTwoWithOneLineAndAHint) {
  std::vector<std::vector<std::string>> cases = {
      {}, {"frobnicate"}, {"--frobnicate"}, {"show"}, {"show", "--yaml", "x"}, {"show", "a", "b"}, {"help", "nope"},
  };
  for (const auto& args : cases) {
    ChildResult r = tool(args);
    std::string shown = args.empty() ? "(no arguments)" : args[0] + (args.size() > 1 ? " " + args[1] : "");
    ASSERT_TRUE(r.exited) << shown << ": " << r.describe();
    EXPECT_EQ(r.exit_code, 2) << shown << ": " << r.output;
    EXPECT_EQ(count_lines(r.output), 1u) << shown << ": " << r.output;
    EXPECT_NE(r.output.find("try 'panicstop "), std::string::npos) << r.output;
  }
}

TEST(ShowCommand, MissingAndUnreadableFilesFailWithOneLine) {
  TempDir dir;
  expect_one_line_failure(dir.path() + "/does-not-exist");
  expect_one_line_failure(dir.path());  // a directory
  write_file(dir.path() + "/empty", "");
  expect_one_line_failure(dir.path() + "/empty");
}

TEST(ShowCommand, RejectsEveryDamagedCorpusFile) {
  std::vector<std::string> files = corpus_files("damaged-");
  ASSERT_GE(files.size(), 25u);
  for (const std::string& f : files) expect_one_line_failure(f);
}

TEST(ShowCommand, RejectsTheElfHeaderTruncatedAtEveryLength) {
  std::string good = panicstop::testing::read_file(kCorpus + "/valid-core-panicstop");
  ASSERT_GT(good.size(), 64u);
  TempDir dir;
  for (size_t length = 1; length <= 64; ++length) {
    std::string path = dir.path() + "/cut-" + std::to_string(length);
    write_file(path, good.substr(0, length));
    expect_one_line_failure(path);
  }
}

TEST(ShowCommand, RejectsRandomBytesAfterTheMagic) {
  TempDir dir;
  uint32_t seed = 12345;
  for (int i = 0; i < 20; ++i) {
    std::string data = "\x7f" "ELF\x02\x01\x01";
    for (int k = 0; k < 300; ++k) {
      seed = seed * 1103515245u + 12345u;
      data += static_cast<char>(seed >> 24);
    }
    std::string path = dir.path() + "/random-" + std::to_string(i);
    write_file(path, data);
    expect_one_line_failure(path);
  }
}

// Runs show on f: it must exit with `status` and print a report.
ChildResult expect_printed(const std::string& f, int status) {
  ChildResult r = tool({"show", f});
  EXPECT_TRUE(r.exited) << f << ": " << r.describe();
  EXPECT_EQ(r.exit_code, status) << f << ": " << r.output;
  EXPECT_EQ(r.output.rfind("panic: ", 0), 0u) << r.output;
  return r;
}

TEST(ShowCommand, AcceptsTheValidCorpusFiles) {
  std::vector<std::string> files = corpus_files("valid-");
  ASSERT_GE(files.size(), 3u);
  for (const std::string& f : files) expect_printed(f, 0);
}

// Cores cut short: printed as far as they go, the cut said on stdout and
// stderr, exit 3; never a crash.
TEST(ShowCommand, PrintsTheTruncatedCorpusFilesAndExitsThree) {
  std::vector<std::string> files = corpus_files("truncated-");
  ASSERT_GE(files.size(), 4u);
  for (const std::string& f : files) {
    ChildResult r = expect_printed(f, 3);
    EXPECT_NE(r.output.find("\ncore truncated at "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("panicstop: " + f + ": warning: core truncated at "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("\nthread 101"), std::string::npos) << r.output;
  }
}

bool have_python() { return panicstop::testing::have_program("python3"); }

TEST(ShowCommand, JsonIsValidForEveryValidFile) {
  if (!have_python()) GTEST_SKIP() << "python3 not installed";
  std::vector<std::string> files = corpus_files("valid-"), truncated = corpus_files("truncated-");
  files.insert(files.end(), truncated.begin(), truncated.end());
  for (const std::string& f : files) {
    bool cut = f.find("/truncated-") != std::string::npos;
    ChildResult r = tool_stdout("show --json '" + f + "'",
                                "python3 -c 'import json,sys; d=json.load(sys.stdin); "
                                "assert d[\"format\"]==\"panicstop-show\" and d[\"version\"]==1; "
                                "assert (d[\"truncated\"] is not None) == " + std::string(cut ? "True" : "False") + "; "
                                "assert all(\"frames\" in t for t in d[\"threads\"]); print(\"ok\")'");
    // pipefail: the tool's 3 for a truncated core, unless python failed after it.
    EXPECT_TRUE(r.exited && r.exit_code == (cut ? 3 : 0)) << f << ": " << r.describe() << "\n" << r.output;
    EXPECT_NE(r.output.find("ok"), std::string::npos) << r.output;
  }
}

extern "C" __attribute__((noinline)) int panicstop_show_test_known_function(int x) {
  asm volatile("" : "+r"(x));
  return x * 3 + 1;
}

std::string self_path() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

TEST(ShowCommand, TextReportFramesGetFileAndLineAndReadBack) {
  TempDir dir;
  std::string report = dir.path() + "/report.txt";
  write_file(report,
             "panic: test panic\n"
             "thread 7 (main) [panicking]\n"
             "  #0 0x1234 panicstop_show_test_known_function+0x4 (" + self_path() + ")\n"
             "  #1 0x5678 ?? (/nonexistent/lib.so)\n"
             "locks:\n"
             "  lock=0x10 kind=mutex name=m owner=7 readers=0\n");
  ChildResult r = tool_stdout("show '" + report + "'");
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  EXPECT_NE(r.output.find("panicstop_show_test_known_function+0x4 (" + self_path() + ") at "), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("show_test.cpp:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("lock=0x10 kind=mutex name=m owner=7"), std::string::npos) << r.output;

  // The normalized text is itself a report: showing it again prints the same.
  std::string again = dir.path() + "/again.txt";
  write_file(again, r.output);
  ChildResult second = tool_stdout("show '" + again + "'");
  EXPECT_EQ(second.output, r.output);

  if (have_python()) {
    ChildResult json = tool_stdout("show --json '" + report + "'",
                                   "python3 -c 'import json,sys; d=json.load(sys.stdin); "
                                   "f=d[\"threads\"][0][\"frames\"][0]; "
                                   "assert d[\"kind\"]==\"text-report\" and f[\"offset\"]==4 and f[\"line\"]>0, f; "
                                   "assert d[\"locks\"][0][\"owner\"]==7; print(\"ok\")'");
    EXPECT_TRUE(json.exited && json.exit_code == 0) << json.describe() << json.output;
  }
}

// A real panic whose message and thread name carry newlines: the report
// escapes them, so `show --json` lists the real threads only and keeps the
// message on its line, escaped (the reader does not unescape).
TEST(ShowCommand, HostileProgramTextForgesNoThreads) {
  TempDir dir;
  ChildOptions options;
  options.set_env = {{"PANICSTOP_DUMP_DIR", dir.path()}, {"PANICSTOP_DUMP", "text"}, {"PANICSTOP_KDB_SOCKET", "0"}};
  options.deadline = std::chrono::milliseconds(20000);
  ChildResult crash = panicstop::testing::run_in_child(
      [] {
        panicstop::install();
        std::atomic<bool> named{false};
        std::thread([&] {
          panicstop::set_thread_name("w\nthread 99998 (x) [stopped]");
          named = true;
          for (;;) pause();
        }).detach();
        while (!named) std::this_thread::yield();
        panicstop::panic("boom\nthread 99999 (evil) [panicking] R\n  #0 0x1 evil+0x0 (evil)");
      },
      options);
  ASSERT_FALSE(crash.hung) << crash.describe();
  std::vector<std::string> files = dir.list();
  ASSERT_EQ(files.size(), 1u) << crash.output;
  std::string report = dir.path() + "/" + files[0];
  ChildResult r = tool_stdout("show '" + report + "'");
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  if (have_python()) {
    ChildResult json = tool_stdout("show --json '" + report + "'",
                                   "python3 -c 'import json,sys; d=json.load(sys.stdin); "
                                   "tids=[t[\"tid\"] for t in d[\"threads\"]]; "
                                   "assert len(tids)==2 and 99999 not in tids and 99998 not in tids, tids; "
                                   "assert d[\"message\"].startswith(\"boom\\\\nthread 99999\"), d[\"message\"]; "
                                   "print(\"ok\")'");
    EXPECT_TRUE(json.exited && json.exit_code == 0) << json.describe() << json.output;
    EXPECT_EQ(json.output, "ok\n");
  }
}

// The lowest address at which `path` is mapped in this process.
uintptr_t mapped_start(const std::string& path) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  uintptr_t lowest = 0;
  while (std::getline(maps, line)) {
    if (line.size() < path.size() || line.compare(line.size() - path.size(), path.size(), path) != 0) continue;
    uintptr_t start = std::stoull(line.substr(0, line.find('-')), nullptr, 16);
    if (lowest == 0 || start < lowest) lowest = start;
  }
  return lowest;
}

std::string hex(uintptr_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "0x%lx", static_cast<unsigned long>(v));
  return buf;
}

// The writer's own layout: module basenames in frames, paths and start
// addresses in "modules:". A frame without a symbol gets one from the file.
TEST(ShowCommand, ModulesSectionResolvesFramesByAddress) {
  std::string exe = self_path();
  uintptr_t start = mapped_start(exe);
  ASSERT_NE(start, 0u);
  uintptr_t pc = reinterpret_cast<uintptr_t>(&panicstop_show_test_known_function) + 4;
  std::string base = exe.substr(exe.rfind('/') + 1);
  auto report_with_build_id = [&](const std::string& build_id) {
    return "panic: test panic\n"
           "process 1 (x): x\n"
           "\n"
           "thread 7 (main) [panicking] R\n"
           "  #0 " + hex(pc) + " ?? (" + base + "+" + hex(pc - start) + ")\n"
           "\n"
           "modules:\n"
           "  " + hex(start) + "-" + hex(start + 0x100000) + " " + exe + " build-id=" + build_id + " (executable)\n";
  };
  TempDir dir;
  write_file(dir.path() + "/report.txt", report_with_build_id("none"));
  ChildResult r = tool_stdout("show '" + dir.path() + "/report.txt'");
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  EXPECT_NE(r.output.find(" panicstop_show_test_known_function+0x4 (" + base + ") at "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("show_test.cpp:"), std::string::npos) << r.output;

  // A file on disk that is a different build gives no file:line, and says so.
  write_file(dir.path() + "/other.txt", report_with_build_id("00112233"));
  ChildResult other = tool({"show", dir.path() + "/other.txt"});
  ASSERT_TRUE(other.exited && other.exit_code == 0) << other.describe() << other.output;
  EXPECT_EQ(other.output.find("show_test.cpp:"), std::string::npos) << other.output;
  EXPECT_NE(other.output.find("build-id on disk differs"), std::string::npos) << other.output;
}

// --- a gcore core of a 4-thread program parked in known functions ---------

std::atomic<int> g_parked{0};

#define PARK_FUNCTION(name)                                         \
  extern "C" __attribute__((noinline)) void* name(void*) {          \
    g_parked.fetch_add(1);                                          \
    for (;;) pause();                                               \
    asm volatile("");                                               \
    return nullptr;                                                 \
  }
PARK_FUNCTION(panicstop_parked_in_alpha)
PARK_FUNCTION(panicstop_parked_in_bravo)
PARK_FUNCTION(panicstop_parked_in_charlie)
PARK_FUNCTION(panicstop_parked_in_delta)

const char* const kParkedFunctions[] = {"panicstop_parked_in_alpha", "panicstop_parked_in_bravo",
                                       "panicstop_parked_in_charlie", "panicstop_parked_in_delta"};

// In a child: starts four threads, each parked in its own function, and
// returns when all four are in them.
void park_four_threads() {
  void* (*functions[])(void*) = {panicstop_parked_in_alpha, panicstop_parked_in_bravo, panicstop_parked_in_charlie,
                                 panicstop_parked_in_delta};
  g_parked.store(0);
  for (auto fn : functions) {
    pthread_t t;
    if (pthread_create(&t, nullptr, fn, nullptr) != 0) _exit(3);
  }
  while (g_parked.load() < 4) sched_yield();
}

// Every parked thread and its function are in `shown`, with file:line.
void expect_parked_threads_shown(const std::string& shown) {
  size_t thread_blocks = 0;
  for (size_t pos = 0; (pos = shown.find("\nthread ", pos)) != std::string::npos; ++pos) ++thread_blocks;
  EXPECT_EQ(thread_blocks, 5u) << shown;
  for (const char* fn : kParkedFunctions) {
    EXPECT_NE(shown.find(std::string(fn) + "+0x"), std::string::npos) << fn << " missing in\n" << shown;
  }
  EXPECT_NE(shown.find("show_test.cpp:"), std::string::npos) << "no file:line in\n" << shown;
}

// In the forked child: four threads parked, then one byte on `ready`, then wait.
[[noreturn]] void run_parked_program(int ready) {
  prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);  // yama: let gcore attach
  park_four_threads();
  char byte = 1;
  if (write(ready, &byte, 1) != 1) _exit(4);
  for (;;) pause();
}

TEST(ShowCommand, GcoreCoreShowsEveryThreadWithItsKnownFunction) {
  if (!panicstop::testing::have_program("gcore")) GTEST_SKIP() << "gcore (gdb) not installed";
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipe_fds[0]);
    run_parked_program(pipe_fds[1]);
  }
  close(pipe_fds[1]);
  char byte = 0;
  ASSERT_EQ(read(pipe_fds[0], &byte, 1), 1) << "the parked program did not start";
  close(pipe_fds[0]);

  TempDir dir;
  ChildOptions options;
  options.deadline = std::chrono::milliseconds(60000);
  ChildResult gcore = run_command({"gcore", "-o", dir.path() + "/core", std::to_string(child)}, options);
  std::string core = dir.path() + "/core." + std::to_string(child);
  ChildResult shown = tool({"show", core});
  ChildResult json;
  if (have_python()) {
    json = tool_stdout("show --json '" + core + "'",
                       "python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d[\"threads\"]))'");
  }
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);

  ASSERT_FALSE(gcore.hung) << gcore.describe();
  if (!gcore.exited || gcore.exit_code != 0 || access(core.c_str(), R_OK) != 0) {
    GTEST_SKIP() << "gcore could not attach here: " << gcore.output;
  }
  ASSERT_TRUE(shown.exited) << shown.describe();
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_NE(shown.output.find("panic: no panicstop note: core of " + std::to_string(child)), std::string::npos)
      << shown.output;
  expect_parked_threads_shown(shown.output);
  if (have_python()) {
    EXPECT_TRUE(json.exited && json.exit_code == 0) << json.describe() << json.output;
    EXPECT_EQ(json.output, "5\n");
  }
}

// A core written by the kernel (core_pattern "core" in the working directory).
TEST(ShowCommand, KernelCoreShowsEveryThreadWithItsKnownFunction) {
  std::string pattern = panicstop::testing::read_file("/proc/sys/kernel/core_pattern");
  if (pattern != "core\n") GTEST_SKIP() << "core_pattern is not \"core\": " << pattern;
  TempDir dir;
  ChildOptions options;
  options.deadline = std::chrono::milliseconds(30000);
  options.cwd = dir.path();
  ChildResult crashed = panicstop::testing::run_in_child(
      [] {
        struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
        if (setrlimit(RLIMIT_CORE, &unlimited) != 0) _exit(2);
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
        park_four_threads();
        signal(SIGSEGV, SIG_DFL);
        raise(SIGSEGV);
      },
      options);
  ASSERT_TRUE(crashed.signaled && crashed.term_signal == SIGSEGV) << crashed.describe();
  std::vector<std::string> files = dir.list();
  if (files.empty()) GTEST_SKIP() << "the kernel wrote no core here";
  std::string core = dir.path() + "/" + files.front();
  ChildResult shown = tool({"show", core});
  ASSERT_TRUE(shown.exited && shown.exit_code == 0) << shown.describe() << shown.output;
  EXPECT_NE(shown.output.find("(signal 11)"), std::string::npos) << shown.output;
  expect_parked_threads_shown(shown.output);
}

}  // namespace

namespace {

// Opening a FIFO for reading waits for a writer: the reader must refuse one,
// whether it is the file given or a module file a dump names.
TEST(ShowCommand, AFifoIsRefusedNotWaitedFor) {
  TempDir dir;
  std::string fifo = dir.path() + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  ChildResult r = tool({"show", fifo});
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_TRUE(r.exited && r.exit_code == 1) << r.describe() << r.output;
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;
  EXPECT_NE(r.output.find("panicstop: " + fifo + ": not a regular file"), std::string::npos) << r.output;
}

TEST(ShowCommand, AModuleThatIsNowAFifoIsSkipped) {
  const std::string library = "/lib/x86_64-linux-gnu/libz.so.1";
  if (access(library.c_str(), R_OK) != 0) GTEST_SKIP() << library << " not installed";
  TempDir dir, dumps;
  // A copy under a name of our own, loaded by the panicking process, and
  // replaced by a FIFO once the dumps name it.
  std::string module = dir.path() + "/libfifo-module.so";
  ChildResult copied = run_command({"cp", library, module});
  ASSERT_TRUE(copied.exited && copied.exit_code == 0) << copied.output;
  ChildResult crashed = panicstop::testing::run_in_child(
      [&] {
        if (dlopen(module.c_str(), RTLD_NOW) == nullptr) _exit(3);
        panicstop::install();
        panicstop::panic("a module that will be a FIFO");
      },
      panicstop::testing::with_env({{"PANICSTOP_DUMP", "text,core"}, {"PANICSTOP_DUMP_DIR", dumps.path()}}));
  ASSERT_FALSE(crashed.hung) << crashed.describe() << crashed.output;
  std::string report = dumps.file_ending(".txt"), core = dumps.file_ending(".core");
  ASSERT_FALSE(report.empty() || core.empty()) << crashed.output;
  ASSERT_NE(panicstop::testing::read_file(report).find(module), std::string::npos);
  ASSERT_EQ(unlink(module.c_str()), 0);
  ASSERT_EQ(mkfifo(module.c_str(), 0600), 0);
  for (const std::string& file : {core, report}) {
    ChildResult shown = tool({"show", file});
    ASSERT_FALSE(shown.hung) << file << ": " << shown.describe();
    EXPECT_TRUE(shown.exited && shown.exit_code == 0) << file << ": " << shown.describe() << shown.output;
    EXPECT_NE(shown.output.find("panic: a module that will be a FIFO"), std::string::npos) << shown.output;
  }
}

}  // namespace
