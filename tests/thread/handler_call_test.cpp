// A program's signal handler that leaves by throwing, as GNAT raises
// Storage_Error and Constraint_Error out of its SIGSEGV and SIGFPE handlers:
// the exception must reach the code that faulted, through panicstop's frames
// as it does through the kernel's alone. This file is built with
// -fnon-call-exceptions (tests/thread/CMakeLists.txt), which makes a
// faulting load a place an exception may come from, as GNAT's code is.
#include "thread/handler_call.hpp"

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "panic/panic_test_util.hpp"
#include "panicstop/panic.hpp"
#include "support/child_process.hpp"

namespace panicstop {
namespace {

using testing::count_of;
using testing::exit_from_deep_down;
using testing::run_in_child;
using testing::say;

struct MemoryFault {
  uintptr_t address;
};

void throw_fault(int, siginfo_t* info, void*) { throw MemoryFault{reinterpret_cast<uintptr_t>(info->si_addr)}; }

void install_throwing_handler(int flags) {
  struct sigaction sa {};
  sa.sa_sigaction = throw_fault;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER | flags;  // GNAT's flags, SA_ONSTACK where it has a stack for them
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, nullptr);
}

volatile uintptr_t g_bad = 0x10;

// A leaf: its return address stays in the link register on aarch64, which
// the unwinder must get back as it was, not as the faulting pc.
__attribute__((noinline)) int load_in_a_leaf(uintptr_t address) { return *reinterpret_cast<volatile int*>(address); }

__attribute__((noinline)) int load_or_catch(int i) {
  try {
    if (i % 2 != 0) return load_in_a_leaf(g_bad + uintptr_t(i % 4) * 4);
    return *reinterpret_cast<volatile int*>(g_bad + uintptr_t(i % 4) * 4);
  } catch (const MemoryFault& f) {
    return f.address == g_bad + uintptr_t(i % 4) * 4 ? 1 : 1000;
  }
}

// In a child: 1000 faults, each caught where it happened; then exit.
void thousand_caught_faults(bool with_panicstop, int flags) {
  if (with_panicstop) install();
  stack_t own{};
  if ((flags & SA_ONSTACK) != 0) {
    static char stack[64 * 1024];
    own.ss_sp = stack;
    own.ss_size = sizeof stack;
    sigaltstack(&own, nullptr);
  }
  install_throwing_handler(flags);
  int caught = 0;
  for (int i = 0; i < 1000; ++i) caught += load_or_catch(i);
  say("caught=" + std::to_string(caught) + "\n");
  exit_from_deep_down(8);
}

void expect_every_fault_caught(const testing::ChildResult& r) {
  EXPECT_FALSE(r.hung) << r.describe() << "\n" << r.output;
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("caught=1000\n"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("panic:"), std::string::npos) << r.output;
}

TEST(HandlerCall, WithoutPanicstopTheProgramCatchesItsFaults) {
  expect_every_fault_caught(run_in_child([] { thousand_caught_faults(false, 0); }));
}

TEST(HandlerCall, AnExceptionFromAHandlerOnTheFaultingStackReachesTheFaultingCode) {
  expect_every_fault_caught(run_in_child([] { thousand_caught_faults(true, 0); }));
}

TEST(HandlerCall, AnExceptionFromAHandlerOnItsAlternateStackReachesTheFaultingCode) {
  expect_every_fault_caught(run_in_child([] { thousand_caught_faults(true, SA_ONSTACK); }));
}

// A server that ends only the thread that faulted: pthread_exit() from its
// SIGSEGV handler unwinds that thread (a forced unwind, through the signal
// frame) and the process goes on.
void exit_thread(int, siginfo_t*, void*) { pthread_exit(reinterpret_cast<void*>(42)); }

TEST(HandlerCall, PthreadExitFromAHandlerEndsOnlyTheFaultingThread) {
  auto r = run_in_child([] {
    install();
    struct sigaction sa {};
    sa.sa_sigaction = exit_thread;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, nullptr);
    int ended = 0;
    for (int i = 0; i < 100; ++i) {
      pthread_t t;
      void* result = nullptr;
      pthread_create(&t, nullptr, [](void*) -> void* {
        *reinterpret_cast<volatile int*>(g_bad) = 1;
        return nullptr;
      }, nullptr);
      pthread_join(t, &result);
      if (result == reinterpret_cast<void*>(42)) ++ended;
    }
    say("ended=" + std::to_string(ended) + "\n");
    exit(0);
  });
  EXPECT_FALSE(r.hung) << r.describe() << "\n" << r.output;
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("ended=100\n"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("panic:"), std::string::npos) << r.output;
}

// Nobody may catch it (a noexcept frame is in the way): the C++ runtime
// calls std::terminate, whose abort() panics.
__attribute__((noinline)) int load_where_nothing_may_throw() noexcept {
  return *reinterpret_cast<volatile int*>(g_bad);
}

TEST(HandlerCall, AnExceptionNobodyCatchesEndsInThePanic) {
  auto r = run_in_child([] {
    install();
    install_throwing_handler(0);
    int v = load_where_nothing_may_throw();
    say("not reached " + std::to_string(v) + "\n");
    exit(0);
  });
  EXPECT_FALSE(r.hung) << r.describe() << "\n" << r.output;
  EXPECT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << "\n" << r.output;
  EXPECT_EQ(count_of(r.output, "panic: "), 1u) << r.output;
  EXPECT_EQ(r.output.find("not reached"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace panicstop
