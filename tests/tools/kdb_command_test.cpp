// `panicstop kdb PID` and `panicstop dump PID` against real processes: a
// workload (this test binary, re-executed with a hidden test) that installed
// panicstop, `sleep`, sockets that refuse or never answer, and a caller that
// is not the owner.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "panicstop/panicstop.hpp"
#include "snapshot/parked_threads.hpp"
#include "support/child_process.hpp"
#include "thread/signal_sections.hpp"

namespace panicstop {
namespace {

using testing::ChildResult;
using testing::run_command;
using testing::TempDir;

const std::string kTool = PANICSTOP_TOOL_PATH;

// --- the workload, run in a re-executed copy of this binary ----------------

Mutex g_table{"table"};
std::atomic<int> g_holder_tid{0}, g_waiter_tid{0};

void block_request_signal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, detail::kdb_request_signal());
  testing::raw_sigmask(SIG_BLOCK, &set);  // pthread_sigmask would not block a reserved signal
}

// Holds "table" with a waiter behind it until stdin ends; says "ready" first.
TEST(KdbCommandWorkload, DISABLED_Serve) {
  if (getenv("KDB_COMMAND_TEST_WORKLOAD") == nullptr) GTEST_SKIP() << "run by the other tests";
  install();
  block_request_signal();  // inherited by the workers; the main thread takes the requests
  g_table.lock();
  std::thread waiter([] {
    set_thread_name("kdb-waiter");
    g_waiter_tid = current_tid();
    g_table.lock();
    g_table.unlock();
  });
  set_thread_name("kdb-holder");
  g_holder_tid = current_tid();
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, detail::kdb_request_signal());
  if (getenv("KDB_COMMAND_TEST_BLOCK_ALL") == nullptr) testing::raw_sigmask(SIG_UNBLOCK, &set);
  while (g_waiter_tid == 0 || testing::kernel_state(g_waiter_tid) != 'S') std::this_thread::yield();
  if (getenv("KDB_COMMAND_TEST_BECOME_NOBODY") != nullptr) {
    // As nginx's workers do (`user www-data`): root at install(), so the
    // socket is in /tmp/panicstop-0, then another user for good.
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(4);
  }
  if (getenv("KDB_COMMAND_TEST_FILL_FDS") != nullptr) {  // at the descriptor limit, as a server under load
    rlimit lim{128, 128};
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) _exit(3);
    while (open("/dev/null", O_RDONLY | O_CLOEXEC) >= 0) {
    }
  }
  printf("ready holder=%d waiter=%d\n", g_holder_tid.load(), g_waiter_tid.load());
  fflush(stdout);
  char c;
  while (read(0, &c, 1) != 0) {
  }
  g_table.unlock();
  waiter.join();
  printf("workload done\n");
  fflush(stdout);
}

// The workload process, with its stdin and stdout (and, if asked, its
// stderr) as pipes.
class Workload {
 public:
  explicit Workload(std::vector<std::pair<std::string, std::string>> env, bool stderr_too = false) {
    int in[2], out[2];
    EXPECT_EQ(pipe2(in, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      if (stderr_too) dup2(out[1], 2);
      setenv("KDB_COMMAND_TEST_WORKLOAD", "1", 1);
      setenv("PANICSTOP_CORE_LIMIT", "ignore", 1);  // a core is expected wherever ulimit -c is 0
      for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), 1);
      execl("/proc/self/exe", "kdb_command_workload", "--gtest_also_run_disabled_tests",
            "--gtest_filter=KdbCommandWorkload.DISABLED_Serve", nullptr);
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
  }
  ~Workload() {
    if (stdin_ >= 0) close(stdin_);
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(stdout_);
  }
  pid_t pid() const { return pid_; }
  std::string pid_text() const { return std::to_string(pid_); }

