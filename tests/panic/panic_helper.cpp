// A plain program for die-policy tests that must exec a fresh process
// (restart re-executes /proc/self/exe with its original arguments).
//   panic_helper restart   first run panics; the restarted run prints "restarted run=N" and exits 0
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "panicstop/panic.hpp"

int main(int argc, char** argv) {
  if (argc >= 3 && std::strcmp(argv[1], "restart") == 0) {
    const char* count = std::getenv("PANIC_HELPER_RUN");
    int run = count != nullptr ? std::atoi(count) : 0;
    if (run >= 1) {
      std::printf("restarted run=%d arg=%s\n", run, argv[2]);
      return 0;
    }
    setenv("PANIC_HELPER_RUN", std::to_string(run + 1).c_str(), 1);
    panicstop::install();
    panicstop::panic("first run");
  }
  std::fprintf(stderr, "usage: panic_helper restart ARG\n");
  return 2;
}
