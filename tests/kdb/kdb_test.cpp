// kdb_enter(), live_dump(), their triggers and the control socket, each in a
// child process with a deadline: a session that never resumes a thread hangs
// the child, and the hang is the failure.
#include "panicstop/kdb.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "kdb/control_socket.hpp"
#include "kdb/workload.hpp"
#include "panicstop/panic.hpp"
#include "support/child_process.hpp"
#include "support/reports.hpp"
#include "sys/private_dir.hpp"

namespace panicstop {
namespace {

using testing::run_in_child;
using testing::say;
using testing::control_request;
using testing::SelfCheckingWorkload;
using testing::TempDir;
using testing::with_env;

// The mask as the kernel keeps it (64 signals); the rest of a sigset_t is
// not written by pthread_sigmask.
uint64_t mask_bits(const sigset_t& set) {
  uint64_t bits = 0;
  for (int sig = 1; sig <= 64; ++sig)
    if (sigismember(&set, sig) == 1) bits |= uint64_t(1) << (sig - 1);
  return bits;
}

uint64_t current_mask() {
  sigset_t set;
  sigemptyset(&set);
  pthread_sigmask(SIG_SETMASK, nullptr, &set);
  return mask_bits(set);
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

size_t lines_starting(const std::string& text, const std::string& prefix) {
  size_t n = text.compare(0, prefix.size(), prefix) == 0 ? 1 : 0;
  return n + count_of(text, "\n" + prefix);
}

TEST(Kdb, LiveDumpWritesTheDumpsAndTheProcessGoesOn) {
  TempDir dir;
  auto r = run_in_child(
      [&] {
        install();
        SelfCheckingWorkload work(8);
        int written = live_dump(dir.path().c_str());
        work.wait_until_all_progress();
        say("written=" + std::to_string(written) + " balanced=" + std::to_string(work.books_balance()));
      },
      with_env({{"PANICSTOP_DUMP", "text,core"}}));
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  EXPECT_NE(r.output.find("written=2 balanced=1"), std::string::npos) << r.output;
  EXPECT_EQ(count_of(r.output, "panicstop: wrote "), 2u) << r.output;
  std::string text = testing::read_file(dir.file_ending(".txt"));
  EXPECT_EQ(text.rfind("panic: (none) live dump: live_dump()", 0), 0u) << text.substr(0, 200);
  // main (dumping) and eight workers (stopped), every one with a stack.
  EXPECT_EQ(lines_starting(text, "thread "), 9u) << text;
  EXPECT_EQ(count_of(text, "[stopped]"), 8u) << text;
  EXPECT_EQ(count_of(text, "[dumping]"), 1u) << text;
  EXPECT_NE(text.find("9 threads: 8 stopped, 0 not stopped"), std::string::npos) << text;
  EXPECT_FALSE(dir.file_ending(".core").empty());
}

TEST(Kdb, KdbEnterWritesTheReportAndResumesEveryThread) {
  TempDir dir;
  std::string report = dir.path() + "/kdb.txt";
  auto r = run_in_child(
      [&] {
        install();
        SelfCheckingWorkload work(6);
        KdbResult first = kdb_enter("checking the books");
        work.wait_until_all_progress();
        KdbResult second = kdb_enter(nullptr);
        work.wait_until_all_progress();
        say("results=" + std::to_string(int(first)) + "," + std::to_string(int(second)) +
            " balanced=" + std::to_string(work.books_balance()) + " active=" + std::to_string(kdb_active()));
      },
      with_env({{"PANICSTOP_KDB_OUTPUT", report}}));
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_NE(r.output.find("results=0,0 balanced=1 active=0"), std::string::npos) << r.output;
  std::string text = testing::read_file(report);
  EXPECT_EQ(count_of(text, "panic: (none) kdb: checking the books\n"), 1u) << text.substr(0, 300);
  EXPECT_EQ(count_of(text, "panic: (none) kdb: kdb_enter\n"), 1u);
  EXPECT_EQ(count_of(text, "7 threads: 6 stopped, 0 not stopped"), 2u) << text;
  EXPECT_EQ(count_of(text, "(worker-00) [stopped]"), 2u) << text;
  // The caller's own stack, unwound through the session to the test body.
  EXPECT_NE(text.find("kdb_enter"), std::string::npos) << text;
}

TEST(Kdb, TheConfiguredSignalEntersKdb) {
  TempDir dir;
  std::string report = dir.path() + "/kdb.txt";
  auto r = run_in_child(
      [&] {
        install();
        SelfCheckingWorkload work(4);
        raise(SIGUSR2);  // delivered to this thread before raise() returns
        work.wait_until_all_progress();
        say("balanced=" + std::to_string(work.books_balance()));
      },
      with_env({{"PANICSTOP_KDB_SIGNAL", "SIGUSR2"}, {"PANICSTOP_KDB_OUTPUT", report}}));
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  EXPECT_NE(r.output.find("balanced=1"), std::string::npos) << r.output;
  std::string text = testing::read_file(report);
  EXPECT_EQ(text.rfind("panic: (none) kdb: SIGUSR2 received\n", 0), 0u) << text.substr(0, 200);
  // The dumping thread's stack runs from the handler through the signal
  // frame into the code the signal interrupted.
  size_t trampoline = text.find("__restore_rt+0x0");
  EXPECT_NE(trampoline, std::string::npos) << text;
  EXPECT_LT(text.find("kdb_signal_handler"), trampoline) << text;
  EXPECT_NE(text.find("5 threads: 4 stopped"), std::string::npos) << text;
}

TEST(Kdb, ConcurrentTriggersGetOneSessionAtATime) {
  TempDir dir;
  auto r = run_in_child(
      [&] {
        install();
        SelfCheckingWorkload work(4);
        std::atomic<int> done{0}, busy{0}, files{0}, other{0};
        std::vector<std::thread> triggers;
        for (int t = 0; t < 4; ++t)
          triggers.emplace_back([&] {
            for (int i = 0; i < 25; ++i) {
              int n = live_dump(dir.path().c_str());
              if (n == 1) ++done, files += n;
              else if (n == -1) ++busy;
              else ++other;
            }
          });
        for (auto& t : triggers) t.join();
        work.wait_until_all_progress();
        say("done=" + std::to_string(done) + " busy=" + std::to_string(busy) + " other=" + std::to_string(other) +
            " files=" + std::to_string(files));
      },
      with_env({{"PANICSTOP_DUMP", "text"}}, 60000));
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  int done = -1, busy = -1, other = -1, files = -1;
  size_t at = r.output.find("done=");
  ASSERT_NE(at, std::string::npos) << r.output;
  ASSERT_EQ(sscanf(r.output.c_str() + at, "done=%d busy=%d other=%d files=%d", &done, &busy, &other, &files), 4);
  EXPECT_EQ(done + busy, 100);
  EXPECT_EQ(other, 0);
  EXPECT_GE(done, 1);
  // Every session wrote its own file: no two sessions shared a snapshot.
  EXPECT_EQ(int(dir.list().size()), files) << r.output;
}

// The stopped threads' signal masks and the process's handlers are what
// they were before the sessions.
TEST(Kdb, SignalMasksAndHandlersAreLeftAsTheyWere) {
  TempDir dir;
  auto r = run_in_child(
      [&] {
        install();
        struct sigaction before_usr1 {}, after_usr1 {};
        signal(SIGUSR1, SIG_IGN);
        sigaction(SIGUSR1, nullptr, &before_usr1);
        std::atomic<int> phase{0};
        std::atomic<bool> same_mask{false};
        std::thread odd([&] {
          sigset_t mine;
          sigemptyset(&mine);
          sigaddset(&mine, SIGHUP);
          sigaddset(&mine, SIGWINCH);
          pthread_sigmask(SIG_SETMASK, &mine, nullptr);
          uint64_t before = current_mask();
          phase.store(1);
          while (phase.load() != 2) sched_yield();  // stopped and resumed meanwhile
          same_mask.store(current_mask() == before && before == mask_bits(mine));
          phase.store(3);
        });
        while (phase.load() != 1) sched_yield();
        uint64_t main_before = current_mask();
        for (int i = 0; i < 10; ++i) live_dump(dir.path().c_str());
        uint64_t main_after = current_mask();
        sigaction(SIGUSR1, nullptr, &after_usr1);
        phase.store(2);
        while (phase.load() != 3) sched_yield();
        odd.join();
        say("worker_mask_same=" + std::to_string(same_mask.load()) +
            " main_mask_same=" + std::to_string(main_before == main_after) +
            " handler_same=" + std::to_string(after_usr1.sa_handler == before_usr1.sa_handler));
      },
      with_env({{"PANICSTOP_DUMP", "text"}}));
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_NE(r.output.find("worker_mask_same=1 main_mask_same=1 handler_same=1"), std::string::npos) << r.output;
}

TEST(Kdb, ThreadsCreatedAndExitingDuringSessionsAreHandled) {
  TempDir dir;
  auto r = run_in_child(
      [&] {
        install();
        SelfCheckingWorkload work(4);
        std::atomic<bool> quit{false};
        std::atomic<long> churned{0};
        std::thread churn([&] {
          while (!quit.load()) {
            std::thread([] {}).join();
            ++churned;
          }
        });
        int ok = 0;
        for (int i = 0; i < 100; ++i) {
          if (i % 2 == 0) ok += live_dump(dir.path().c_str()) == 1;
          else ok += kdb_enter("churn") == KdbResult::kDone;
        }
        long before = churned.load();
        while (churned.load() < before + 2) sched_yield();  // the churner was resumed
        quit.store(true);
        churn.join();
        work.wait_until_all_progress();
        say("ok=" + std::to_string(ok) + " balanced=" + std::to_string(work.books_balance()));
      },
      with_env({{"PANICSTOP_DUMP", "text"}, {"PANICSTOP_KDB_OUTPUT", "/dev/null"}}, 60000));
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_NE(r.output.find("ok=100 balanced=1"), std::string::npos) << r.output;
}

// --- the control socket, from a client thread inside the same process ---------

TEST(KdbControlSocket, ServesALiveDumpToItsOwner) {
  TempDir sockets, dumps;
  auto r = run_in_child(
      [&] {
        install();
        SelfCheckingWorkload work(4);
        std::string path = detail::control_socket_path();
        struct stat st {};
        stat(path.c_str(), &st);
        say("socket=" + path + " mode=" + std::to_string(st.st_mode & 0777));
        say("reply:\n" + control_request(path, "dump " + dumps.path()) + "end");
        say("relative:\n" + control_request(path, "dump some/where") + "end");
        say("unknown:\n" + control_request(path, "frobnicate") + "end");
        work.wait_until_all_progress();
        say("balanced=" + std::to_string(work.books_balance()));
        exit(0);  // not _exit: the socket is removed by an atexit handler
      },
      with_env({{"PANICSTOP_KDB_SOCKET", sockets.path()}}));
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  EXPECT_NE(r.output.find("socket=" + sockets.path() + "/"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(".sock mode=384"), std::string::npos) << r.output;  // 0600
  EXPECT_EQ(count_of(r.output, "panicstop: wrote " + dumps.path()), 4u) << r.output;  // stderr and the reply
  EXPECT_NE(r.output.find("\nok 2\nend"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("error the dump directory must be an absolute path"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("error unknown request 'frobnicate'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("balanced=1"), std::string::npos) << r.output;
  EXPECT_EQ(dumps.list().size(), 2u);
  // Removed when the process exited.
  EXPECT_TRUE(sockets.list().empty()) << sockets.list().front();
}

TEST(KdbControlSocket, ZeroTurnsItOffAndStaleSocketsAreRemoved) {
  TempDir sockets;
  // A socket file left by a process that no longer exists (pid 2^22 + 1 is
  // above the kernel's pid_max).
  std::string stale = sockets.path() + "/4194305.sock";
  close(open(stale.c_str(), O_CREAT | O_WRONLY, 0600));
  chmod(sockets.path().c_str(), 0700);
  int dir_fd = open(sockets.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  sys::forget_sweep(dir_fd);  // an earlier directory may have had this inode number
  close(dir_fd);
  auto off = run_in_child([&] { install(); say(std::string("path=[") + detail::control_socket_path() + "]"); },
                          with_env({{"PANICSTOP_KDB_SOCKET", "0"}}));
  EXPECT_NE(off.output.find("path=[]"), std::string::npos) << off.output;
  auto on = run_in_child(
      [&] {
        install();
        say(std::string("path=[") + detail::control_socket_path() + "]");
        exit(0);
      },
      with_env({{"PANICSTOP_KDB_SOCKET", sockets.path()}}));
  EXPECT_NE(on.output.find("path=[" + sockets.path() + "/"), std::string::npos) << on.output;
  EXPECT_TRUE(sockets.list().empty());
}

TEST(KdbControlSocket, ADirectoryOthersCanWriteIsRefused) {
  TempDir sockets;
  chmod(sockets.path().c_str(), 0777);
  auto r = run_in_child([&] { install(); say(std::string("path=[") + detail::control_socket_path() + "]"); },
                        with_env({{"PANICSTOP_KDB_SOCKET", sockets.path()}}));
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  EXPECT_NE(r.output.find("path=[]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("is not a directory private to uid"), std::string::npos) << r.output;
}

TEST(KdbTunables, BadValuesAreRejectedAtInstall) {
  const std::pair<const char*, const char*> cases[] = {
      {"PANICSTOP_KDB", "gui"},
      {"PANICSTOP_KDB_SIGNAL", "SIGSEGV"},
      {"PANICSTOP_KDB_SIGNAL", "SIGKILL"},
      {"PANICSTOP_KDB_SIGNAL", "99"},
      {"PANICSTOP_KDB_SOCKET", "relative/dir"},
      {"PANICSTOP_KDB_IDLE_MS", "soon"},
  };
  for (const auto& [name, value] : cases) {
    auto r = run_in_child([] { install(); }, with_env({{name, value}}));
    EXPECT_TRUE(r.exited && r.exit_code == 2) << name << "=" << value << ": " << r.describe();
    EXPECT_NE(r.output.find(std::string("panicstop: ") + name + "=" + value + " is not valid"), std::string::npos)
        << r.output;
  }
  auto numeric = run_in_child([] { install(); }, with_env({{"PANICSTOP_KDB_SIGNAL", "12"}}));
  EXPECT_TRUE(numeric.exited && numeric.exit_code == 0) << numeric.describe() << numeric.output;
}

}  // namespace
}  // namespace panicstop