  // Reads stdout until `marker` or the deadline; returns what was read.
  std::string read_until(const std::string& marker, int deadline_ms = 10000) {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms);
    while (output_.find(marker) == std::string::npos) {
      int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now()).count());
      pollfd p{stdout_, POLLIN, 0};
      if (left <= 0 || poll(&p, 1, left) <= 0) break;
      char buf[4096];
      ssize_t n = read(stdout_, buf, sizeof buf);
      if (n <= 0) break;
      output_.append(buf, size_t(n));
    }
    return output_;
  }
  bool ready() {
    std::smatch m;
    std::string text = read_until("ready ");
    read_until("\n", 1000);
    if (!std::regex_search(output_, m, std::regex(R"(ready holder=(\d+) waiter=(\d+)\n)"))) return false;
    holder_ = std::stoi(m[1]);
    waiter_ = std::stoi(m[2]);
    return true;
  }
  // Ends stdin: the workload releases its lock and exits. True if it then
  // finished its work normally (its threads ran on after the sessions).
  bool finish() {
    close(stdin_);
    stdin_ = -1;
    bool done = read_until("workload done").find("workload done") != std::string::npos;
    int status = 0;
    waitpid(pid_, &status, 0);
    reaped_ = true;
    return done && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  int holder() const { return holder_; }
  int waiter() const { return waiter_; }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1, stdout_ = -1;
  bool reaped_ = false;
  std::string output_;
  int holder_ = 0, waiter_ = 0;
};

testing::ChildOptions deadline() { return testing::with_env({}, 20000); }

TEST(KdbCommand, ScriptPrintsTheTranscriptAndTheProcessGoesOn) {
  TempDir dir;
  Workload w({{"PANICSTOP_KDB_SOCKET", dir.path()}});
  ASSERT_TRUE(w.ready()) << w.read_until("never", 0);
  ChildResult r = run_command({kTool, "kdb", w.pid_text(), "-c", "threads", "-c", "locks", "-c",
                               "bt " + std::to_string(w.waiter())},
                              deadline());
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("kdb> threads\n2 threads"), std::string::npos) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex("\\n  " + std::to_string(w.waiter()) +
                                                     R"( +kdb-waiter +\[stopped\] \S  waiting for mutex "table" \(0x[0-9a-f]+\) held by thread )" +
                                                     std::to_string(w.holder()))))
      << r.output;
  EXPECT_NE(r.output.find("kdb> locks\nlocks:\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("kdb> bt " + std::to_string(w.waiter()) + "\nthread " + std::to_string(w.waiter()) +
                          " (kdb-waiter) [stopped]"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("kdb> continue\ncontinuing\n"), std::string::npos) << r.output;
  EXPECT_TRUE(w.finish());
}

TEST(KdbCommand, InteractiveRelaysStdinAndEndOfInputContinues) {
  TempDir dir;
  Workload w({{"PANICSTOP_KDB_SOCKET", dir.path()}});
  ASSERT_TRUE(w.ready());
  ChildResult r = testing::run_in_child(
      [&] {
        int p[2];
        if (pipe(p) != 0) _exit(90);
        static const char kInput[] = "threads\n";
        if (write(p[1], kInput, sizeof kInput - 1) < 0) _exit(91);
        close(p[1]);
        dup2(p[0], 0);
        execl(kTool.c_str(), "panicstop", "kdb", w.pid_text().c_str(), nullptr);
        _exit(127);
      },
      deadline());
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("kdb-waiter"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("kdb> continuing\n"), std::string::npos) << r.output;
  EXPECT_TRUE(w.finish());
}

TEST(KdbCommand, DumpWritesATextReportAndACoreThatShowReads) {
  TempDir dir;
  Workload w({{"PANICSTOP_KDB_SOCKET", dir.path()}});
  ASSERT_TRUE(w.ready());
  std::string out = dir.path() + "/dumps";
  std::filesystem::create_directory(out);
  // A relative --dir is made absolute by the command, not by the process.
  testing::ChildOptions options = deadline();
  options.cwd = dir.path();
  ChildResult r = run_command({kTool, "dump", w.pid_text(), "--dir", "dumps"}, options);
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  std::smatch txt, core;
  ASSERT_TRUE(std::regex_search(r.output, txt, std::regex("panicstop: wrote (" + out + "/panicstop-\\S+\\.txt)\\n")))
      << r.output;
  ASSERT_TRUE(std::regex_search(r.output, core, std::regex("panicstop: wrote (" + out + "/panicstop-\\S+\\.core)\\n")))
      << r.output;
  for (const std::string& file : {txt[1].str(), core[1].str()}) {
    ChildResult show = run_command({kTool, "show", file}, deadline());
    EXPECT_TRUE(show.exited && show.exit_code == 0) << file << ": " << show.describe() << "\n" << show.output;
    for (int tid : {w.pid(), w.holder(), w.waiter()})
      EXPECT_TRUE(std::regex_search(show.output, std::regex("thread " + std::to_string(tid) + "\\b")))
          << file << " lacks thread " << tid << "\n" << show.output.substr(0, 3000);
  }
  EXPECT_TRUE(w.finish());
}

