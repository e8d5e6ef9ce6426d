// An aarch64 program for show_core.sh: four threads parked in the C library
// (two in pause(), two in nanosleep()), then a null write on the main thread.
// Its core, written under qemu-user, is read back by the host's x86-64
// `panicstop show`.
#include <panicstop/panicstop.hpp>

#include <time.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

namespace {

std::atomic<int> g_parked{0};

__attribute__((noinline)) void parked_in_pause() {
  g_parked++;
  for (;;) pause();
}

__attribute__((noinline)) void parked_in_nanosleep() {
  g_parked++;
  for (;;) {
    timespec t{100, 0};
    nanosleep(&t, nullptr);
  }
}

__attribute__((noinline)) void crash_on_main(int* volatile* p) { **p = 42; }

}  // namespace

int main() {
  panicstop::install();
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back(i % 2 == 0 ? parked_in_pause : parked_in_nanosleep);
  while (g_parked.load() < 4) usleep(1000);
  usleep(100000);  // into the system call, past the counter
  int* volatile null = nullptr;
  crash_on_main(&null);
  return 0;
}
