// The control socket's handler against clients that do not behave: silent
// ones, over-long requests. The handler runs inside one of the application's
// threads, so whatever it waits for, that thread waits for too.
#include "kdb/control_socket.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "panicstop/panic.hpp"
#include "support/child_process.hpp"
#include "support/reports.hpp"
#include "thread/program_signals.hpp"
#include "sys/syscall.hpp"
#include "thread/signal_sections.hpp"

namespace panicstop {
namespace detail {
extern int g_control_listen_fd;
}  // namespace detail
namespace {

using testing::run_in_child;
using testing::say;
using testing::TempDir;
using testing::with_env;

// Every thread but the worker blocks the connection signal, so the kernel
// can only deliver it to the worker: a handler that waits shows up as a gap
// in the worker's progress.
void block_request_signal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, detail::kdb_request_signal());
  testing::raw_sigmask(SIG_BLOCK, &set);
}

std::string read_reply(int fd) {
  std::string reply;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) reply.append(buf, size_t(n));
  return reply;
}

// Counts its iterations and keeps the longest time between two of them.
class ProgressWorker {
 public:
  ProgressWorker() : thread_([this] { run(); }) {
    while (ticks_.load() == 0) sched_yield();
  }
  ~ProgressWorker() {
    quit_.store(true);
    thread_.join();
  }
  long ticks() const { return ticks_.load(); }
  long longest_gap_ms() const { return longest_gap_ns_.load() / 1000000; }

 private:
  void run() {
    using clock = std::chrono::steady_clock;
    auto last = clock::now();
    while (!quit_.load()) {
      auto now = clock::now();
      long gap = long(std::chrono::duration_cast<std::chrono::nanoseconds>(now - last).count());
      if (gap > longest_gap_ns_.load()) longest_gap_ns_.store(gap);
      last = now;
      ticks_.fetch_add(1);
    }
  }
  std::atomic<bool> quit_{false};
  std::atomic<long> ticks_{0};
  std::atomic<long> longest_gap_ns_{0};
  std::thread thread_;
};

TEST(ControlSocket, SilentClientsDoNotHoldTheServingThread) {
  TempDir sockets, dumps;
  auto r = run_in_child(
      [&] {
        block_request_signal();  // before install's threads and the worker inherit it
        install();
        ProgressWorker* worker = nullptr;
        {
          // The worker alone takes the signal.
          sigset_t set;
          sigemptyset(&set);
          sigaddset(&set, detail::kdb_request_signal());
          testing::raw_sigmask(SIG_UNBLOCK, &set);
          worker = new ProgressWorker;
          testing::raw_sigmask(SIG_BLOCK, &set);
        }
        std::string path = detail::control_socket_path();
        std::vector<int> silent;
        for (int i = 0; i < 3; ++i) silent.push_back(testing::control_connect(path));
        auto started = std::chrono::steady_clock::now();
        int fd = testing::control_connect(path);
        std::string line = "dump " + dumps.path() + "\n";
        if (write(fd, line.data(), line.size()) != ssize_t(line.size())) say("write failed");
        std::string reply = read_reply(fd);
        close(fd);
        long dump_ms = long(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now() - started)
                                .count());
        say("dump reply:\n" + reply + "end dump_ms=" + std::to_string(dump_ms));

        // A megabyte with no newline: the writer blocks once the socket's
        // buffer is full, so it writes from a thread of its own.
        int garbage = testing::control_connect(path);
        std::thread writer([garbage] {
          std::string junk(1 << 20, 'x');
          size_t sent = 0;
          for (long n; sent < junk.size(); sent += size_t(n))
            if ((n = send(garbage, junk.data() + sent, junk.size() - sent, MSG_NOSIGNAL)) <= 0) break;
        });
        say("garbage reply:\n" + read_reply(garbage) + "end");
        writer.join();
        close(garbage);

        long ticks = worker->ticks();
        while (worker->ticks() < ticks + 1000) sched_yield();  // the worker still runs
        say("longest_gap_ms=" + std::to_string(worker->longest_gap_ms()));
        delete worker;
        for (int s : silent) close(s);
        exit(0);
      },
      with_env({{"PANICSTOP_KDB_SOCKET", sockets.path()}, {"PANICSTOP_DUMP", "text"}}, 40000));
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  EXPECT_NE(r.output.find("\nok 1\nend"), std::string::npos) << r.output;
  EXPECT_EQ(dumps.list().size(), 1u) << r.output;
  EXPECT_NE(r.output.find("garbage reply:\nerror request line too long"), std::string::npos) << r.output;
  long gap = -1, dump_ms = -1;
  size_t at = r.output.find("longest_gap_ms=");
  ASSERT_NE(at, std::string::npos) << r.output;
  sscanf(r.output.c_str() + at, "longest_gap_ms=%ld", &gap);
  at = r.output.find("dump_ms=");
  ASSERT_NE(at, std::string::npos) << r.output;
  sscanf(r.output.c_str() + at, "dump_ms=%ld", &dump_ms);
  // The dump itself stops the worker for a moment; waiting on a silent
  // client stopped it for seconds.
  EXPECT_LT(gap, 1000) << r.output;
  EXPECT_LT(dump_ms, 2000) << r.output;
}

