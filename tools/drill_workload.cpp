// The workload `panicstop drill` crashes: worker threads contending on
// Mutexes, an RwLock and a CondVar queue, a logger that holds the "log" Mutex
// most of the time while it "flushes", and a crash hook that needs "log".
// After a seeded random delay one random worker crashes in the chosen way.
//
// The logger's flush is a quiescence barrier, as log rotation and RCU-like
// flushes are: holding "log", it waits until every worker has checked in at
// the new flush epoch (workers check in once per loop iteration). A crashed
// worker never checks in again, so unless the crash handler stops the logger
// where it is and passes through its lock, the hook waits for "log" forever.
//
// One source, built once per crash handler (tools/drill_handler.hpp): as
// panicstop-drill-workload with panicstop, and by bench/crash_peers against
// other handlers. Every build uses panicstop's locks; without install() they
// are plain locks.
//
// Usage: panicstop-drill-workload [--threads N] [--crash KIND] [--seed S] [--no-stop]
// KIND: segv panic abort overflow double hook. Dumps go to $PANICSTOP_DUMP_DIR.
//
// It tells the drill what happened in lines on stderr, written with raw
// write(2) (a stopped thread may hold stdio's lock):
//   drill-workload: threads alive: N
//   drill-workload: crash at MONOTONIC_NS in worker-I (KIND)
//   drill-workload: hook finished while thread TID (logger) held log
//     (or "... after the logger released log")
#include <panicstop/panicstop.hpp>

#include <dirent.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <string>
#include <thread>

#include "drill_handler.hpp"

namespace {

constexpr int kAccountLocks = 4;
panicstop::Mutex g_account_locks[kAccountLocks] = {
    panicstop::Mutex{"accounts-0"}, panicstop::Mutex{"accounts-1"},
    panicstop::Mutex{"accounts-2"}, panicstop::Mutex{"accounts-3"}};
long g_accounts[kAccountLocks][8];

panicstop::RwLock g_rates_lock{"rates"};
long g_rates[8] PANICSTOP_GUARDED_BY(g_rates_lock);

panicstop::Mutex g_queue_lock{"queue"};
panicstop::CondVar g_queue_ready{"queue-ready"};
long g_queue[64] PANICSTOP_GUARDED_BY(g_queue_lock);
int g_queue_len PANICSTOP_GUARDED_BY(g_queue_lock) = 0;

panicstop::Mutex g_log_lock{"log"};
char g_log[4096] PANICSTOP_GUARDED_BY(g_log_lock);
size_t g_log_len PANICSTOP_GUARDED_BY(g_log_lock) = 0;
// The logger's tid while it holds "log", so the hook can say who held it.
std::atomic<int> g_log_holder{0};

// The flush barrier: the logger raises the epoch, then waits until each
// worker's check-in has reached it.
constexpr int kMaxWorkers = 256;
int g_workers = 0;  // set before any thread starts
std::atomic<long> g_flush_epoch{0};
std::atomic<long> g_checked_in[kMaxWorkers];

std::atomic<int> g_crash_worker{-1};
std::atomic<bool> g_crash_now{false};
std::atomic<int> g_double_arrived{0};
const char* g_crash_kind = "segv";

void say(const char* text) {
  if (write(2, text, strlen(text)) < 0) {
  }
}

long monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return long(ts.tv_sec) * 1000000000L + ts.tv_nsec;
}

void append_log(const char* line) PANICSTOP_REQUIRES(g_log_lock) {
  size_t n = strlen(line);
  if (g_log_len + n >= sizeof g_log) g_log_len = 0;
  memcpy(g_log + g_log_len, line, n);
  g_log_len += n;
}

// The crash hook: needs "log", which the logger holds most of the time and,
// after a crash, for good (its barrier waits for the crashed worker). With
// panicstop's stop the logger is frozen and the hook passes through its lock;
// otherwise the hook waits for "log" forever (panicstop without the stop gives
// up on it at the step deadline, PANICSTOP_STEP_TIMEOUT_MS, 10 s by default).
void finish_log_on_crash() {
  std::lock_guard<panicstop::Mutex> g(g_log_lock);
  // Still set: the logger never released "log" and the hook passed through
  // it. Zero: the hook got "log" only after the logger let go.
  int holder = g_log_holder.load();
  append_log("final line: written by the PreDump hook during the panic\n");
  char line[128];
  // snprintf of integers only: no locale or heap use in glibc for these.
  if (holder != 0 && holder != panicstop::current_tid())
    snprintf(line, sizeof line, "drill-workload: hook finished while thread %d (logger) held log\n", holder);
  else
    snprintf(line, sizeof line, "drill-workload: hook finished after the logger released log\n");
  say(line);
}

int* volatile g_bad_pointer = nullptr;  // volatile: the fault happens at run time

// Runs before finish_log_on_crash for --crash hook: a fault inside a hook.
void faulting_hook() { *g_bad_pointer = 1; }

volatile int g_keep_going = 1;  // opaque to the compiler: the recursion looks finite

__attribute__((noinline)) int recurse_forever(int depth) {
  volatile char frame[1024];
  frame[0] = char(depth);
  if (!g_keep_going) return frame[0];
  return recurse_forever(depth + 1) + frame[0];
}