// --- errors: one line, exit 1 ------------------------------------------------

void expect_failure(const ChildResult& r, const std::string& message) {
  EXPECT_TRUE(r.exited && r.exit_code == 1) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find(message), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

TEST(KdbCommand, NoSuchProcess) {
  for (const char* command : {"kdb", "dump"})
    expect_failure(run_command({kTool, command, "999999999"}, deadline()), "no process with pid 999999999");
}

TEST(KdbCommand, AProcessWithoutPanicstop) {
  // The tool must see sleep, not this test (which links panicstop) between
  // fork and exec: a close-on-exec pipe ends at the exec.
  int execed[2];
  ASSERT_EQ(pipe2(execed, O_CLOEXEC), 0);
  pid_t sleeper = fork();
  if (sleeper == 0) {
    execlp("sleep", "sleep", "30", nullptr);
    _exit(127);
  }
  close(execed[1]);
  char c;
  while (read(execed[0], &c, 1) > 0) {
  }
  close(execed[0]);
  for (const char* command : {"kdb", "dump"})
    expect_failure(run_command({kTool, command, std::to_string(sleeper)}, deadline()),
                   "process " + std::to_string(sleeper) + " does not run panicstop: no libpanicstop in /proc/" +
                       std::to_string(sleeper) + "/maps, none linked into its executable, and no socket at ");
  kill(sleeper, SIGKILL);
  waitpid(sleeper, nullptr, 0);
}

TEST(KdbCommand, ControlSocketTurnedOff) {
  Workload w({{std::string("PANICSTOP_KDB_SOCKET"), std::string("0")}});
  ASSERT_TRUE(w.ready());
  expect_failure(run_command({kTool, "kdb", w.pid_text(), "-c", "threads"}, deadline()),
                 "turned its control socket off (PANICSTOP_KDB_SOCKET=0)");
  EXPECT_TRUE(w.finish());
}

TEST(KdbCommand, AProcessBuiltWithPanicstopButWithoutItsSocket) {
  TempDir dir;
  Workload w({{"PANICSTOP_KDB_SOCKET", dir.path()}});
  ASSERT_TRUE(w.ready());
  std::string socket = dir.path() + "/" + w.pid_text() + ".sock";
  ASSERT_EQ(unlink(socket.c_str()), 0);  // as if it lived in a directory the command does not know
  expect_failure(run_command({kTool, "dump", w.pid_text()}, deadline()),
                 "process " + w.pid_text() + " is built with panicstop (linked statically) but has no socket at " +
                     socket + ": its socket is off");
  EXPECT_TRUE(w.finish());
}

TEST(KdbCommand, AProcessWhoseThreadsAllBlockTheConnectionSignal) {
  TempDir dir;
  Workload w({{"PANICSTOP_KDB_SOCKET", dir.path()}, {"KDB_COMMAND_TEST_BLOCK_ALL", "1"}});
  ASSERT_TRUE(w.ready());
  expect_failure(run_command({kTool, "dump", w.pid_text(), "--dir", dir.path(), "--timeout", "0.3"}, deadline()),
                 "did not answer within 0.3 s: every thread blocks SIGRTMAX-5");
  EXPECT_TRUE(w.finish());
}

// A process at its descriptor limit, the one an operator most wants to look
// into: the live dump's own reserve accepts the connection and writes the
// dumps, and is back in place afterwards, for a second dump and for nothing
// of the program's.
TEST(KdbCommand, AProcessAtItsDescriptorLimit) {
  TempDir dir;
  Workload w({{"PANICSTOP_KDB_SOCKET", dir.path()}, {"KDB_COMMAND_TEST_FILL_FDS", "1"}});
  ASSERT_TRUE(w.ready());
  auto open_fds = [&] {
    auto fds = std::filesystem::directory_iterator("/proc/" + w.pid_text() + "/fd");
    return std::distance(begin(fds), end(fds));
  };
  const auto before = open_fds();
  for (int round = 1; round <= 2; ++round) {
    TempDir dumps;
    ChildResult r = run_command({kTool, "dump", w.pid_text(), "--dir", dumps.path()}, deadline());
    EXPECT_TRUE(r.exited && r.exit_code == 0) << round << ": " << r.describe() << r.output;
    EXPECT_FALSE(dumps.file_ending(".txt").empty()) << round << ": " << r.output;
    EXPECT_EQ(open_fds(), before) << round << ": the reserve is taken back, no more and no less";
  }
  EXPECT_TRUE(w.finish());
}

TEST(KdbCommand, AStoppedProcess) {
  TempDir dir;
  Workload w({{"PANICSTOP_KDB_SOCKET", dir.path()}});
  ASSERT_TRUE(w.ready());
  ASSERT_EQ(kill(w.pid(), SIGSTOP), 0);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto state = [&] {
    std::string stat = testing::read_file("/proc/" + w.pid_text() + "/stat");
    size_t close = stat.rfind(')');
    return close != std::string::npos && close + 2 < stat.size() ? stat[close + 2] : '?';
  };
  while (state() != 'T' && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  expect_failure(run_command({kTool, "dump", w.pid_text(), "--dir", dir.path(), "--timeout", "0.3"}, deadline()),
                 "did not answer within 0.3 s: it is stopped (state T");
  kill(w.pid(), SIGCONT);  // it then serves the request the command gave up on
  EXPECT_TRUE(w.finish());
}

TEST(KdbCommand, AnotherUsersProcessIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch to another user (uid 65534)";
  TempDir dir;
  Workload w({{"PANICSTOP_KDB_SOCKET", dir.path()}});
  ASSERT_TRUE(w.ready());
  auto as_nobody = [&](std::vector<std::string> args) {
    return testing::run_in_child(
        [&] {
          // Opened while still root: the build tree may sit below a directory
          // nobody cannot enter (a 0700 mktemp directory), and that is not
          // what this test is about.
          int tool = open(kTool.c_str(), O_RDONLY | O_CLOEXEC);
          if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(90);
          std::vector<char*> argv;
          for (std::string& a : args) {
            if (a == "SELF") a = std::to_string(getpid());  // a process of nobody's own
            argv.push_back(a.data());
          }
          argv.push_back(nullptr);
          fexecve(tool, argv.data(), environ);
          _exit(127);
        },
        deadline());
  };
  expect_failure(as_nobody({"panicstop", "kdb", w.pid_text(), "-c", "threads"}),
                 "process " + w.pid_text() + " belongs to uid 0; run as that user or root");
  expect_failure(as_nobody({"panicstop", "dump", w.pid_text()}), "belongs to uid 0; run as that user or root");
  // Pointed at the socket itself (past the command's own check), the socket's
  // mode refuses the connection.
  std::string socket = dir.path() + "/" + w.pid_text() + ".sock";
  chmod(dir.path().c_str(), 0755);  // let nobody reach the socket file itself
  expect_failure(as_nobody({"panicstop", "kdb", "SELF", "--socket", socket}), "permission denied");
  EXPECT_TRUE(w.finish());
}

// A server started as root whose process then became another user: its
// socket stays in root's directory, and the dump directory root names is
// one that user can neither reach nor write (a mkdtemp directory, 0700 root).
TEST(KdbCommand, RootReachesAProcessThatDroppedRootAndGetsItsLiveDumpWhereItAsked) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to start a process that becomes another user (uid 65534)";
  TempDir dir;
  Workload w({{"KDB_COMMAND_TEST_BECOME_NOBODY", "1"}, {"PANICSTOP_KDB_SOCKET", "1"}}, true);
  ASSERT_TRUE(w.ready()) << w.read_until("never", 0);
  ChildResult kdb = run_command({kTool, "kdb", w.pid_text(), "-c", "threads"}, deadline());
  EXPECT_TRUE(kdb.exited && kdb.exit_code == 0) << kdb.describe() << "\n" << kdb.output;
  EXPECT_NE(kdb.output.find("kdb> threads\n2 threads"), std::string::npos) << kdb.output;

  ChildResult r = run_command({kTool, "dump", w.pid_text(), "--dir", dir.path()}, deadline());
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  std::smatch txt;
  ASSERT_TRUE(std::regex_search(r.output, txt, std::regex("panicstop: wrote (" + dir.path() + "/panicstop-\\S+\\.txt)\n")))
      << r.output;
  EXPECT_EQ(r.output.find("/tmp/panicstop-kdb_command"), std::string::npos) << "fell back to /tmp:\n" << r.output;
  // Only the announced files are left: the directory made for the process is gone.
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    ++files;
    struct stat st {};
    ASSERT_EQ(stat(entry.path().c_str(), &st), 0);
    EXPECT_TRUE(st.st_uid == 0 && S_ISREG(st.st_mode)) << entry.path() << " uid " << st.st_uid;
    EXPECT_NE(r.output.find("panicstop: wrote " + entry.path().string() + "\n"), std::string::npos) << entry.path();
  }
  EXPECT_GE(files, 1u);
  // The process's own stderr names the files where they are now, not the
  // directory made for it (gone by now).
  std::string said = w.read_until("panicstop: wrote " + txt[1].str() + "\n", 5000);
  EXPECT_NE(said.find("panicstop: wrote " + txt[1].str() + "\n"), std::string::npos) << said;
  EXPECT_EQ(said.find(".panicstop-dump-"), std::string::npos) << said;
  ChildResult show = run_command({kTool, "show", txt[1].str()}, deadline());
  for (int tid : {w.pid(), w.holder(), w.waiter()})
    EXPECT_TRUE(std::regex_search(show.output, std::regex("thread " + std::to_string(tid) + "\\b")))
        << "lacks thread " << tid << "\n" << show.output.substr(0, 3000);
  EXPECT_TRUE(w.finish());
}

