// The pause a running process sees from kdb and live dumps (issue 7), next to
// gcore on the same process.
//
// The process has N threads: N-2 idle ones parked in a futex wait with a few
// frames of stack (a server's idle pool), the main thread, and one "ticker"
// that reads the monotonic clock in a loop and keeps the longest gap between
// two of its reads. The pause of an operation is the ticker's longest gap while
// the operation ran: what any thread of the workload saw. The ticker's longest
// gap over an equal quiet window is printed too (the noise floor on this
// machine). Each figure is the median of R operations.
//
//   kdb_pause [--rounds R] [--no-gcore] [N...]      (default N: 10 100 1000)
//
// Operations: live_dump() of a mini core plus text report (PANICSTOP_DUMP
// default), one kdb_enter() with the report backend writing to /dev/null, and
// `gcore PID` (gdb) when installed.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "panicstop/kdb.hpp"
#include "panicstop/panic.hpp"
#include "sys/syscall.hpp"

namespace {

std::atomic<uint32_t> g_release{0};
std::atomic<bool> g_ticker_quit{false};
std::atomic<int64_t> g_longest_gap_ns{0};
std::atomic<uint64_t> g_ticks{0};

__attribute__((noinline)) void park(int depth) {
  if (depth > 0) return park(depth - 1);
  while (g_release.load() == 0) panicstop::sys::futex_wait(&g_release, 0);
}

void ticker() {
  int64_t last = panicstop::sys::monotonic_ns();
  while (!g_ticker_quit.load(std::memory_order_relaxed)) {
    int64_t now = panicstop::sys::monotonic_ns();
    int64_t gap = now - last;
    if (gap > g_longest_gap_ns.load(std::memory_order_relaxed)) g_longest_gap_ns.store(gap, std::memory_order_relaxed);
    last = now;
    g_ticks.fetch_add(1, std::memory_order_relaxed);
  }
}

// The ticker's longest gap while op() ran. Waits for two ticks after op() so
// a gap that ends only when the ticker runs again is counted.
double pause_ms(const std::function<void()>& op) {
  g_longest_gap_ns.store(0);
  op();
  uint64_t t = g_ticks.load();
  while (g_ticks.load() < t + 2) sched_yield();
  return double(g_longest_gap_ns.load()) / 1e6;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? -1 : v[v.size() / 2];
}

void usage() {
  fprintf(stderr,
          "usage: kdb_pause [--rounds R] [--no-gcore] [N...]\n"
          "Pause seen by a process of N threads per live dump, per kdb cycle and per gcore.\n");
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 5;
  bool gcore = system("command -v gcore >/dev/null 2>&1") == 0;
  std::vector<int> sizes;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--no-gcore") == 0) {
      gcore = false;
    } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      rounds = atoi(argv[++i]);
    } else if (argv[i][0] >= '1' && argv[i][0] <= '9') {
      sizes.push_back(atoi(argv[i]));
    } else {
      usage();
      return 2;
    }
  }
  if (sizes.empty()) sizes = {10, 100, 1000};
  setenv("PANICSTOP_KDB_OUTPUT", "/dev/null", 1);
  setenv("PANICSTOP_KDB_SOCKET", "0", 1);
  if (!panicstop::install()) return 1;
  char dir[] = "/tmp/kdb-pause-XXXXXX";
  if (mkdtemp(dir) == nullptr) return 1;

  std::thread tick(ticker);
  std::vector<std::thread> idle;
  printf("%8s %10s %13s %12s %10s\n", "threads", "quiet_ms", "live_dump_ms", "kdb_cycle_ms", "gcore_ms");
  for (int n : sizes) {
    while (int(idle.size()) < n - 2) idle.emplace_back([] { park(8); });
    std::vector<double> quiet, live, kdb, gc;
    for (int r = 0; r < rounds; ++r) {
      auto started = std::chrono::steady_clock::now();
      live.push_back(pause_ms([&] { panicstop::live_dump(dir); }));
      auto took = std::chrono::steady_clock::now() - started;
      // The noise floor: the same length of time with nothing done.
      quiet.push_back(pause_ms([&] {
        auto until = std::chrono::steady_clock::now() + took;
        while (std::chrono::steady_clock::now() < until) sched_yield();
      }));
      kdb.push_back(pause_ms([] { panicstop::kdb_enter("pause benchmark"); }));
      if (gcore && r < 3) {
        std::string cmd = "gcore -o " + std::string(dir) + "/gcore " + std::to_string(getpid()) + " >/dev/null 2>&1";
        gc.push_back(pause_ms([&] {
          if (system(cmd.c_str()) != 0) fprintf(stderr, "kdb_pause: gcore failed\n");
        }));
      }
      std::string clean = "rm -f " + std::string(dir) + "/*";
      if (system(clean.c_str()) != 0) {
      }
    }
    printf("%8d %10.2f %13.2f %12.2f %10.1f\n", n, median(quiet), median(live), median(kdb), gc.empty() ? -1.0 : median(gc));
    fflush(stdout);
  }
  g_release.store(1);
  panicstop::sys::futex_wake(&g_release, INT32_MAX);
  for (auto& t : idle) t.join();
  g_ticker_quit.store(true);
  tick.join();
  rmdir(dir);
  return 0;
}
