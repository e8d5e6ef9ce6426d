// The program's signal handlers beside panicstop's (src/thread/program_signals):
// crash handlers that give up, runtimes that fix their own faults, the
// program's own use of a reserved signal, and masks that would blind the stop.
// Every crash runs in a child process with a deadline.
#include <fcntl.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <setjmp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "panic/panic_test_util.hpp"
#include "panicstop/panic.hpp"
#include "support/child_process.hpp"
#include "support/faults.hpp"
#include "support/seccomp.hpp"

namespace panicstop {
namespace {

using testing::count_of;
using testing::exit_from_deep_down;
using testing::park;
using testing::run_in_child;
using testing::say;
using testing::TempDir;
using testing::wait_for_threads;
using testing::with_env;

constexpr int kHardStop = 64 - 2;  // SIGRTMAX - 2 on Linux (glibc's SIGRTMAX is a function)

volatile uintptr_t g_bad_address = 0x10;  // read at run time: the compiler cannot see the fault coming

__attribute__((noinline)) void write_to_address_0x10() {
  *reinterpret_cast<volatile int*>(g_bad_address) = 1;
}

void start_parked_threads(int n) {
  for (int i = 0; i < n; ++i) std::thread([] { park(); }).detach();
  wait_for_threads(n + 1);
}

void install_handler(int sig, void (*fn)(int, siginfo_t*, void*), int flags) {
  struct sigaction sa {};
  sa.sa_sigaction = fn;
  sa.sa_flags = SA_SIGINFO | flags;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, nullptr);
}

std::string report_in(const TempDir& dir) {
  for (const std::string& name : dir.list())
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".txt") == 0)
      return testing::read_file(dir.path() + "/" + name);
  return "";
}

