// Stop latency: from the call of stop_other_threads() to the last
// acknowledgement, with the soft stop and a restart so it repeats without
// dying, for 10 to 10,000 threads that are idle (blocked on a futex) or busy
// (spinning). The floor is one signal delivery round trip to one thread: send,
// handler runs and wakes the sender.
//
//   stop_latency [max_threads [max_busy_threads]]      (defaults 10000, 1000)
//
// Prints one table. Measures; asserts nothing. A busy thread takes its signal
// only when the scheduler gives it a CPU, so with N spinners on C cores a stop
// costs about one scheduler rotation over N/C threads: the busy rows measure the
// scheduler as much as the stop, and 10,000 spinners on 2 cores are left out by
// default (minutes per round).
#include <pthread.h>
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "panicstop/panic.hpp"
#include "stop/stop.hpp"
#include "sys/syscall.hpp"
#include "thread/slot.hpp"

using namespace panicstop;

namespace {

std::atomic<uint32_t> g_release{0};
std::atomic<uint32_t> g_pong{0};

void* idle_thread(void*) {
  while (g_release.load() == 0) sys::futex_wait(&g_release, 0);
  return nullptr;
}

void* busy_thread(void*) {
  while (g_release.load(std::memory_order_relaxed) == 0) {
  }
  return nullptr;
}

void pong_handler(int) {
  g_pong.fetch_add(1);
  sys::futex_wake(&g_pong, 1);
}

std::vector<pthread_t> start_threads(int n, void* (*fn)(void*)) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  std::vector<pthread_t> threads(n);
  for (int i = 0; i < n; ++i)
    if (pthread_create(&threads[i], &attr, fn, nullptr) != 0) {
      std::fprintf(stderr, "pthread_create failed at %d threads\n", i);
      std::exit(1);
    }
  pthread_attr_destroy(&attr);
  return threads;
}

void stop_threads(std::vector<pthread_t>& threads) {
  g_release.store(1);
  sys::futex_wake(&g_release, INT32_MAX);
  for (pthread_t t : threads) pthread_join(t, nullptr);
  g_release.store(0);
}

// Waits until no thread is still inside the stop handler from the last round.
void wait_resumed() {
  detail::ThreadSlot* slots = detail::slot_array();
  for (bool any = true; any;) {
    any = false;
    for (size_t i = 0; i < detail::slot_count(); ++i)
      if (slots[i].in_use.load() && slots[i].stop_state.load() == detail::StopState::kStopped) any = true;
    if (any) sys::sched_yield();
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// One signal round trip to an idle thread: tgkill, the handler runs and wakes us.
double signal_round_trip_us() {
  signal(SIGUSR1, pong_handler);
  std::vector<pthread_t> t = start_threads(1, idle_thread);
  int tid = 0;
  for (int found = 0; found != 2;) {
    found = detail::for_each_thread([](int, void*) noexcept {}, nullptr);
  }
  detail::for_each_thread([](int id, void* out) noexcept { if (id != sys::gettid()) *static_cast<int*>(out) = id; }, &tid);
  std::vector<double> samples;
  for (int i = 0; i < 2000; ++i) {
    uint32_t before = g_pong.load();
    int64_t t0 = sys::monotonic_ns();
    sys::tgkill(sys::getpid(), tid, SIGUSR1);
    while (g_pong.load() == before) sys::futex_wait(&g_pong, before);
    samples.push_back(double(sys::monotonic_ns() - t0) / 1000.0);
  }
  stop_threads(t);
  return median(samples);
}

}  // namespace

int main(int argc, char** argv) {
  int max_threads = argc > 1 ? std::atoi(argv[1]) : 10000;
  int max_busy = argc > 2 ? std::atoi(argv[2]) : 1000;
  install();
  double floor_us = signal_round_trip_us();
  std::printf("signal round trip (tgkill -> handler -> futex wake), median of 2000: %.1f us\n\n", floor_us);
  std::printf("%8s %6s %7s %12s %12s %14s %10s\n", "threads", "mode", "rounds", "median ms", "min ms", "us/thread",
              "x floor");
  for (int n : {10, 100, 1000, 10000}) {
    if (n > max_threads) break;
    for (int busy = 0; busy < 2; ++busy) {
      if (busy && n > max_busy) {
        std::printf("%8d %6s   (skipped: more than %d spinners)\n", n, "busy", max_busy);
        continue;
      }
      std::vector<pthread_t> threads = start_threads(n, busy ? busy_thread : idle_thread);
      while (detail::for_each_thread([](int, void*) noexcept {}, nullptr) < n + 1) sys::sched_yield();
      int rounds = busy ? (n >= 1000 ? 3 : n >= 100 ? 10 : 50) : (n >= 10000 ? 5 : n >= 1000 ? 15 : 50);
      std::vector<double> ms;
      int incomplete = 0;
      for (int r = 0; r < rounds + 1; ++r) {
        detail::StopResult s = detail::stop_other_threads(detail::StopKind::kSoft, 30'000'000'000);
        detail::restart_stopped_threads();
        wait_resumed();
        if (!s.ok || int(s.stopped) != n) ++incomplete;
        if (r > 0) ms.push_back(double(s.end_ns - s.start_ns) / 1e6);  // round 0 warms slots and altstacks
      }
      double med = median(ms);
      std::printf("%8d %6s %7d %12.3f %12.3f %14.2f %10.1f%s\n", n, busy ? "busy" : "idle", rounds, med,
                  *std::min_element(ms.begin(), ms.end()), med * 1000.0 / n, med * 1000.0 / floor_us,
                  incomplete ? "  (some rounds incomplete)" : "");
      std::fflush(stdout);
      stop_threads(threads);
    }
  }
  return 0;
}