// A process of another user answers root's `panicstop dump --dir DIR` with
// the names of what it wrote; root then moves those files into DIR. A
// hostile one (played here by a child that became nobody) must not get a
// file of its own into DIR under another name than a dump's, nor over a
// file DIR has.
std::string read_text(const std::string& path) { return testing::read_file(path); }

void serve_hostile_dump(int listener, const std::string& dir) {
  int conn = accept(listener, nullptr, nullptr);
  char line[512] = {};
  char control[CMSG_SPACE(sizeof(int))] = {};
  iovec iov{line, sizeof line - 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  if (conn < 0 || recvmsg(conn, &msg, 0) <= 0) _exit(4);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (c == nullptr || c->cmsg_type != SCM_RIGHTS) _exit(5);
  int staging = 0;
  memcpy(&staging, CMSG_DATA(c), sizeof staging);
  for (const char* name : {"victim", "panicstop-kept.txt", "panicstop-fake.txt"}) {
    int fd = openat(staging, name, O_CREAT | O_WRONLY | O_EXCL, 0644);
    if (fd < 0 || write(fd, "evil\n", 5) != 5) _exit(6);
    close(fd);
  }
  std::string answer = "panicstop: wrote " + dir + "/victim\npanicstop: wrote " + dir +
                       "/panicstop-kept.txt\npanicstop: wrote " + dir + "/panicstop-fake.txt\nok 3\n";
  if (write(conn, answer.data(), answer.size()) != ssize_t(answer.size())) _exit(7);
  close(conn);
  _exit(0);
}

TEST(KdbCommand, RootMovesOnlyDumpsOfAnotherUsersProcessAndNeverOverAFile) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to start a process that becomes another user (uid 65534)";
  TempDir dir, sockets;
  ASSERT_EQ(chmod(sockets.path().c_str(), 0777), 0);
  for (const char* name : {"victim", "panicstop-kept.txt"}) {
    int fd = open((dir.path() + "/" + name).c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_EQ(write(fd, "root's\n", 7), 7);
    close(fd);
  }
  std::string path = sockets.path() + "/hostile.sock";
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  if (child == 0) {
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(2);
    int listener = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    strcpy(addr.sun_path, path.c_str());
    if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listener, 1) != 0) _exit(3);
    if (write(ready[1], "r", 1) != 1) _exit(3);
    serve_hostile_dump(listener, dir.path());
  }
  char byte = 0;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  ChildResult r = run_command({kTool, "dump", std::to_string(child), "--dir", dir.path(), "--socket", path}, deadline());
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the hostile process: status " << status;
  EXPECT_EQ(read_text(dir.path() + "/victim"), "root's\n") << r.output;
  EXPECT_EQ(read_text(dir.path() + "/panicstop-kept.txt"), "root's\n") << r.output;
  EXPECT_NE(r.output.find("/victim (left in "), std::string::npos) << r.output;
  // A dump's name that DIR has is taken by the next free number.
  EXPECT_NE(r.output.find("panicstop: wrote " + dir.path() + "/panicstop-kept-2.txt\n"), std::string::npos)
      << r.output;
  EXPECT_EQ(read_text(dir.path() + "/panicstop-kept-2.txt"), "evil\n") << r.output;
  EXPECT_EQ(read_text(dir.path() + "/panicstop-fake.txt"), "evil\n") << r.output;
  struct stat st {};
  ASSERT_EQ(stat((dir.path() + "/panicstop-fake.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u) << "the one who asked owns the dump";
}

TEST(KdbCommand, AMissingDumpDirectoryIsSaidHere) {
  TempDir dir;
  Workload w({{"PANICSTOP_KDB_SOCKET", dir.path()}});
  ASSERT_TRUE(w.ready());
  expect_failure(run_command({kTool, "dump", w.pid_text(), "--dir", dir.path() + "/missing"}, deadline()),
                 "panicstop: cannot open the dump directory " + dir.path() + "/missing: No such file or directory");
  EXPECT_TRUE(w.finish());
}

TEST(KdbCommand, StaleSocketIsConnectionRefused) {
  TempDir dir;
  std::string path = dir.path() + "/stale.sock";
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strcpy(addr.sun_path, path.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  close(fd);  // the file stays; nobody listens
  expect_failure(run_command({kTool, "kdb", std::to_string(getpid()), "--socket", path}, deadline()),
                 "connection refused (a stale socket");
}

TEST(KdbCommand, SilentProcessTimesOut) {
  TempDir dir;
  std::string path = dir.path() + "/silent.sock";
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strcpy(addr.sun_path, path.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 4), 0);  // connections queue; nobody answers
  expect_failure(run_command({kTool, "dump", std::to_string(getpid()), "--socket", path, "--timeout", "0.3"}, deadline()),
                 "did not answer within 0.3 s");
  close(fd);
}

TEST(KdbCommand, UsageErrorsAndHelp) {
  for (std::vector<std::string> args : {std::vector<std::string>{"kdb"}, {"dump", "abc"}, {"kdb", "1", "-c"},
                                        {"dump", "1", "--timeout", "0"}, {"kdb", "1", "--frob"}}) {
    args.insert(args.begin(), kTool);
    ChildResult r = run_command(args, deadline());
    EXPECT_TRUE(r.exited && r.exit_code == 2) << args[1] << ": " << r.describe() << "\n" << r.output;
  }
  for (const char* command : {"kdb", "dump"}) {
    ChildResult r = run_command({kTool, "help", command}, deadline());
    EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
    for (const char* topic : {"/tmp/panicstop-UID", "PANICSTOP_KDB_SOCKET", "Exit status", "belong to you", "Examples"})
      EXPECT_NE(r.output.find(topic), std::string::npos) << command << " help lacks " << topic << "\n" << r.output;
  }
}

}  // namespace
}  // namespace panicstop
