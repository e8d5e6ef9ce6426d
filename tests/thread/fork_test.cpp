// A child of fork() is a process of its own from its first instruction: the
// forking thread's slot carries the child's tid, the parent's other threads
// are gone from the registry, and the child listens on its own control
// socket. Daemons and prefork servers (nginx's master and workers) fork
// without exec, and their children crash and get inspected like any process.
// A child of vfork() is the opposite: it runs on its parent's memory until it
// execs, and must leave panicstop's state there alone.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>
#include <thread>

#include "kdb/control_socket.hpp"
#include "panicstop/panicstop.hpp"
#include "support/child_process.hpp"
#include "support/reports.hpp"
#include "support/seccomp.hpp"
#include "sys/syscall.hpp"
#include "thread/slot.hpp"

namespace panicstop {
namespace {

using testing::run_in_child;
using testing::say;
using testing::control_request;
using testing::thread_block;
using testing::TempDir;
using testing::with_env;

std::string only_report(const TempDir& dir) {
  std::string found;
  for (const auto& name : dir.list())
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".txt") == 0) found = dir.path() + "/" + name;
  return found.empty() ? std::string() : testing::read_file(found);
}


std::atomic<uint32_t> g_never{0};

// A parent thread that holds a lock across the fork and never lets it go.
struct ParkedHolder {
  Mutex held{"held across fork"};
  std::atomic<int> ready{0};
  std::thread thread;
  ParkedHolder() {
    thread = std::thread([this] {
      set_thread_name("parent-holder");
      held.lock();
      ready.store(1);
      for (;;) sys::futex_wait(&g_never, 0);
    });
    while (ready.load() == 0) sys::sched_yield();
    thread.detach();
  }
};

__attribute__((noinline)) void crash_in_forked_child() {
  *static_cast<volatile int*>(nullptr) = 1;
  __builtin_unreachable();
}

__attribute__((noinline)) void panic_in_forked_child() { panic("the forked child %d gives up", int(getpid())); }