// The order a crash handler and panicstop run in, and what the panic reports.
void expect_panic_after_program_handler(const testing::ChildResult& r, const TempDir& dumps, int parked) {
  EXPECT_FALSE(r.hung) << r.describe() << "\n" << r.output;
  EXPECT_TRUE(r.signaled && r.term_signal == SIGSEGV) << r.describe() << "\n" << r.output;
  auto own = r.output.find("program handler ran");
  auto banner = r.output.find("panic: fatal signal SIGSEGV (SEGV_MAPERR) at 0x10");
  ASSERT_NE(own, std::string::npos) << r.output;
  ASSERT_NE(banner, std::string::npos) << r.output;
  EXPECT_LT(own, banner) << r.output;
  EXPECT_NE(r.output.find("the program's own handler ran first and gave up"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(std::to_string(parked) + " other threads stopped"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("did not stop"), std::string::npos) << r.output;
  std::string report = report_in(dumps);
  EXPECT_NE(report.find("write_to_address_0x10"), std::string::npos) << "the crash site is in the report:\n" << report;
  EXPECT_EQ(count_of(r.output, "panic: "), 1u) << r.output;
}

// redis and mariadb: log, reset to SIG_DFL, raise again.
void reset_and_raise_again(int sig, siginfo_t*, void*) {
  say("program handler ran for signal %d\n", sig);
  signal(sig, SIG_DFL);
  kill(getpid(), sig);
}

TEST(ProgramSignals, ACrashHandlerThatResetsAndRaisesAgainGivesUpToThePanic) {
  TempDir dumps;
  auto r = run_in_child(
      [] {
        install();
        start_parked_threads(4);
        install_handler(SIGSEGV, reset_and_raise_again, SA_RESETHAND | SA_NODEFER);
        write_to_address_0x10();
      },
      with_env({{"PANICSTOP_DUMP_DIR", dumps.path()}, {"PANICSTOP_DUMP", "text"}}));
  expect_panic_after_program_handler(r, dumps, 4);
}

// redis's crash-time memory test: fill every anonymous mapping with patterns
// and restore it, the one holding the thread's control block (and glibc's
// rseq area in it) among them. Here only the area's rseq_cs word, and one
// context switch while it holds a pattern: the kernel reads the word then,
// and with the area registered it kills the thread with a SIGSEGV that no
// handler sees. Then reset and raise again, as redis does.
volatile uint64_t* rseq_cs_word() {
  const auto* size = static_cast<const unsigned*>(dlsym(RTLD_DEFAULT, "__rseq_size"));
  const auto* offset = static_cast<const ptrdiff_t*>(dlsym(RTLD_DEFAULT, "__rseq_offset"));
  if (size == nullptr || offset == nullptr || *size == 0) return nullptr;
  auto* area = static_cast<char*>(__builtin_thread_pointer()) + *offset;
  // cpu_id (the second word) is negative where this thread's registration failed (qemu).
  if (reinterpret_cast<volatile int32_t*>(area)[1] < 0) return nullptr;
  return reinterpret_cast<volatile uint64_t*>(area + 8);
}

volatile uint64_t* g_rseq_cs = nullptr;  // found before the fault: the handler's area may be let go

void test_memory_of_the_control_block(int sig, siginfo_t*, void*) {
  volatile uint64_t* word = g_rseq_cs;
  uint64_t saved = *word;
  *word = 0x5a5a5a5a5a5a5a5aull;
  struct timespec pause {0, 1000000};
  nanosleep(&pause, nullptr);  // a context switch: the kernel reads the word on the way back
  *word = saved;
  say("program handler ran its memory test\n");
  signal(sig, SIG_DFL);
  kill(getpid(), sig);
}

TEST(ProgramSignals, ACrashHandlerThatOverwritesTheRseqAreaForAMomentStillEndsInADump) {
  if (rseq_cs_word() == nullptr) GTEST_SKIP() << "this C library or machine registers no rseq area";
  TempDir dumps;
  auto r = run_in_child(
      [] {
        g_rseq_cs = rseq_cs_word();
        install();
        install_handler(SIGSEGV, test_memory_of_the_control_block, SA_RESETHAND | SA_NODEFER);
        write_to_address_0x10();
      },
      with_env({{"PANICSTOP_DUMP_DIR", dumps.path()}, {"PANICSTOP_DUMP", "text"}}));
  EXPECT_FALSE(r.hung) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("program handler ran its memory test\n"), std::string::npos) << r.output;
  EXPECT_NE(report_in(dumps).find("write_to_address_0x10"), std::string::npos) << r.describe() << "\n" << r.output;
}

// A one-shot handler runs with the area let go, and a probe that leaves its
// handler with a long jump gets it back: the kernel writes the thread's cpu
// into a registered area (so cpu_id >= 0) and -1 into one it lets go.
sigjmp_buf g_probe_jump;
volatile int32_t g_cpu_id_in_handler = 0;

int32_t rseq_cpu_id() { return reinterpret_cast<volatile int32_t*>(g_rseq_cs)[-1]; }

void probe_jumps_out(int, siginfo_t*, void*) {
  g_cpu_id_in_handler = rseq_cpu_id();
  siglongjmp(g_probe_jump, 1);
}

TEST(ProgramSignals, AOneShotHandlerRunsWithoutTheRseqAreaAndAJumpOutOfItGivesItBack) {
  if (rseq_cs_word() == nullptr) GTEST_SKIP() << "this C library or machine registers no rseq area";
  auto r = run_in_child([] {
    g_rseq_cs = rseq_cs_word();
    install();
    install_handler(SIGSEGV, probe_jumps_out, SA_RESETHAND | SA_NODEFER);
    if (sigsetjmp(g_probe_jump, 1) == 0) write_to_address_0x10();
    sched_yield();  // a return to the thread, where the kernel writes the area
    say("in the handler %d, after it %d\n", int(g_cpu_id_in_handler), rseq_cpu_id() >= 0 ? 1 : 0);
    _exit(0);
  });
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("in the handler -1, after it 1\n"), std::string::npos) << r.output;
}

void exit_from_handler(int, siginfo_t*, void*) {
  say("program handler ran, exiting\n");
  _exit(3);
}

