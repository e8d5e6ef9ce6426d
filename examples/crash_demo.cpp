// The crash demo: what panicstop is for, in one small program.
//
// Eight workers move money between accounts under one Mutex; a logger thread
// holds the "log" Mutex most of the time while it "flushes". Then a worker
// dereferences a null pointer. Without panicstop the PreDump-style hook that
// appends a final line to the log would wait for "log" forever (its owner is
// frozen or still running); with panicstop every other thread is stopped, the
// hook passes through the lock, and the dumps are written.
//
// Run: example_crash_demo [--no-stop]   (dumps go to $PANICSTOP_DUMP_DIR or .)
#include <panicstop/panicstop.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
#include <thread>
#include <vector>

namespace {

panicstop::Mutex g_accounts_lock{"accounts"};
long g_accounts[16] PANICSTOP_GUARDED_BY(g_accounts_lock);

panicstop::Mutex g_log_lock{"log"};
char g_log[4096] PANICSTOP_GUARDED_BY(g_log_lock);
size_t g_log_len PANICSTOP_GUARDED_BY(g_log_lock) = 0;

std::atomic<long> g_transfers{0};

void append_log(const char* line) PANICSTOP_REQUIRES(g_log_lock) {
  size_t n = strlen(line);
  if (g_log_len + n < sizeof g_log) {
    memcpy(g_log + g_log_len, line, n);
    g_log_len += n;
  }
}

// Runs on the panicking thread before the dumps are written. It needs the log
// lock, which the logger thread holds most of the time.
void flush_log_on_panic(void*) {
  panicstop::MutexLock hold(g_log_lock);
  append_log("final line: written by the PreDump hook during the panic\n");
  // Raw write(2): another thread may have been stopped inside stdio.
  static const char head[] = "--- log ---\n", tail[] = "--- end of log ---\n";
  if (write(2, head, sizeof head - 1) < 0 || write(2, g_log, g_log_len) < 0 || write(2, tail, sizeof tail - 1) < 0) {
  }
}

[[noreturn]] void logger() {
  panicstop::set_thread_name("logger");
  for (long i = 0;; ++i) {
    panicstop::MutexLock hold(g_log_lock);
    if (i % 1000 == 0) {
      char line[64];
      snprintf(line, sizeof line, "logger: %ld transfers so far\n", g_transfers.load());
      if (g_log_len + strlen(line) > sizeof g_log / 2) g_log_len = 0;
      append_log(line);
    }
    for (int spin = 0; spin < 20000; ++spin) __asm__ volatile("" ::: "memory");  // "flushing" with the lock held
  }
}

// The pointer is volatile so the compiler cannot prove it null and delete the
// store as undefined behaviour: the fault happens at run time, like a real bug.
int* volatile g_corrupted_pointer = nullptr;

__attribute__((noinline)) void corrupt_and_crash() { *g_corrupted_pointer = 42; }

[[noreturn]] void worker(int id) {
  char name[16];
  snprintf(name, sizeof name, "worker-%d", id);
  panicstop::set_thread_name(name);
  unsigned seed = unsigned(id) * 2654435761u;
  for (;;) {
    seed = seed * 1103515245u + 12345u;
    {
      panicstop::MutexLock hold(g_accounts_lock);
      g_accounts[seed % 16] -= 1;
      g_accounts[(seed >> 8) % 16] += 1;
    }
    if (g_transfers.fetch_add(1) >= 200000 && id == 3) corrupt_and_crash();
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "--no-stop") == 0) setenv("PANICSTOP_STOP_ON_PANIC", "0", 1);
  panicstop::install();
  panicstop::set_thread_name("main");
  panicstop::on_panic(panicstop::Stage::PreDump, flush_log_on_panic, nullptr);

  std::thread(logger).detach();
  std::vector<std::thread> workers;
  for (int i = 0; i < 8; ++i) workers.emplace_back(worker, i);
  for (auto& w : workers) w.join();  // never returns: worker 3 crashes
  return 0;
}
