// An aarch64 program for read_back_cores.sh: four threads parked in the C library
// (two in pause(), two in nanosleep()) and one blocked on a panicstop::Mutex
// that main holds; then, by its argument, main
//   crash  writes through a null pointer,
//   panic  panics with the lock still held,
//   live   writes a live dump and exits 0.
// Its cores, written under qemu-user, are read back by the host's x86-64
// `panicstop show` and by gdb-multiarch.
#include <panicstop/panicstop.hpp>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

namespace {

constexpr int kParked = 5;
std::atomic<int> g_started{0};
std::atomic<pid_t> g_tids[kParked];
panicstop::Mutex g_lock("proof.lock");

void started() { g_tids[g_started.fetch_add(1)].store(pid_t(syscall(SYS_gettid))); }

__attribute__((noinline)) void parked_in_pause() {
  started();
  for (;;) pause();
}

__attribute__((noinline)) void parked_in_nanosleep() {
  started();
  for (;;) {
    timespec t{100, 0};
    nanosleep(&t, nullptr);
  }
}

__attribute__((noinline)) void waiter_on_lock() {
  started();
  g_lock.lock();  // main holds it until the process ends
  g_lock.unlock();
}

// True once the kernel shows the thread asleep ('S' in /proc/self/task/TID/stat):
// it is inside its system call, not on the way to it.
bool asleep(pid_t tid) {
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  const char* close_paren = strrchr(buf, ')');
  return close_paren != nullptr && close_paren[1] == ' ' && close_paren[2] == 'S';
}

__attribute__((noinline)) void crash_on_main(int* volatile* p) { **p = 42; }

__attribute__((noinline)) void panic_on_main() { panicstop::panic("proof: panic with proof.lock held"); }

std::atomic<int> g_files_written{0};

// Stores after the call, so that the call is not a tail call and this frame
// stays on the stack the dump shows.
__attribute__((noinline)) int live_dump_on_main() {
  g_files_written.store(panicstop::live_dump(nullptr));
  return g_files_written.load();
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "crash";
  panicstop::install();
  g_lock.lock();
  std::vector<std::thread> threads;
  threads.emplace_back(parked_in_pause);
  threads.emplace_back(parked_in_pause);
  threads.emplace_back(parked_in_nanosleep);
  threads.emplace_back(parked_in_nanosleep);
  threads.emplace_back(waiter_on_lock);
  for (int i = 0; i < kParked; ++i) {
    while (g_started.load() <= i || g_tids[i].load() == 0) sched_yield();
    while (!asleep(g_tids[i].load())) sched_yield();
  }
  if (strcmp(mode, "panic") == 0) panic_on_main();
  if (strcmp(mode, "live") == 0) _exit(live_dump_on_main() > 0 ? 0 : 1);
  int* volatile null = nullptr;
  crash_on_main(&null);
  return 0;
}