// A client that connects and never writes is answered and let go once its
// deadline has passed, at the next connection's signal.
TEST(ControlSocket, ASilentClientIsToldWhyAndClosed) {
  TempDir sockets;
  auto r = run_in_child(
      [&] {
        install();
        std::atomic<bool> quit{false};
        std::thread worker([&] {  // takes the signals: the client threads block them
          while (!quit.load()) sched_yield();
        });
        block_request_signal();
        std::string path = detail::control_socket_path();
        int silent = testing::control_connect(path);
        auto started = std::chrono::steady_clock::now();
        // Poke the handler with fresh connections until the deadline has
        // passed and the silent one has been answered.
        std::string reply;
        for (;;) {
          int poke = testing::control_connect(path);
          if (write(poke, "frobnicate\n", 11) != 11) say("write failed");
          read_reply(poke);
          close(poke);
          pollfd p{silent, POLLIN, 0};
          if (poll(&p, 1, 100) == 1) break;
          if (std::chrono::steady_clock::now() - started > std::chrono::seconds(10)) break;
        }
        say("silent reply:\n" + read_reply(silent) + "end");
        quit.store(true);
        worker.join();
        exit(0);
      },
      with_env({{"PANICSTOP_KDB_SOCKET", sockets.path()}}));
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_NE(r.output.find("silent reply:\nerror no request line within 2 s"), std::string::npos) << r.output;
}

// `panicstop dump --dir DIR` passes DIR opened: the files are created in
// that directory, whatever the path resolves to in the process (here:
// nothing), and named by the path in the lines. Anything but a directory is
// refused with a line.
TEST(ControlSocket, TheFilesGoToTheDirectoryPassedWithTheRequest) {
  TempDir sockets, dumps;
  auto r = run_in_child(
      [&] {
        install();
        std::atomic<bool> quit{false};
        std::thread worker([&] {  // serves: the requesting thread blocks the signal
          while (!quit.load()) sched_yield();
        });
        std::string path = detail::control_socket_path();
        int dir = open(dumps.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int file = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        size_t before = std::distance(std::filesystem::directory_iterator("/proc/self/fd"), {});
        say("dir reply:\n" + testing::control_request(path, "dump /unreachable/by/path", dir) + "end");
        say("file reply:\n" + testing::control_request(path, "dump " + dumps.path(), file) + "end");
        // Nothing more is open than before: the passed copies were closed.
        size_t after = std::distance(std::filesystem::directory_iterator("/proc/self/fd"), {});
        say("open_after=" + std::to_string(after) + " open_before=" + std::to_string(before));
        quit.store(true);
        worker.join();
        exit(0);
      },
      with_env({{"PANICSTOP_KDB_SOCKET", sockets.path()}, {"PANICSTOP_DUMP", "text"}}, 20000));
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  EXPECT_NE(r.output.find("panicstop: wrote /unreachable/by/path/panicstop-"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\nok 1\nend"), std::string::npos) << r.output;
  EXPECT_EQ(dumps.list().size(), 1u) << r.output;
  EXPECT_NE(r.output.find("file reply:\nerror the descriptor passed with the request is not the directory"),
            std::string::npos)
      << r.output;
  int after = -1, before = -2;
  size_t at = r.output.find("open_after=");
  ASSERT_NE(at, std::string::npos) << r.output;
  sscanf(r.output.c_str() + at, "open_after=%d open_before=%d", &after, &before);
  EXPECT_EQ(after, before) << r.output;
}

// --- a program that closes descriptors it did not open -------------------
// Daemons close every descriptor above 2 as they start (sshd's closefrom(3)),
// which under `panicstop run` comes after install(), and then get the same
// numbers back for files of their own. The number that was the control
// socket is then the program's: panicstop must neither accept on it, nor
// close it in a forked child.

// Closes the control socket as such a program does and makes its number a
// listening TCP socket of the program's, with one client waiting in its
// backlog. Returns the number.
int reuse_the_control_sockets_number() {
  const int number = detail::g_control_listen_fd;
  if (number < 0) _exit(10);
  close(number);
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listener, 4) != 0) _exit(11);
  if (listener != number) {
    dup2(listener, number);
    close(listener);
  }
  socklen_t len = sizeof addr;
  getsockname(number, reinterpret_cast<sockaddr*>(&addr), &len);
  int client = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) _exit(12);
  return number;
}

bool is_inet_listener(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  int listening = 0;
  socklen_t optlen = sizeof listening;
  return getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 && addr.ss_family == AF_INET &&
         getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) == 0 && listening == 1;
}