TEST(ProgramSignals, ACrashHandlerThatExitsGivesUpToThePanic) {
  TempDir dumps;
  auto r = run_in_child(
      [] {
        install();
        start_parked_threads(3);
        install_handler(SIGSEGV, exit_from_handler, 0);
        write_to_address_0x10();
      },
      with_env({{"PANICSTOP_DUMP_DIR", dumps.path()}, {"PANICSTOP_DUMP", "text"}}));
  expect_panic_after_program_handler(r, dumps, 3);
}

void abort_from_handler(int, siginfo_t*, void*) {
  say("program handler ran, aborting\n");
  abort();
}

TEST(ProgramSignals, ACrashHandlerThatAbortsGivesUpToThePanic) {
  TempDir dumps;
  auto r = run_in_child(
      [] {
        install();
        start_parked_threads(2);
        install_handler(SIGSEGV, abort_from_handler, 0);
        write_to_address_0x10();
      },
      with_env({{"PANICSTOP_DUMP_DIR", dumps.path()}, {"PANICSTOP_DUMP", "text"}}));
  expect_panic_after_program_handler(r, dumps, 2);
}

// A process started with SIGABRT ignored (a supervisor's SIG_IGN survives
// exec): abort() still ends it, glibc forcing the default action past the
// interposer, so the panic must come first. A SIGABRT from another process
// stays ignored, as the kernel has it.
TEST(ProgramSignals, AbortWithSigabrtIgnoredStillPanics) {
  auto r = run_in_child([] {
    install();
    signal(SIGABRT, SIG_IGN);
    pid_t self = getpid();
    pid_t sender = fork();
    if (sender == 0) _exit(kill(self, SIGABRT) == 0 ? 0 : 1);
    int status = 0;
    while (waitpid(sender, &status, 0) < 0 && errno == EINTR) {
    }
    say("ignored from outside: %d\n", WIFEXITED(status) && WEXITSTATUS(status) == 0);
    abort();
  });
  EXPECT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("ignored from outside: 1\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("panic: fatal signal SIGABRT (SI_TKILL) in thread "), std::string::npos) << r.output;
}

// A garbage collector's write barrier: protect a page, let the write fault,
// unprotect it in the handler and return. Every fault is the program's own.
char* g_barrier_page = nullptr;
std::atomic<int> g_barrier_faults{0};

void unprotect_on_fault(int, siginfo_t* info, void*) {
  char* addr = static_cast<char*>(info->si_addr);
  if (addr < g_barrier_page || addr >= g_barrier_page + 4096) {
    signal(SIGSEGV, SIG_DFL);  // not ours: give up as a runtime does
    return;
  }
  g_barrier_faults.fetch_add(1);
  mprotect(g_barrier_page, 4096, PROT_READ | PROT_WRITE);
}

TEST(ProgramSignals, ARuntimeThatFixesItsOwnFaultsKeepsRunning) {
  auto r = run_in_child([] {
    install();
    start_parked_threads(2);
    g_barrier_page = static_cast<char*>(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    install_handler(SIGSEGV, unprotect_on_fault, 0);
    constexpr int kRounds = 20000;
    for (int i = 0; i < kRounds; ++i) {
      mprotect(g_barrier_page, 4096, PROT_READ);
      reinterpret_cast<volatile int*>(g_barrier_page)[i % 1024] = i;
    }
    say("faults=%d\n", g_barrier_faults.load());
    // A fault that is not the runtime's still ends in the panic.
    write_to_address_0x10();
  });
  EXPECT_FALSE(r.hung) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("faults=20000\n"), std::string::npos) << r.output;
  EXPECT_TRUE(r.signaled && r.term_signal == SIGSEGV) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("panic: fatal signal SIGSEGV (SEGV_MAPERR) at 0x10"), std::string::npos) << r.output;
  EXPECT_EQ(count_of(r.output, "panic: "), 1u) << r.output;
}

// Mono's way with a crash in native code: its handler (on an alternate
// stack) sets the saved pc to its crash reporter and returns, so the reporter
// runs on the thread's own stack and ends in abort(). The abort is the panic;
// the fault it is about must be named beside it, with both sites
// (testing::resume_elsewhere is that handler).
__attribute__((noinline)) void crash_reporter_that_aborts() {
  say("crash reporter ran\n");
  abort();
}

