// Cost of WITNESS per acquisition: one thread locks and unlocks one Mutex while
// it already holds 1, 4 or 16 other Mutexes (each its own class, taken in one
// fixed order, so every order check is a known edge: the steady state of a
// program that has run for a while).
//
//   witness/held:N/mode:M   M = 0: witness off at run time (PANICSTOP_WITNESS=-1:
//                           the fast path's inline check, no call);
//                           1: witness on; 2: witness on and lock profiling on
//                           (adds hold-time measurement).
//   std_mutex/held:N        std::mutex with the same pattern: the reference, and
//                           the program to build with -fsanitize=thread to
//                           compare with ThreadSanitizer's deadlock detector.
//
// Built with witness in (-DPANICSTOP_WITNESS=ON) for modes 1 and 2; a build
// without it gives the plain lock (mode 0 there is the untouched one-CAS path).
// docs/BENCHMARKS.md has the commands and results.
#include <benchmark/benchmark.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "panicstop/lockprof.hpp"
#include "panicstop/mutex.hpp"
#include "panicstop/witness.hpp"

namespace {

constexpr const char* kHeldNames[16] = {"held00", "held01", "held02", "held03", "held04", "held05",
                                        "held06", "held07", "held08", "held09", "held10", "held11",
                                        "held12", "held13", "held14", "held15"};

void witness_lock_unlock(benchmark::State& state) {
  const int held = int(state.range(0));
  const int mode = int(state.range(1));
  panicstop::witness_set_mode(mode == 0 ? panicstop::WitnessMode::kOff : panicstop::WitnessMode::kOn);
  panicstop::lockprof_enable(mode == 2);
  std::vector<std::unique_ptr<panicstop::Mutex>> outer;
  for (int i = 0; i < held; ++i) outer.push_back(std::make_unique<panicstop::Mutex>(kHeldNames[i]));
  panicstop::Mutex inner{"inner"};
  for (auto& m : outer) m->lock();
  for (auto _ : state) {
    inner.lock();
    benchmark::ClobberMemory();
    inner.unlock();
  }
  for (auto it = outer.rbegin(); it != outer.rend(); ++it) (*it)->unlock();
  panicstop::lockprof_enable(false);
  panicstop::witness_set_mode(panicstop::WitnessMode::kOff);
  state.SetLabel(panicstop::kWitnessBuiltIn ? "witness built in" : "witness not built in");
}

void std_mutex_lock_unlock(benchmark::State& state) {
  const int held = int(state.range(0));
  std::vector<std::unique_ptr<std::mutex>> outer;
  for (int i = 0; i < held; ++i) outer.push_back(std::make_unique<std::mutex>());
  std::mutex inner;
  for (auto& m : outer) m->lock();
  for (auto _ : state) {
    inner.lock();
    benchmark::ClobberMemory();
    inner.unlock();
  }
  for (auto it = outer.rbegin(); it != outer.rend(); ++it) (*it)->unlock();
}

}  // namespace

BENCHMARK(witness_lock_unlock)->Name("witness")->ArgNames({"held", "mode"})->ArgsProduct({{1, 4, 16}, {0, 1, 2}});
BENCHMARK(std_mutex_lock_unlock)->Name("std_mutex")->ArgNames({"held"})->Arg(1)->Arg(4)->Arg(16);

BENCHMARK_MAIN();
