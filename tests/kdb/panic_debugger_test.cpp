// PANICSTOP_TRACE_ON_PANIC and PANICSTOP_DEBUGGER_ON_PANIC: the panic's
// debugger step, in crashing children with deadlines.
#include <dirent.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "kdb/workload.hpp"
#include "panicstop/panic.hpp"
#include "support/child_process.hpp"

namespace panicstop {
namespace {

using testing::run_in_child;
using testing::SelfCheckingWorkload;
using testing::TempDir;
using testing::with_env;

__attribute__((noinline)) void panic_in_a_named_function() {
  panic("the debugger test panicked");
}

TEST(PanicDebugger, TraceOnPanicPrintsThePanickingStackBeforeTheDumps) {
  TempDir dumps;
  auto r = run_in_child([] { install(); panic_in_a_named_function(); },
                        with_env({{"PANICSTOP_TRACE_ON_PANIC", "1"}, {"PANICSTOP_DUMP_DIR", dumps.path()}}));
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe();
  size_t trace = r.output.find("panicstop: stack of the panicking thread");
  ASSERT_NE(trace, std::string::npos) << r.output;
  size_t frame = r.output.find("panic_in_a_named_function", trace);
  size_t wrote = r.output.find("panicstop: wrote");
  EXPECT_NE(frame, std::string::npos) << r.output;
  EXPECT_LT(frame, wrote) << r.output;
}

// The client is this test process; the crashing child blocks the control
// socket's signal in every thread, so the connection waits in the backlog
// until the panic's debugger accepts it.
TEST(PanicDebugger, DebuggerOnPanicServesOneConsoleThenTheDumpsFollow) {
  TempDir sockets, dumps;
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  std::string transcript;
  std::thread client([&] {
    char c;
    if (read(ready[0], &c, 1) != 1) return;
    std::string path;
    if (DIR* d = opendir(sockets.path().c_str())) {
      while (dirent* e = readdir(d))
        if (strstr(e->d_name, ".sock") != nullptr) path = sockets.path() + "/" + e->d_name;
      closedir(d);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      transcript = "connect to '" + path + "' failed: " + strerror(errno);
      close(fd);
      return;
    }
    const char kScript[] = "kdb\nthreads\ncontinue\n";
    if (write(fd, kScript, sizeof kScript - 1) < 0) transcript = "write failed";
    char buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) transcript.append(buf, size_t(n));
    close(fd);
  });
  auto r = run_in_child(
      [&] {
        setsid();  // no controlling terminal: the console goes to the socket
        install();  // unblocks the reserved signals in this thread: block after it
        sigset_t request;
        sigemptyset(&request);
        sigaddset(&request, SIGRTMAX - 5);
        testing::raw_sigmask(SIG_BLOCK, &request);  // the workers inherit it; pthread_sigmask would not block it
        SelfCheckingWorkload work(3);
        if (write(ready[1], "x", 1) != 1) _exit(3);
        panic("the debugger test panicked");
      },
      with_env({{"PANICSTOP_DEBUGGER_ON_PANIC", "1"},
                {"PANICSTOP_KDB_SOCKET", sockets.path()},
                {"PANICSTOP_KDB_IDLE_MS", "15000"},
                {"PANICSTOP_DUMP_DIR", dumps.path()}}));
  if (write(ready[1], "", 0) < 0) {
  }
  close(ready[1]);  // a child that died early must not leave the client blocked
  client.join();
  close(ready[0]);
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << r.output;
  EXPECT_NE(r.output.find("debugger on panic: run `panicstop kdb"), std::string::npos) << r.output;
  EXPECT_NE(transcript.find("kdb> "), std::string::npos) << transcript;
  EXPECT_NE(transcript.find("the debugger test panicked"), std::string::npos) << transcript;
  for (const char* worker : {"worker-00", "worker-01", "worker-02"})
    EXPECT_NE(transcript.find(worker), std::string::npos) << worker << "\n" << transcript;
  EXPECT_NE(transcript.find("continuing"), std::string::npos) << transcript;
  // After `continue` the panic path went on: the dumps were written.
  EXPECT_EQ(dumps.list().size(), 2u) << r.output;
}

TEST(PanicDebugger, NobodyConnectingLetsThePanicGoOn) {
  TempDir sockets, dumps;
  auto r = run_in_child(
      [] {
        setsid();
        install();
        panic("nobody comes");
      },
      with_env({{"PANICSTOP_DEBUGGER_ON_PANIC", "1"},
                {"PANICSTOP_KDB_SOCKET", sockets.path()},
                {"PANICSTOP_KDB_IDLE_MS", "200"},
                {"PANICSTOP_DUMP_DIR", dumps.path()}}));
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  EXPECT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe();
  EXPECT_NE(r.output.find("debugger on panic: nobody connected; going on"), std::string::npos) << r.output;
  EXPECT_EQ(dumps.list().size(), 2u) << r.output;
}

}  // namespace
}  // namespace panicstop
