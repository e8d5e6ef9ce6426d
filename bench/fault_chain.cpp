// The cost panicstop adds to a runtime that faults on purpose: a garbage
// collector's write barrier (protect a page, let the write fault, unprotect it
// in the handler, return), as JVMs and other runtimes do by the million.
// With panicstop installed the kernel calls panicstop's handler, which calls
// the program's (src/thread/program_signals.hpp); without it the kernel calls
// the program's directly.
//
//   fault_chain [faults_per_round [rounds [onstack]]]   (defaults 200000, 7)
//
// With `onstack` the program's handler is installed with SA_ONSTACK, as
// handlers that expect to run on an alternate stack are; without it, as
// HotSpot's and most crash handlers are, panicstop runs it on the stack the
// fault interrupted, as the kernel would, at the cost of a few system calls.
//
// Built twice from this file: fault_chain_plain (no panicstop at all) and
// fault_chain_panicstop (linked with the library, install() called). Run both,
// or the plain one under `panicstop run` too, and compare ns per fault.
// Prints the median and the minimum over the rounds. Measures; asserts nothing.
#include <signal.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#ifdef FAULT_CHAIN_WITH_PANICSTOP
#include "panicstop/panic.hpp"
#endif

namespace {

char* g_page = nullptr;
long g_page_size = 4096;

void unprotect(int, siginfo_t* info, void*) {
  char* addr = static_cast<char*>(info->si_addr);
  if (addr < g_page || addr >= g_page + g_page_size) abort();
  mprotect(g_page, size_t(g_page_size), PROT_READ | PROT_WRITE);
}

double now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}

// ns per iteration of protect + faulting write (+ the unprotect in the handler).
double round_ns(long faults, bool fault) {
  double start = now_ns();
  for (long i = 0; i < faults; ++i) {
    mprotect(g_page, size_t(g_page_size), fault ? PROT_READ : PROT_READ | PROT_WRITE);
    reinterpret_cast<volatile long*>(g_page)[i % 64] = i;
    if (!fault) mprotect(g_page, size_t(g_page_size), PROT_READ | PROT_WRITE);  // the handler's call, without the fault
  }
  return (now_ns() - start) / double(faults);
}

}  // namespace

int main(int argc, char** argv) {
  long faults = argc > 1 ? atol(argv[1]) : 200000;
  int rounds = argc > 2 ? atoi(argv[2]) : 7;
  bool onstack = argc > 3 && std::string(argv[3]) == "onstack";
  if (faults <= 0 || rounds <= 0) {
    fprintf(stderr, "usage: %s [faults_per_round > 0 [rounds > 0]]\n", argv[0]);
    return 2;
  }
#ifdef FAULT_CHAIN_WITH_PANICSTOP
  panicstop::install();
  const char* mode = "panicstop (linked, installed)";
#else
  const char* mode = getenv("LD_PRELOAD") != nullptr ? "panicstop run (preload)" : "no panicstop";
#endif
  g_page_size = sysconf(_SC_PAGESIZE);
  g_page = static_cast<char*>(mmap(nullptr, size_t(g_page_size), PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  struct sigaction sa {};
  sa.sa_sigaction = unprotect;
  sa.sa_flags = SA_SIGINFO | (onstack ? SA_ONSTACK : 0);
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, nullptr);

  std::vector<double> with_fault, without_fault;
  for (int r = 0; r < rounds; ++r) {
    with_fault.push_back(round_ns(faults, true));
    without_fault.push_back(round_ns(faults, false));
  }
  std::sort(with_fault.begin(), with_fault.end());
  std::sort(without_fault.begin(), without_fault.end());
  printf("%-32s %-10s faulting write: median %.0f ns, min %.0f ns; same work without the fault: median %.0f ns "
         "(%ld faults x %d rounds)\n",
         mode, onstack ? "SA_ONSTACK" : "own stack", with_fault[with_fault.size() / 2], with_fault[0], without_fault[without_fault.size() / 2], faults,
         rounds);
  return 0;
}
