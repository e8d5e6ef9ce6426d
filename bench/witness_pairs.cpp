// A fixed number of lock/unlock pairs of one Mutex while 4 others are held,
// the steady state of bench/witness_bench.cpp without the benchmark library,
// for counting instructions: run it under callgrind with N and 2N pairs; the
// difference divided by N is the cost of one pair.
//
//   witness_pairs N [MODE]   MODE 1 (default): witness on; 0: off at run time
//
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null build/bench/witness_pairs 100000
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null build/bench/witness_pairs 200000
#include <cstdlib>
#include <memory>
#include <vector>

#include "panicstop/mutex.hpp"
#include "panicstop/witness.hpp"

int main(int argc, char** argv) {
  const long pairs = argc > 1 ? atol(argv[1]) : 1000000;
  const int mode = argc > 2 ? atoi(argv[2]) : 1;
  panicstop::witness_set_mode(mode == 0 ? panicstop::WitnessMode::kOff : panicstop::WitnessMode::kOn);
  static const char* const kNames[4] = {"held00", "held01", "held02", "held03"};
  std::vector<std::unique_ptr<panicstop::Mutex>> outer;
  for (const char* name : kNames) outer.push_back(std::make_unique<panicstop::Mutex>(name));
  panicstop::Mutex inner{"inner"};
  for (auto& m : outer) m->lock();
  for (long i = 0; i < pairs; ++i) {
    inner.lock();
    __asm__ volatile("" ::: "memory");
    inner.unlock();
  }
  for (auto it = outer.rbegin(); it != outer.rend(); ++it) (*it)->unlock();
  return 0;
}