TEST(ControlSocket, ARequestSignalDoesNotAcceptOnTheProgramsSocketThatReusedTheNumber) {
  TempDir dir;
  auto r = run_in_child(
      [] {
        install();
        const int number = reuse_the_control_sockets_number();
        // What the handler serves: an own request signal (as a session's end
        // sends for a request that arrived meanwhile).
        detail::send_own_signal(0, detail::kdb_request_signal());
        long accepted = accept4(number, nullptr, nullptr, SOCK_NONBLOCK);
        say(accepted >= 0 ? "the program got its client" : "the program's client is gone");
      },
      with_env({{"PANICSTOP_KDB_SOCKET", dir.path()}}, 20000));
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("the program got its client"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("panicstop: kdb control socket off: the program closed its descriptor"), std::string::npos)
      << r.output;
}

TEST(ControlSocket, AForkedChildLeavesTheProgramsSocketThatReusedTheNumber) {
  TempDir dir;
  auto r = run_in_child(
      [] {
        install();
        static int number = reuse_the_control_sockets_number();
        int status = testing::run_in_fork_child([] {
          if (!is_inet_listener(number)) _exit(3);
        });
        say("child status=" + std::to_string(status));
        say(is_inet_listener(number) ? "the parent keeps its socket" : "the parent lost its socket");
      },
      with_env({{"PANICSTOP_KDB_SOCKET", dir.path()}}, 20000));
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("child status=0\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("the parent keeps its socket"), std::string::npos) << r.output;
}

// With the user's signal queue full (RLIMIT_SIGPENDING), the kernel cannot
// queue the request signal for a connection and sends SIGIO instead, whose
// default action ended the process that was only asked for a dump (it died
// of SIGIO). The request is served, a live dump of every thread included,
// and the process goes on.
TEST(ControlSocket, AFullSignalQueueNeitherEndsTheProcessNorLosesTheRequest) {
  TempDir sockets, dumps;
  auto r = run_in_child(
      [&] {
        install();
        static std::atomic<uint32_t> never{0};
        for (int i = 0; i < 2; ++i)
          std::thread([] {
            for (;;) sys::futex_wait(&never, 0);
          }).detach();
        rlimit none{0, 0};
        if (setrlimit(RLIMIT_SIGPENDING, &none) != 0) _exit(3);
        int fd = testing::control_connect(detail::control_socket_path());
        std::string line = "dump " + dumps.path() + "\n";
        if (write(fd, line.data(), line.size()) != ssize_t(line.size())) say("write failed");
        say("reply:\n" + read_reply(fd) + "end");
        close(fd);
        exit(0);
      },
      with_env({{"PANICSTOP_KDB_SOCKET", sockets.path()}, {"PANICSTOP_DUMP", "text"}}, 20000));
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("\nok 1\nend"), std::string::npos) << r.output;
  ASSERT_EQ(dumps.list().size(), 1u) << r.output;
  std::string report = testing::read_file(dumps.path() + "/" + dumps.list()[0]);
  EXPECT_NE(report.find("3 threads: 2 stopped, 0 not stopped"), std::string::npos) << report.substr(0, 600);
}

// SIGIO stays the program's: its handler runs for its own descriptors, and
// without one the default action still ends the process, as it does
// without panicstop.
std::atomic<int> g_sigio_seen{0};
void count_sigio(int) { g_sigio_seen.fetch_add(1); }

TEST(ControlSocket, TheProgramsSigioKeepsItsHandlerAndItsDefault) {
  TempDir sockets;
  auto handled = run_in_child(
      [] {
        install();
        signal(SIGIO, count_sigio);
        int fds[2];
        if (pipe(fds) != 0) _exit(3);
        // The program's own O_ASYNC descriptor: the kernel's SIGIO, as for the
        // control socket's fallback.
        if (fcntl(fds[0], F_SETOWN, getpid()) != 0 || fcntl(fds[0], F_SETFL, O_ASYNC | O_NONBLOCK) != 0) _exit(4);
        if (write(fds[1], "x", 1) != 1) _exit(5);
        while (g_sigio_seen.load() == 0) sched_yield();
        raise(SIGIO);
        while (g_sigio_seen.load() < 2) sched_yield();
        say("the handler ran twice");
      },
      with_env({{"PANICSTOP_KDB_SOCKET", sockets.path()}}, 20000));
  EXPECT_TRUE(handled.exited && handled.exit_code == 0) << handled.describe() << "\n" << handled.output;
  EXPECT_NE(handled.output.find("the handler ran twice"), std::string::npos) << handled.output;
  auto by_default = run_in_child(
      [] {
        install();
        raise(SIGIO);
        say("survived SIGIO");
      },
      with_env({{"PANICSTOP_KDB_SOCKET", sockets.path()}}, 20000));
  EXPECT_TRUE(by_default.signaled && by_default.term_signal == SIGIO) << by_default.describe() << "\n"
                                                                      << by_default.output;
}

}  // namespace
}  // namespace panicstop
