// Symbols per second through sys::demangle (the crash path's demangler) and
// through abi::__cxa_demangle (which allocates), on every C++ symbol that
// libstdc++ exports (`nm -D --defined-only`).
#include <benchmark/benchmark.h>
#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "sys/demangle.hpp"

namespace {

std::vector<std::string> load_symbols() {
  std::string lib;
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    size_t slash = line.find('/');
    if (slash != std::string::npos && line.find("libstdc++.so", slash) != std::string::npos) lib = line.substr(slash);
  }
  std::vector<std::string> names;
  FILE* f = popen(("nm -D --defined-only '" + lib + "'").c_str(), "r");
  if (f == nullptr) return names;
  char line[8192];
  while (fgets(line, sizeof line, f) != nullptr) {
    std::string l(line);
    std::string n = l.substr(l.rfind(' ') + 1);
    n = n.substr(0, n.find_first_of("@\n"));
    if (n.rfind("_Z", 0) == 0) names.push_back(n);
  }
  pclose(f);
  return names;
}

const std::vector<std::string>& symbols() {
  static const std::vector<std::string> names = load_symbols();
  return names;
}

void BM_sys_demangle(benchmark::State& state) {
  const auto& names = symbols();
  char out[1024];
  size_t ok = 0;
  for (auto _ : state)
    for (const std::string& n : names) ok += panicstop::sys::demangle(n.c_str(), out, sizeof out);
  benchmark::DoNotOptimize(ok);
  state.SetItemsProcessed(int64_t(state.iterations() * names.size()));
  state.counters["symbols"] = double(names.size());
}
BENCHMARK(BM_sys_demangle)->Unit(benchmark::kMillisecond);

void BM_cxa_demangle(benchmark::State& state) {
  const auto& names = symbols();
  size_t ok = 0;
  for (auto _ : state) {
    for (const std::string& n : names) {
      int status = 0;
      char* r = abi::__cxa_demangle(n.c_str(), nullptr, nullptr, &status);
      ok += status == 0;
      std::free(r);
    }
  }
  benchmark::DoNotOptimize(ok);
  state.SetItemsProcessed(int64_t(state.iterations() * names.size()));
}
BENCHMARK(BM_cxa_demangle)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