// Forks, runs body in the child, and reports how the child ended.
pid_t fork_and_wait(void (*body)()) {
  pid_t child = fork();
  if (child == 0) {
    body();
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  say("child=" + std::to_string(child) + " signal=" + std::to_string(WIFSIGNALED(status) ? WTERMSIG(status) : 0));
  return child;
}

void expect_child_crash_shown(const testing::ChildResult& r, const TempDir& crash, int signo, const char* function) {
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  size_t at = r.output.find("child=");
  ASSERT_NE(at, std::string::npos) << r.output;
  int child = 0, sig = 0;
  ASSERT_EQ(sscanf(r.output.c_str() + at, "child=%d signal=%d", &child, &sig), 2) << r.output;
  EXPECT_EQ(sig, signo) << r.output;
  std::string report = only_report(crash);
  ASSERT_FALSE(report.empty()) << r.output;
  EXPECT_NE(report.find("\npanicking thread " + std::to_string(child) + " "), std::string::npos) << report;
  std::string block = thread_block(report, child);
  EXPECT_NE(block.find("[panicking]"), std::string::npos) << report;
  EXPECT_NE(block.find(function), std::string::npos) << report;
  EXPECT_EQ(block.find("(no frames)"), std::string::npos) << report;
  // The child has one thread: the parent's are not in its report.
  EXPECT_NE(report.find("\n1 threads: "), std::string::npos) << report;
  EXPECT_EQ(report.find("parent-holder"), std::string::npos) << report;
}

TEST(Fork, AChildForkedAfterALiveDumpShowsItsCrashingThread) {
  TempDir live, crash;
  auto r = run_in_child(
      [&] {
        install();
        set_thread_name("forker");
        ParkedHolder holder;
        if (live_dump(live.path().c_str()) != 1) say("live dump failed");
        fork_and_wait(crash_in_forked_child);
      },
      with_env({{"PANICSTOP_DUMP", "text"}, {"PANICSTOP_DUMP_DIR", crash.path()}, {"PANICSTOP_KDB_SOCKET", "0"}}));
  expect_child_crash_shown(r, crash, SIGSEGV, "crash_in_forked_child");
  EXPECT_EQ(r.output.find("live dump failed"), std::string::npos) << r.output;
}

// Forks with a raw clone() (no fork handlers run, as in the sandboxes that
// make their processes so), runs body in the child, and reports how the
// child ended.
pid_t raw_fork_and_wait(void (*body)()) {
  long child = sys::raw_syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (child == 0) {
    body();
    _exit(0);
  }
  int status = 0;
  waitpid(pid_t(child), &status, 0);
  say("child=" + std::to_string(child) + " signal=" + std::to_string(WIFSIGNALED(status) ? WTERMSIG(status) : 0));
  return pid_t(child);
}

// A child with memory of its own is a process of its own, fork handlers or
// not: its crash gets its dump, also where a sandbox refuses kcmp (Docker's
// default seccomp profile), which once made it a vfork() child that died
// with one line and no dump.
void expect_raw_clone_child_crash_shown(bool refuse_kcmp) {
  TempDir crash;
  auto r = run_in_child(
      [&] {
        install();
        set_thread_name("forker");
        ParkedHolder holder;
        if (refuse_kcmp && !testing::refuse_system_call(SYS_kcmp)) _exit(3);
        raw_fork_and_wait(crash_in_forked_child);
      },
      with_env({{"PANICSTOP_DUMP", "text"}, {"PANICSTOP_DUMP_DIR", crash.path()}, {"PANICSTOP_KDB_SOCKET", "0"}}));
  EXPECT_EQ(r.output.find("vfork() child"), std::string::npos) << r.output;
  expect_child_crash_shown(r, crash, SIGSEGV, "crash_in_forked_child");
}

TEST(Fork, AChildOfARawCloneCrashesAsAProcessOfItsOwn) { expect_raw_clone_child_crash_shown(false); }

TEST(Fork, AChildOfARawCloneCrashesAsAProcessOfItsOwnWhereKcmpIsRefused) {
  if (!testing::sandbox_available()) GTEST_SKIP() << "no seccomp filter can be set here";
  expect_raw_clone_child_crash_shown(true);
}

TEST(Fork, AChildOfAProgramThatUsesTheLibraryPanicsWithItsOwnFrames) {
  TempDir crash;
  auto r = run_in_child(
      [&] {
        install();
        set_thread_name("forker");
        Mutex mine{"mine"};
        mine.lock();  // the forking thread's own lock stays its own in the child
        ParkedHolder holder;
        static ParkedHolder* parked = &holder;
        static Mutex* own = &mine;
        fork_and_wait([] {
          // A new thread of the child must not take the parent holder's slot
          // and believe it owns its lock.
          bool taken = true;
          std::thread([&] { taken = parked->held.try_lock(); }).join();
          if (taken) say("a child thread took the parent holder's lock");
          if (!own->owned()) say("the forking thread lost its own lock");
          panic_in_forked_child();
        });
      },
      with_env({{"PANICSTOP_DUMP", "text"}, {"PANICSTOP_DUMP_DIR", crash.path()}, {"PANICSTOP_KDB_SOCKET", "0"}}));
  expect_child_crash_shown(r, crash, SIGABRT, "panic_in_forked_child");
  EXPECT_EQ(r.output.find("a child thread took"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("lost its own lock"), std::string::npos) << r.output;
}

// A program that uses the library's locks and never calls install() forks
// too: the thread layer's fork handler is registered when the library loads,
// so the child still has one live slot, the forking thread's, under the
// child's tid.
TEST(Fork, AChildOfAProgramThatNeverInstalledKeepsOnlyItsOwnSlot) {
  auto r = run_in_child([] {
    Mutex mine{"mine"};
    mine.lock();  // the forking thread's slot
    mine.unlock();
    new ParkedHolder;  // a thread of the parent with a slot of its own; its lock stays held
    int status = testing::run_in_fork_child([] {
      if (detail::live_slot_count() != 1) _exit(3);
      if (detail::current_slot()->tid.load() != sys::gettid()) _exit(4);
    });
    say("child status=" + std::to_string(status));
  });
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  EXPECT_NE(r.output.find("child status=0\n"), std::string::npos) << r.output;
}

// --- the control socket -------------------------------------------------------

bool is_socket(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600;
}

// The report a dump request wrote, from its "panicstop: wrote PATH" line.
std::string report_of(const std::string& reply) {
  size_t at = reply.find("panicstop: wrote ");
  if (at == std::string::npos) return "";
  size_t end = reply.find('\n', at);
  return testing::read_file(reply.substr(at + 17, end - at - 17));
}

TEST(Fork, TheChildListensOnItsOwnSocketAndTheParentKeepsItsOwn) {
  TempDir sockets, dumps;
  auto r = run_in_child(
      [&] {
        install();
        // A second thread serves the parent's requests while main asks.
        std::thread server([] {
          for (;;) sys::futex_wait(&g_never, 0);
        });
        server.detach();
        int to_child[2], from_child[2];
        if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0) _exit(90);
        pid_t child = fork();
        if (child == 0) {
          close(to_child[1]);
          close(from_child[0]);
          char c = 'r';
          if (write(from_child[1], &c, 1) != 1) _exit(91);
          // Requests are served on this thread, between reads (SA_RESTART).
          while (read(to_child[0], &c, 1) != 0) {
          }
          exit(0);  // not _exit: the atexit handler removes the child's socket
        }
        close(to_child[0]);
        close(from_child[1]);
        char c;
        if (read(from_child[0], &c, 1) != 1) say("the child did not start");
        std::string parent_path = sockets.path() + "/" + std::to_string(getpid()) + ".sock";
        std::string child_path = sockets.path() + "/" + std::to_string(child) + ".sock";
        say("child socket=" + std::to_string(is_socket(child_path)));
        std::string reply = control_request(child_path, "dump " + dumps.path());
        say("child reply:\n" + reply + "end");
        std::string text = report_of(reply);
        auto names = [](const std::string& report, int pid) {
          return std::to_string(report.find("\nprocess " + std::to_string(pid) + " ") != std::string::npos);
        };
        say("child report pid=" + names(text, child));
        close(to_child[1]);
        int status = 0;
        waitpid(child, &status, 0);
        say("child exit=" + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1));
        say("after child: child socket=" + std::to_string(access(child_path.c_str(), F_OK) == 0) +
            " parent socket=" + std::to_string(is_socket(parent_path)));
        reply = control_request(parent_path, "dump " + dumps.path());
        say("parent reply:\n" + reply + "end");
        text = report_of(reply);
        say("parent report pid=" + names(text, getpid()));
        exit(0);
      },
      with_env({{"PANICSTOP_KDB_SOCKET", sockets.path()}, {"PANICSTOP_DUMP", "text"}}));
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  EXPECT_NE(r.output.find("child socket=1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("child reply:\npanicstop: wrote "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("child report pid=1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("child exit=0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("after child: child socket=0 parent socket=1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("parent reply:\npanicstop: wrote "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("parent report pid=1"), std::string::npos) << r.output;
  EXPECT_EQ(dumps.list().size(), 2u) << r.output;
  EXPECT_TRUE(sockets.list().empty()) << r.output;
}

// --- vfork(): a child on its parent's memory -------------------------------------

// vfork()s, runs body in the child (on this process's memory until it execs
// or exits), and returns how the child ended: its exit status, or 128 + the
// signal that ended it.
int vfork_and_wait(void (*body)()) {
  pid_t child = vfork();
  if (child == 0) {
    body();
    _exit(0);
  }
  int status = 0;
  if (child < 0 || waitpid(child, &status, 0) != child) return -1;
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

// A crash in the child of vfork() must neither take the parent's panic state
// (the parent's own panic then waited for good) nor write a report through
// the parent's memory: the child dies of its signal and says why, and the
// parent's panic afterwards is whole.
void expect_vfork_child_crash_left_to_the_kernel(bool refuse_kcmp) {
  TempDir crash;
  auto r = run_in_child(
      [&] {
        install();
        ParkedHolder holder;
        if (refuse_kcmp && !testing::refuse_system_call(SYS_kcmp)) _exit(3);
        say("vfork child=" + std::to_string(vfork_and_wait(crash_in_forked_child)));
        panic("the parent panics after its vfork child crashed");
      },
      with_env({{"PANICSTOP_DUMP", "text"}, {"PANICSTOP_DUMP_DIR", crash.path()}, {"PANICSTOP_KDB_SOCKET", "0"}}));
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << r.output;
  EXPECT_NE(r.output.find("vfork child=" + std::to_string(128 + SIGSEGV) + "\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(" is a vfork() child of process "), std::string::npos) << r.output;
  ASSERT_EQ(crash.list().size(), 1u) << r.output;  // the parent's report alone
  std::string report = only_report(crash);
  EXPECT_NE(report.find("panic: the parent panics after its vfork child crashed"), std::string::npos) << report;
  EXPECT_NE(report.find("\n2 threads: 1 stopped, 0 not stopped"), std::string::npos) << report;
}

TEST(Vfork, AChildThatCrashesDiesOfItsSignalAndTheParentsPanicStaysWhole) {
  expect_vfork_child_crash_left_to_the_kernel(false);
}

// Told by the memory it shares, without the kernel's kcmp.
TEST(Vfork, AChildThatCrashesIsToldWhereKcmpIsRefused) {
  if (!testing::sandbox_available()) GTEST_SKIP() << "no seccomp filter can be set here";
  expect_vfork_child_crash_left_to_the_kernel(true);
}

void program_segv_handler(int) {}

// CPython's subprocess resets every handler to SIG_DFL in its vfork() child
// before the exec. That changes the child's own signal actions, which the
// kernel gave it as a copy; the parent's records of the program's actions,
// in the memory the child shares, stay as they were.
TEST(Vfork, AChildThatResetsAHandlerChangesItsOwnActionNotTheParents) {
  auto r = run_in_child([] {
    install();
    struct sigaction mine {};
    mine.sa_handler = program_segv_handler;
    sigaction(SIGSEGV, &mine, nullptr);
    int child = vfork_and_wait([] {
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      if (sigaction(SIGSEGV, &dfl, nullptr) != 0) _exit(2);
      _exit(testing::kernel_handler(SIGSEGV) == nullptr ? 0 : 4);  // SIG_DFL in the child's own table
    });
    struct sigaction seen {};
    sigaction(SIGSEGV, nullptr, &seen);
    say("vfork child=" + std::to_string(child) +
        " parent keeps its handler=" + std::to_string(seen.sa_handler == program_segv_handler));
    exit(0);
  });
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  EXPECT_NE(r.output.find("vfork child=0 parent keeps its handler=1"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace panicstop