__attribute__((noinline)) void resumed_elsewhere_then_faults() {
  say("resumed elsewhere\n");
  signal(SIGSEGV, SIG_DFL);
  write_to_address_0x10();
}

// The abort comes from another process (a supervisor's kill -ABRT).
__attribute__((noinline)) void resumed_elsewhere_then_killed() {
  say("resumed elsewhere\n");
  pid_t self = getpid();
  if (fork() == 0) _exit(kill(self, SIGABRT) == 0 ? 0 : 1);
  for (;;) pause();
}

TEST(ProgramSignals, AnAbortAfterAHandlerResumedAFaultElsewhereNamesThatFault) {
  TempDir dumps;
  auto r = run_in_child(
      [] {
        install();
        start_parked_threads(2);
        testing::resume_at = crash_reporter_that_aborts;
        install_handler(SIGSEGV, testing::resume_elsewhere, SA_ONSTACK);
        panicstop_test_load_at_entry(reinterpret_cast<const long*>(g_bad_address));
      },
      with_env({{"PANICSTOP_DUMP_DIR", dumps.path()}, {"PANICSTOP_DUMP", "text"}}));
  EXPECT_FALSE(r.hung) << r.describe() << "\n" << r.output;
  EXPECT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("crash reporter ran\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("panic: fatal signal SIGABRT (SI_TKILL) in thread "), std::string::npos) << r.output;
  std::string report = report_in(dumps);
  EXPECT_TRUE(std::regex_search(report, std::regex("\n  signal SIGABRT \\(SI_TKILL\\)\n  [0-9]+ ms before: signal "
                                                   "SIGSEGV \\(SEGV_MAPERR: address not mapped\\), fault address "
                                                   "0x10, at 0x[0-9a-f]+ panicstop_test_load_at_entry\\+0x0 "
                                                   "\\(\\S+\\); the program's handler resumed the thread at "
                                                   "0x[0-9a-f]+ [^;]*crash_reporter_that_aborts[^;]*\\+0x0 ")))
      << report;
  // Its frame among the stack's, named as the faulting instruction it is.
  EXPECT_TRUE(std::regex_search(report, std::regex("\n  #[1-9][0-9]* 0x[0-9a-f]+ panicstop_test_load_at_entry\\+0x0 ")))
      << report;
}

// A panic that is a fault of its own names no earlier one: its own fault is
// what it is about; nor does a signal another process sent, nor an abort
// after the faulting frame left the stack (a JVM's null check or V8's
// WebAssembly trap, caught by the program, then an unrelated abort). And a
// fault the handler fixed and retried (its pc unchanged) is not resumed
// elsewhere.
TEST(ProgramSignals, AFaultOfThePanicsOwnOrOneRetriedOrAKillOrOneLeftNamesNoEarlierFault) {
  enum Case { kOwnFault, kRetried, kKilled, kFrameLeft };
  for (Case c : {kOwnFault, kRetried, kKilled, kFrameLeft}) {
    bool retried = c == kRetried;
    TempDir dumps;
    auto r = run_in_child([c, retried] {
      install();
      if (retried) {
        g_barrier_page =
            static_cast<char*>(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        install_handler(SIGSEGV, unprotect_on_fault, 0);
        mprotect(g_barrier_page, 4096, PROT_READ);
        reinterpret_cast<volatile int*>(g_barrier_page)[0] = 1;
        say("faults=%d\n", g_barrier_faults.load());
        abort();
      }
      testing::resume_as_called_from_the_fault = c != kFrameLeft;
      testing::resume_at = c == kKilled      ? resumed_elsewhere_then_killed
                    : c == kFrameLeft ? crash_reporter_that_aborts
                                      : resumed_elsewhere_then_faults;
      install_handler(SIGSEGV, testing::resume_elsewhere, SA_ONSTACK);
      write_to_address_0x10();
    }, with_env({{"PANICSTOP_DUMP_DIR", dumps.path()}, {"PANICSTOP_DUMP", "text"}}));
    EXPECT_FALSE(r.hung) << r.describe() << "\n" << r.output;
    EXPECT_TRUE(r.signaled && r.term_signal == (c == kOwnFault ? SIGSEGV : SIGABRT)) << r.describe() << "\n" << r.output;
    std::string report = report_in(dumps);
    EXPECT_NE(report.find("\n  signal SIG"), std::string::npos) << report;
    EXPECT_EQ(report.find(" ms before"), std::string::npos) << report;
    if (c == kKilled) {
      EXPECT_NE(r.output.find("panic: fatal signal SIGABRT (SI_USER)"), std::string::npos) << r.output;
    }
    EXPECT_NE(r.output.find(retried          ? "faults=1\n"
                            : c == kFrameLeft ? "crash reporter ran\n"
                                              : "resumed elsewhere\n"),
              std::string::npos)
        << r.output;
    EXPECT_EQ(r.output.find(" ms before"), std::string::npos) << r.output;
    EXPECT_EQ(count_of(r.output, "panic: "), 1u) << r.output;
  }
}

// A memory probe: the handler leaves with siglongjmp and never returns.
sigjmp_buf g_probe;
void leave_by_longjmp(int, siginfo_t*, void*) { siglongjmp(g_probe, 1); }

TEST(ProgramSignals, AHandlerThatLeavesWithSiglongjmpLeavesNothingBehind) {
  auto r = run_in_child([] {
    install();
    install_handler(SIGSEGV, leave_by_longjmp, 0);
    int recovered = 0;
    for (int i = 0; i < 1000; ++i) {
      if (sigsetjmp(g_probe, 1) == 0) write_to_address_0x10();
      else ++recovered;
    }
    say("recovered=%d\n", recovered);
    exit(0);  // not a crash handler giving up: the probes are long over
  });
  EXPECT_FALSE(r.hung) << r.describe() << "\n" << r.output;
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("recovered=1000\n"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("panic:"), std::string::npos) << r.output;
}

// A runtime that unwinds out of its handler without longjmp: SBCL's
// handler-case around a memory fault or a type error, an exception thrown
// through the signal frame; here setcontext(), which panicstop does not
// interpose. Nothing panicstop sees tells that the handler is gone; the
// program then runs on, deeper than the handler ran, faults again, and exits.
ucontext_t g_unwind_to;
volatile bool g_unwound = false;
void leave_by_unwinding(int, siginfo_t*, void*) {
  g_unwound = true;
  setcontext(&g_unwind_to);
}

__attribute__((noinline)) int deeper_than_the_handler(int levels) {
  volatile char scratch[512];
  for (size_t i = 0; i < sizeof scratch; ++i) scratch[i] = char(i + levels);
  return levels == 0 ? scratch[7] : deeper_than_the_handler(levels - 1) + scratch[levels];
}

__attribute__((noinline)) bool fault_and_unwind() {
  g_unwound = false;
  getcontext(&g_unwind_to);
  if (g_unwound) return true;
  write_to_address_0x10();
  return false;
}

void fault_unwind_and_exit_deep_down(bool refuse_process_vm_readv) {
  install();
  // In a container without CAP_SYS_PTRACE (Docker's default seccomp profile).
  if (refuse_process_vm_readv && !testing::refuse_system_call(SYS_process_vm_readv)) _exit(3);
  // As SBCL's SIGTRAP handler: without SA_ONSTACK (it runs on the faulting
  // stack), with SA_NODEFER (nothing restores the mask after it).
  install_handler(SIGSEGV, leave_by_unwinding, SA_NODEFER);
  stack_t before{}, after{};
  sigaltstack(nullptr, &before);
  int recovered = 0;
  for (int i = 0; i < 1000; ++i) {
    if (fault_and_unwind()) ++recovered;
    deeper_than_the_handler(8);
  }
  sigaltstack(nullptr, &after);
  say("recovered=%d\n", recovered);
  // While such a handler runs, the thread's alternate stack is another of
  // panicstop's, and a handler that never returns leaves it so: it must be
  // whole (it once ended below each left handler's frames, and each
  // successor ran lower, until a nested signal landed over live frames).
  say("alternate stack: %zu bytes before, %zu after\n", before.ss_size, after.ss_size);
  if (getenv("PANICSTOP_TEST_CRASH_AFTER_UNWINDS") != nullptr) {
    start_parked_threads(3);
    install_handler(SIGSEGV, reset_and_raise_again, SA_RESETHAND | SA_NODEFER);
    write_to_address_0x10();
  }
  exit_from_deep_down(8);  // the program's own exit, long after its handlers
}

void expect_clean_exit_after_unwinds(const testing::ChildResult& r) {
  EXPECT_FALSE(r.hung) << r.describe() << "\n" << r.output;
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("recovered=1000\n"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("panic:"), std::string::npos) << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex(R"(alternate stack: (\d+) bytes before, (\d+) after)")))
      << r.output;
  EXPECT_EQ(m[1].str(), m[2].str()) << r.output;
}