[[noreturn]] __attribute__((noinline)) void crash(int id) {
  char line[128];
  snprintf(line, sizeof line, "drill-workload: crash at %ld in worker-%d (%s)\n", monotonic_ns(), id, g_crash_kind);
  const std::string kind = g_crash_kind;
  if (kind == "double") {
    // Both faulting threads arrive, then fault as close together as possible.
    g_double_arrived.fetch_add(1);
    while (g_double_arrived.load() < 2) {
    }
    if (id == g_crash_worker.load()) say(line);
    *g_bad_pointer = id;
  }
  say(line);
  if (kind == "panic") drill::fatal_error(id);
  if (kind == "abort") abort();
  if (kind == "overflow") recurse_forever(0);
  *g_bad_pointer = id;  // segv, hook
  abort();              // not reached
}

// One flush writes kFlushSegments segments while holding "log", each behind
// the barrier. A crash between the last check-in of a segment and the end of
// the flush lets the hook take "log" when the logger lets go; more segments
// per flush make that window rarer.
constexpr int kFlushSegments = 32;

[[noreturn]] void logger() {
  panicstop::set_thread_name("logger");
  for (long i = 0;; ++i) {
    std::lock_guard<panicstop::Mutex> g(g_log_lock);
    g_log_holder.store(panicstop::current_tid());
    if (i % 100 == 0) append_log("logger: flushing\n");
    for (int segment = 0; segment < kFlushSegments; ++segment) {
      long epoch = g_flush_epoch.fetch_add(1, std::memory_order_acq_rel) + 1;
      for (int w = 0; w < g_workers; ++w)
        while (g_checked_in[w].load(std::memory_order_acquire) < epoch) sched_yield();
    }
    g_log_holder.store(0);
  }
}

[[noreturn]] void consumer() {
  panicstop::set_thread_name("consumer");
  for (;;) {
    std::unique_lock<panicstop::Mutex> g(g_queue_lock);
    g_queue_ready.wait(g, [] { return g_queue_len > 0; });
    --g_queue_len;
  }
}

[[noreturn]] void worker(int id, unsigned seed, bool partner) {
  char name[16];
  snprintf(name, sizeof name, "worker-%d", id);
  panicstop::set_thread_name(name);
  std::minstd_rand rng(seed + unsigned(id));
  for (long n = 0;; ++n) {
    unsigned r = unsigned(rng());
    {
      std::lock_guard<panicstop::Mutex> g(g_account_locks[r % kAccountLocks]);
      g_accounts[r % kAccountLocks][(r >> 4) % 8] += 1;
    }
    if (r % 16 == 0) {
      std::lock_guard<panicstop::RwLock> g(g_rates_lock);
      g_rates[(r >> 8) % 8] += 1;
    } else {
      std::shared_lock<panicstop::RwLock> g(g_rates_lock);
      (void)g_rates[(r >> 8) % 8];
    }
    if (r % 8 == 0) {
      std::lock_guard<panicstop::Mutex> g(g_queue_lock);
      if (g_queue_len < 64) g_queue[g_queue_len++] = n;
      g_queue_ready.notify_one();
    }
    g_checked_in[id].store(g_flush_epoch.load(std::memory_order_acquire), std::memory_order_release);
    if (g_crash_now.load(std::memory_order_relaxed) && (id == g_crash_worker.load() || partner)) crash(id);
  }
}

int count_threads() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') ++n;
    closedir(d);
  }
  return n;
}

int usage(const char* why) {
  fprintf(stderr,
          "drill workload (%s): %s\nusage: WORKLOAD [--threads N] "
          "[--crash segv|panic|abort|overflow|double|hook] [--seed S] [--no-stop]\n",
          drill::kHandlerName, why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 8;
  unsigned long seed = 1;
  bool no_stop = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool has_value = i + 1 < argc;
    if (a == "--no-stop") {
      no_stop = true;
    } else if (a == "--threads" && has_value) {
      threads = atoi(argv[++i]);
    } else if (a == "--crash" && has_value) {
      g_crash_kind = argv[++i];
    } else if (a == "--seed" && has_value) {
      seed = strtoul(argv[++i], nullptr, 10);
    } else {
      return usage(("bad argument '" + a + "'").c_str());
    }
  }
  const std::string kind = g_crash_kind;
  if (kind != "segv" && kind != "panic" && kind != "abort" && kind != "overflow" && kind != "double" &&
      kind != "hook")
    return usage("unknown crash kind");
  int min_threads = kind == "double" ? 2 : 1;
  if (threads < min_threads || threads > kMaxWorkers) return usage("--threads out of range");
  if (kind == "hook" && !drill::kHandlerHasHook) return usage("this handler runs no hooks: no --crash hook");
  if (no_stop && !drill::kHandlerStopsThreads) return usage("this handler never stops threads: no --no-stop");
  g_workers = threads;

  if (!drill::install_handler({finish_log_on_crash, kind == "hook" ? faulting_hook : nullptr}, no_stop)) return 1;
  panicstop::set_thread_name("main");

  std::mt19937 rng{static_cast<unsigned>(seed)};
  int victim = int(rng() % unsigned(threads));
  int partner = kind == "double" ? (victim + 1) % threads : -1;
  int delay_ms = 100 + int(rng() % 400);
  g_crash_worker.store(victim);

  std::thread(logger).detach();
  std::thread(consumer).detach();
  for (int i = 0; i < threads; ++i) std::thread(worker, i, unsigned(seed), i == partner).detach();
  // Every thread exists before the count: main, logger, consumer, workers.
  while (count_threads() < threads + 3) std::this_thread::yield();
  char line[64];
  snprintf(line, sizeof line, "drill-workload: threads alive: %d\n", count_threads());
  say(line);

  std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  g_crash_now.store(true);
  for (;;) pause();  // the crash ends the process
}
