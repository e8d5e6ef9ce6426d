// The hung server: what kdb is for, in one small program.
//
// Two request handlers take the "sessions" and "cache" Mutexes in opposite
// orders and deadlock; the rest of the server keeps answering health checks,
// so nothing crashes and nothing restarts it. Find out why, without killing it
// and without ptrace:
//
//   example_hung_server &                      # prints its pid, then hangs
//   panicstop kdb PID -c locks -c threads      # who holds what, who waits
//   panicstop dump PID                         # a core of the hung process; it goes on
//
// `locks` shows each Mutex with its owner and waiter: handler-1 holds
// "sessions" and waits for "cache", handler-2 the other way round.
#include <panicstop/panicstop.hpp>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>

namespace {

panicstop::Mutex g_sessions{"sessions"};
panicstop::Mutex g_cache{"cache"};
std::atomic<int> g_holding{0};
std::atomic<long> g_health_checks{0};

// Each handler takes its first lock, waits until the other has taken its own,
// then asks for the other's: a deadlock every time, not just sometimes.
void handle(const char* name, panicstop::Mutex& first, panicstop::Mutex& second) {
  panicstop::set_thread_name(name);
  panicstop::MutexLock a(first);
  g_holding.fetch_add(1);
  while (g_holding.load() < 2) std::this_thread::yield();
  panicstop::MutexLock b(second);  // never returns
}

[[noreturn]] void health_checker() {
  panicstop::set_thread_name("health");
  for (;;) {
    g_health_checks.fetch_add(1);
    usleep(100000);  // a periodic task, not synchronization
  }
}

}  // namespace

int main() {
  panicstop::install();
  std::thread(health_checker).detach();
  std::thread h1(handle, "handler-1", std::ref(g_sessions), std::ref(g_cache));
  std::thread h2(handle, "handler-2", std::ref(g_cache), std::ref(g_sessions));
  printf("hung_server: pid %d; try: panicstop kdb %d -c locks\n", int(getpid()), int(getpid()));
  fflush(stdout);
  h1.join();  // never returns: the handlers are deadlocked
  h2.join();
}