TEST(ProgramSignals, AHandlerLeftByAnUnwindThatIsNotALongjmpLeavesNothingBehind) {
  expect_clean_exit_after_unwinds(run_in_child([] { fault_unwind_and_exit_deep_down(false); }));
}

// Without process_vm_readv the stack above the handler is read directly,
// once mincore() has said it is mapped.
TEST(ProgramSignals, AHandlerLeftByAnUnwindIsToldWhereProcessVmReadvIsRefused) {
  if (!testing::sandbox_available()) GTEST_SKIP() << "no seccomp filter can be set here";
  expect_clean_exit_after_unwinds(run_in_child([] { fault_unwind_and_exit_deep_down(true); }));
}

// The crash that comes after: its program handler runs on the interrupted
// stack too, and gives up by raising again from inside. That nested signal
// must land below the live frames of the first, whose fault the report
// names (it landed over them once the left handlers had walked the
// alternate stack down: the report named the raise, SI_USER).
TEST(ProgramSignals, ACrashAfterAThousandHandlersLeftByUnwindingStillGetsItsDump) {
  TempDir dumps;
  auto r = run_in_child([] { fault_unwind_and_exit_deep_down(false); },
                        with_env({{"PANICSTOP_DUMP_DIR", dumps.path()}, {"PANICSTOP_DUMP", "text,core"},
                                  {"PANICSTOP_CORE_LIMIT", "ignore"}, {"PANICSTOP_TEST_CRASH_AFTER_UNWINDS", "1"}}));
  EXPECT_NE(r.output.find("recovered=1000\n"), std::string::npos) << r.output;
  expect_panic_after_program_handler(r, dumps, 3);
  EXPECT_NE(r.output.find(".core\n"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("cannot write"), std::string::npos) << r.output;
}

// A handler that only logs and returns: the same fault repeats at once.
void log_and_return(int, siginfo_t*, void*) { say("program handler ran, returning\n"); }

TEST(ProgramSignals, AHandlerThatChangesNothingGivesUpAtTheRepeat) {
  TempDir dumps;
  auto r = run_in_child(
      [] {
        install();
        start_parked_threads(1);
        install_handler(SIGSEGV, log_and_return, 0);
        write_to_address_0x10();
      },
      with_env({{"PANICSTOP_DUMP_DIR", dumps.path()}, {"PANICSTOP_DUMP", "text"}}));
  expect_panic_after_program_handler(r, dumps, 1);
  EXPECT_EQ(count_of(r.output, "program handler ran"), 1u) << r.output;
}

std::atomic<int> g_sent_seen{0};
void count_sent(int, siginfo_t*, void*) { g_sent_seen.fetch_add(1); }

TEST(ProgramSignals, ASentSignalWhoseHandlerReturnsIsHandled) {
  auto r = run_in_child([] {
    install();
    install_handler(SIGSEGV, count_sent, 0);
    raise(SIGSEGV);
    kill(getpid(), SIGSEGV);
    say("seen=%d\n", g_sent_seen.load());
    exit(0);
  });
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("seen=2\n"), std::string::npos) << r.output;
}

