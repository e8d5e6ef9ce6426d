// How the process ends (PANICSTOP_ON_PANIC), the chaining rule for handlers
// installed before install(), and the rejection of bad tunables.
#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "panic_test_util.hpp"
#include "panicstop/panic.hpp"
#include "support/child_process.hpp"

namespace panicstop {
namespace {

using testing::ChildOptions;
using testing::run_command;
using testing::run_in_child;
using testing::with_env;


void panic_now() {
  install();
  panic("policy");
}

volatile uintptr_t g_bad_address = 16;
void fault_now() {
  install();
  *reinterpret_cast<volatile int*>(g_bad_address) = 1;
}

TEST(DiePolicy, DieReraisesTheOriginalSignal) {
  auto r = run_in_child(panic_now, with_env({{"PANICSTOP_ON_PANIC", "die"}}));
  EXPECT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << "\n" << r.output;
  r = run_in_child(fault_now);
  EXPECT_TRUE(r.signaled && r.term_signal == SIGSEGV) << r.describe() << "\n" << r.output;
}

TEST(DiePolicy, ExitUses128PlusTheSignal) {
  auto r = run_in_child(panic_now, with_env({{"PANICSTOP_ON_PANIC", "exit"}}));
  EXPECT_TRUE(r.exited && r.exit_code == 128 + SIGABRT) << r.describe() << "\n" << r.output;
  r = run_in_child(fault_now, with_env({{"PANICSTOP_ON_PANIC", "exit"}}));
  EXPECT_TRUE(r.exited && r.exit_code == 128 + SIGSEGV) << r.describe() << "\n" << r.output;
}

TEST(DiePolicy, RestartRunsTheProgramAgainWithItsArguments) {
  auto r = run_command({PANIC_HELPER, "restart", "same-args"}, with_env({{"PANICSTOP_ON_PANIC", "restart"}}));
  EXPECT_FALSE(r.hung) << r.describe();
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("panic: first run"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("restarted run=1 arg=same-args"), std::string::npos) << r.output;
}

TEST(DiePolicy, HaltWaitsForADebugger) {
  auto r = run_in_child(panic_now, with_env({{"PANICSTOP_ON_PANIC", "halt"}}, 1500));
  EXPECT_TRUE(r.hung) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("panic: policy"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("attach a debugger: gdb -p "), std::string::npos) << r.output;
}

// The program's handler of a fault runs first, with the fault's siginfo; one
// that returns without changing anything makes the same fault repeat at once,
// which is the program giving up: the panic follows, reporting that fault.
void previous_segv_handler(int sig, siginfo_t* info, void*) {
  testing::say("previous handler: sig=%d addr=%p\n", sig, info->si_addr);
}

TEST(DiePolicy, TheProgramsHandlerOfTheFaultRunsFirst) {
  auto r = run_in_child([] {
    struct sigaction sa {};
    sa.sa_sigaction = previous_segv_handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, nullptr);
    fault_now();
  });
  EXPECT_TRUE(r.signaled && r.term_signal == SIGSEGV) << r.describe() << "\n" << r.output;
  auto banner = r.output.find("panic: fatal signal SIGSEGV (SEGV_MAPERR) at 0x10");
  auto chained = r.output.find("previous handler: sig=11 addr=0x10");
  ASSERT_NE(banner, std::string::npos) << r.output;
  ASSERT_NE(chained, std::string::npos) << r.output;
  EXPECT_LT(chained, banner);
  EXPECT_NE(r.output.find("the program's own handler ran first and gave up"), std::string::npos) << r.output;
}

TEST(DiePolicy, PanicDoesNotCallAPreviousSigabrtHandler) {
  auto r = run_in_child([] {
    struct sigaction sa {};
    sa.sa_sigaction = previous_segv_handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGABRT, &sa, nullptr);
    panic_now();
  });
  EXPECT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << "\n" << r.output;
  EXPECT_EQ(r.output.find("previous handler"), std::string::npos) << r.output;
}

struct BadValue {
  const char* name;
  const char* value;
  const char* accepted;
};

// A value too long to quote whole is cut in the message, never the
// accepted values after it.
TEST(Tunables, AVeryLongBadValueStillNamesTheAcceptedValues) {
  std::string value(5000, '0');
  value += "50";
  auto r = run_in_child([] { install(); }, with_env({{"PANICSTOP_STOP_TIMEOUT_MS", value + "ms"}}));
  EXPECT_TRUE(r.exited && r.exit_code == 2) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("panicstop: PANICSTOP_STOP_TIMEOUT_MS=0000"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("... is not valid; accepted values: a number of milliseconds"), std::string::npos)
      << r.output;
}

TEST(Tunables, BadValuesExit2NamingTheVariable) {
  const BadValue cases[] = {
      {"PANICSTOP_STOP_ON_PANIC", "yes", "0, 1"},
      {"PANICSTOP_DUMP", "pdf", "none, or a comma-separated list of text, core, minidump"},
      {"PANICSTOP_CORE", "huge", "mini, full"},
      {"PANICSTOP_ON_PANIC", "explode", "die, exit, restart, halt"},
      {"PANICSTOP_STOP_TIMEOUT_MS", "-5", "milliseconds"},
      {"PANICSTOP_STOP_TIMEOUT_MS", "0", "milliseconds"},
      {"PANICSTOP_DEBUGGER_ON_PANIC", "2", "0, 1"},
      {"PANICSTOP_TRACE_ON_PANIC", "on", "0, 1"},
      {"PANICSTOP_WITNESS", "2", "1, 0, -1"},
      {"PANICSTOP_WITNESS_ACTION", "abort", "warn, panic"},
      {"PANICSTOP_LOCKPROF", "-1", "0, 1"},
      // Nothing past a fixed prefix may be ignored: zeros pad the number
      // beyond 32 (16) characters, then comes what makes the value bad.
      {"PANICSTOP_STOP_TIMEOUT_MS", "00000000000000000000000000000050ms", "milliseconds"},
      {"PANICSTOP_STEP_TIMEOUT_MS", "000000000000000000000000000001000 s", "milliseconds"},
      {"PANICSTOP_KDB_IDLE_MS", "00000000000000000000000000000010x", "milliseconds"},
      {"PANICSTOP_KDB_SIGNAL", "0000000000000010garbage", "SIGUSR1"},
  };
  for (const BadValue& c : cases) {
    auto r = run_in_child([] { install(); }, with_env({{c.name, c.value}}));
    EXPECT_TRUE(r.exited && r.exit_code == 2) << c.name << ": " << r.describe() << "\n" << r.output;
    std::string expected = std::string("panicstop: ") + c.name + "=" + c.value + " is not valid; accepted values: ";
    EXPECT_NE(r.output.find(expected), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(c.accepted), std::string::npos) << r.output;
  }
}

TEST(Tunables, GoodValuesAreAccepted) {
  auto r = run_in_child([] {
    if (!install()) _exit(3);
  }, with_env({{"PANICSTOP_STOP_ON_PANIC", "0"},
               {"PANICSTOP_DUMP", "core,text"},
               {"PANICSTOP_CORE", "full"},
               {"PANICSTOP_ON_PANIC", "halt"},
               {"PANICSTOP_STOP_TIMEOUT_MS", "250"},
               {"PANICSTOP_WITNESS", "-1"},
               {"PANICSTOP_LOCKPROF", "1"},
               {"PANICSTOP_DUMP_DIR", "/tmp"}}));
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
}

}  // namespace
}  // namespace panicstop
