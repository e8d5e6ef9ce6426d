// The cost panicstop adds to a runtime that faults on purpose: a garbage
// collector's write barrier (protect a page, let the write fault, unprotect it
// in the handler, return), as JVMs and other runtimes do by the million.
// With panicstop installed the kernel calls panicstop's handler, which calls
// the program's (src/thread/program_signals.hpp); without it the kernel calls
// the program's directly.
//
//   fault_chain [faults_per_round [rounds [MODE]]]   (defaults 200000, 7, own)
//
// MODE `own`: the barrier above, the handler installed without SA_ONSTACK, as
// HotSpot's and most crash handlers are: panicstop runs it on the stack the
// fault interrupted, as the kernel would, at the cost of a few system calls.
// `onstack`: the same handler with SA_ONSTACK. `resume` and `resume-onstack`:
// an implicit null check instead, as a JIT compiles one: a load through a null
// pointer, whose handler resumes the thread elsewhere (at the return address
// of the leaf that faulted) rather than retrying the instruction; panicstop
// then records the fault for a later abort (ResumedFault), which the barrier
// never pays for.
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

// The leaf whose load faults: no frame, so its return address is at the
// stack pointer (x86-64) or in the link register (aarch64).
extern "C" long fault_chain_load(const long* p);
asm(".text\n.globl fault_chain_load\n.type fault_chain_load,@function\nfault_chain_load:\n"
#if defined(__x86_64__)
    "  movq (%rdi), %rax\n  ret\n"
#elif defined(__aarch64__)
    "  ldr x0, [x0]\n  ret\n"
#endif
    ".size fault_chain_load, .-fault_chain_load\n");

void resume_at_return(int, siginfo_t*, void* ucontext) {
  auto* uc = static_cast<ucontext_t*>(ucontext);
#if defined(__x86_64__)
  greg_t* r = uc->uc_mcontext.gregs;
  r[REG_RIP] = *reinterpret_cast<greg_t*>(r[REG_RSP]);
  r[REG_RSP] += 8;
  r[REG_RAX] = -1;
#elif defined(__aarch64__)
  uc->uc_mcontext.pc = uc->uc_mcontext.regs[30];
  uc->uc_mcontext.regs[0] = uint64_t(-1);
#endif
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

const long* volatile g_null = nullptr;
long g_value = 1;

// ns per null check that faults (or, for comparison, that does not).
double resume_round_ns(long faults, bool fault) {
  double start = now_ns();
  long sum = 0;
  for (long i = 0; i < faults; ++i) sum += fault_chain_load(fault ? g_null : &g_value);
  if (sum != (fault ? -faults : faults)) abort();
  return (now_ns() - start) / double(faults);
}

}  // namespace

int main(int argc, char** argv) {
  long faults = argc > 1 ? atol(argv[1]) : 200000;
  int rounds = argc > 2 ? atoi(argv[2]) : 7;
  std::string kind = argc > 3 ? argv[3] : "own";
  bool onstack = kind == "onstack" || kind == "resume-onstack";
  bool resume = kind == "resume" || kind == "resume-onstack";
  if (faults <= 0 || rounds <= 0 || !(kind == "own" || onstack || resume)) {
    fprintf(stderr, "usage: %s [faults_per_round > 0 [rounds > 0 [own|onstack|resume|resume-onstack]]]\n", argv[0]);
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
  sa.sa_sigaction = resume ? resume_at_return : unprotect;
  sa.sa_flags = SA_SIGINFO | (onstack ? SA_ONSTACK : 0);
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, nullptr);

  std::vector<double> with_fault, without_fault;
  for (int r = 0; r < rounds; ++r) {
    with_fault.push_back(resume ? resume_round_ns(faults, true) : round_ns(faults, true));
    without_fault.push_back(resume ? resume_round_ns(faults, false) : round_ns(faults, false));
  }
  std::sort(with_fault.begin(), with_fault.end());
  std::sort(without_fault.begin(), without_fault.end());
  printf("%-32s %-10s %s: median %.0f ns, min %.0f ns; same work without the fault: median %.0f ns "
         "(%ld faults x %d rounds)\n",
         mode, onstack ? "SA_ONSTACK" : "own stack", resume ? "null check resumed" : "faulting write", with_fault[with_fault.size() / 2], with_fault[0], without_fault[without_fault.size() / 2], faults,
         rounds);
  return 0;
}