TEST(ProgramSignals, AFaultWhileTheProgramBlocksItsSignalStillPanics) {
  auto r = run_in_child([] {
    install();
    install_handler(SIGSEGV, count_sent, 0);
    sigset_t segv;
    sigemptyset(&segv);
    sigaddset(&segv, SIGSEGV);
    pthread_sigmask(SIG_BLOCK, &segv, nullptr);
    sigset_t now;
    pthread_sigmask(SIG_BLOCK, nullptr, &now);
    say("program sees SIGSEGV blocked: %d\n", sigismember(&now, SIGSEGV));
    write_to_address_0x10();  // the kernel would end the process here, with no handler
  });
  EXPECT_TRUE(r.signaled && r.term_signal == SIGSEGV) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("program sees SIGSEGV blocked: 1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("panic: fatal signal SIGSEGV (SEGV_MAPERR) at 0x10"), std::string::npos) << r.output;
  EXPECT_EQ(g_sent_seen.load(), 0);
}

// The JVM asks what is installed before it installs its own handlers.
TEST(ProgramSignals, SigactionReportsTheProgramsActionNotPanicstops) {
  auto r = run_in_child([] {
    install();
    struct sigaction before {};
    sigaction(SIGSEGV, nullptr, &before);
    say("before=%s\n", before.sa_handler == SIG_DFL ? "SIG_DFL" : "other");
    install_handler(SIGSEGV, count_sent, 0);
    struct sigaction after {};
    sigaction(SIGSEGV, nullptr, &after);
    say("after=%s\n", after.sa_sigaction == count_sent ? "mine" : "other");
    auto previous = signal(SIGSEGV, SIG_DFL);
    say("signal returned=%s\n", reinterpret_cast<void*>(previous) == reinterpret_cast<void*>(count_sent) ? "mine" : "other");
    // The kernel still calls panicstop's handler.
    void* kernel = testing::kernel_handler(SIGSEGV);
    say("kernel=%s\n", kernel != nullptr && kernel != reinterpret_cast<void*>(count_sent) ? "panicstop" : "other");
    exit(0);
  });
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("before=SIG_DFL\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("after=mine\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("signal returned=mine\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("kernel=panicstop\n"), std::string::npos) << r.output;
}

// One thread keeps changing a signal panicstop took while another forks, as
// a runtime installing its handlers races a fork. A write in progress at the
// fork must not leave that signal's record busy in the child, where a
// sigaction() of it (a child resetting its handlers before exec) would wait
// for a thread the child does not have.
TEST(ProgramSignals, AChildForkedWhileAThreadChangesATakenSignalCanChangeItToo) {
  auto r = run_in_child(
      [] {
        install();
        static std::atomic<bool> stop{false};
        std::thread changer([] {
          while (!stop.load(std::memory_order_relaxed)) {
            install_handler(SIGSEGV, count_sent, 0);
            signal(SIGSEGV, SIG_DFL);
          }
        });
        int failed = 0;
        for (int i = 0; i < 100 && failed == 0; ++i)
          failed = testing::run_in_fork_child([] {
            if (signal(SIGSEGV, SIG_DFL) == SIG_ERR) _exit(3);
          });
        stop = true;
        changer.join();
        say("failed=%d\n", failed);
      },
      with_env({}, 20000));
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("failed=0\n"), std::string::npos) << r.output;
}

// OpenJDK's libnio and libnet: a no-op handler for SIGRTMAX-2, without
// SA_RESTART, to interrupt blocking I/O by closing a descriptor.
void jdk_interrupt_handler(int) {}
std::atomic<int> g_interrupts{0};
void counting_interrupt_handler(int) { g_interrupts.fetch_add(1); }

void install_plain(int sig, void (*fn)(int)) {
  struct sigaction sa {};
  sa.sa_handler = fn;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked read must return EINTR
  sigaction(sig, &sa, nullptr);
}

TEST(ProgramSignals, APanicStopsEveryThreadWhenTheProgramHandlesTheHardStopSignal) {
  auto r = run_in_child(
      [] {
        install();
        install_plain(kHardStop, jdk_interrupt_handler);
        start_parked_threads(6);
        panic("with the JDK's handler in place");
      },
      with_env({{"PANICSTOP_STOP_TIMEOUT_MS", "500"}, {"PANICSTOP_DUMP", "none"}}));
  EXPECT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("6 other threads stopped"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("did not stop"), std::string::npos) << r.output;
}

char kernel_state(int tid) {
  std::string stat = testing::read_file("/proc/self/task/" + std::to_string(tid) + "/stat");
  auto close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() ? '?' : stat[close + 2];
}

TEST(ProgramSignals, TheProgramsOwnUseOfTheHardStopSignalStillInterruptsBlockingIo) {
  auto r = run_in_child([] {
    install();
    install_plain(kHardStop, counting_interrupt_handler);
    int fds[2];
    if (pipe(fds) != 0) _exit(3);
    std::atomic<int> tid{0};
    std::atomic<long> result{1};
    std::atomic<int> error{0};
    std::thread reader([&] {
      tid.store(int(syscall(SYS_gettid)));
      char c;
      long n = read(fds[0], &c, 1);
      error.store(n < 0 ? errno : 0);
      result.store(n);
    });
    while (tid.load() == 0 || kernel_state(tid.load()) != 'S') sched_yield();
    pthread_kill(reader.native_handle(), kHardStop);
    reader.join();
    say("read=%ld eintr=%d interrupts=%d\n", result.load(), error.load() == EINTR, g_interrupts.load());
    exit(0);
  });
  EXPECT_FALSE(r.hung) << r.describe() << "\n" << r.output;
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("read=-1 eintr=1 interrupts=1\n"), std::string::npos) << r.output;
}

// A handler installed with the raw system call never passes the interposer:
// the stop finds it, puts panicstop's back, and says so.
struct KernelAction {
  void* handler;
  unsigned long flags;
  void* restorer;
  uint64_t mask;
};

TEST(ProgramSignals, AStopHandlerReplacedBehindTheInterposersBackIsPutBack) {
  TempDir dumps;
  auto r = run_in_child(
      [] {
        install();
        start_parked_threads(3);
        KernelAction glibc{};  // any action glibc installed carries its restorer
        syscall(SYS_rt_sigaction, SIGSEGV, nullptr, &glibc, 8);
        KernelAction noop{reinterpret_cast<void*>(jdk_interrupt_handler), glibc.flags & 0x04000000ul,
                          glibc.restorer, 0};
        syscall(SYS_rt_sigaction, kHardStop, &noop, nullptr, 8);
        panic("after a raw sigaction");
      },
      with_env({{"PANICSTOP_STOP_TIMEOUT_MS", "500"}, {"PANICSTOP_DUMP", "text"}, {"PANICSTOP_DUMP_DIR", dumps.path()}}));
  EXPECT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("3 other threads stopped"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("the hard-stop signal's handler had been replaced"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("did not stop"), std::string::npos) << r.output;
  std::string report = report_in(dumps);
  EXPECT_NE(report.find("\nnote: the hard-stop signal's handler had been replaced"), std::string::npos) << report;
}

TEST(ProgramSignals, ThreadsThatBlockEverySignalAreStillStopped) {
  auto r = run_in_child(
      [] {
        install();
        for (int i = 0; i < 4; ++i)
          std::thread([i] {
            sigset_t all;
            sigfillset(&all);
            if (i % 2 == 0) pthread_sigmask(SIG_BLOCK, &all, nullptr);
            else sigprocmask(SIG_BLOCK, &all, nullptr);
            park();
          }).detach();
        // As jemalloc's background thread is made: created with everything blocked.
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        std::thread([] { park(); }).detach();
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
        wait_for_threads(6);
        panic("threads that block every signal");
      },
      with_env({{"PANICSTOP_STOP_TIMEOUT_MS", "500"}, {"PANICSTOP_DUMP", "none"}}));
  EXPECT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("5 other threads stopped"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("did not stop"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace panicstop
