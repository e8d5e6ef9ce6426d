// `panicstop show` of an abort that a runtime's crash handling raised after
// its handler resumed a fault elsewhere (docs/DESIGN.md, invariant 13): from
// the text report, the core and the minidump alike, the panicking thread
// names that fault, and the frame holding the faulting pc is named as the
// instruction it is. Looked up as a return address, a fault at a function's
// first byte reads as the function before it (Go's nil dereference in
// main.poke+0x0 read as "?? (nil+0x82c80)").
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <regex>
#include <string>
#include <thread>

#include "dump/dump_step.hpp"
#include "panic/panic_test_util.hpp"
#include "panicstop/panic.hpp"
#include "read/dump_file.hpp"
#include "support/child_process.hpp"
#include "support/faults.hpp"

namespace panicstop::read {
namespace {

__attribute__((noinline)) void crash_reporter_that_aborts() {
  testing::say("crash reporter ran\n");
  abort();
}

TEST(EarlierFault, EveryDumpNamesTheFaultAndItsFrameAsTheFaultingInstruction) {
  testing::TempDir dumps;
  auto child = testing::run_in_child(
      [] {
        install();
        detail::register_dump_step();
        std::thread([] { testing::park(); }).detach();
        testing::wait_for_threads(2);
        testing::resume_at = crash_reporter_that_aborts;
        struct sigaction sa {};
        sa.sa_sigaction = testing::resume_elsewhere;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, nullptr);
        panicstop_test_load_at_entry(reinterpret_cast<const long*>(0x10));
      },
      testing::with_env({{"PANICSTOP_DUMP_DIR", dumps.path()},
                         {"PANICSTOP_DUMP", "text,core,minidump"},
                         {"PANICSTOP_CORE_LIMIT", "ignore"}}));
  ASSERT_FALSE(child.hung) << child.describe() << "\n" << child.output;
  ASSERT_NE(child.output.find("crash reporter ran\n"), std::string::npos) << child.output;

  // The child is a fork of this process: the function is at the same address there.
  const auto fault_pc = reinterpret_cast<uint64_t>(&panicstop_test_load_at_entry);
  for (const char* kind : {"txt", "core", "dmp"}) {
    std::smatch m;
    std::string written = "panicstop: wrote (\\S+\\." + std::string(kind) + ")";
    ASSERT_TRUE(std::regex_search(child.output, m, std::regex(written))) << kind << "\n" << child.output;
    Report r = read_dump_file(m[1]);
    const Thread* panicking = nullptr;
    for (const Thread& t : r.threads)
      if (t.tid == r.panicking_tid) panicking = &t;
    ASSERT_NE(panicking, nullptr) << kind;
    EXPECT_EQ(panicking->earlier_fault_pc, fault_pc) << kind;
    std::string notes;
    for (const std::string& n : panicking->notes) notes += n + "\n";
    // Both sites named, in every dump: the text report's writer names them,
    // and show names those of the core and the minidump.
    const std::regex said("(^|\n)[0-9]+ ms before: signal SIGSEGV \\(SEGV_MAPERR[:)].*, fault address 0x10, at "
                          "0x[0-9a-f]+ panicstop_test_load_at_entry\\+0x0 \\(\\S+\\); the program's handler resumed "
                          "the thread at 0x[0-9a-f]+ [^;]*crash_reporter_that_aborts[^;]*\\+0x0 \\(\\S+\\) instead of "
                          "returning to it\n");
    EXPECT_TRUE(std::regex_search(notes, said)) << kind << ":\n" << notes;
    // The minidump's stacks are walked by frame pointers, which abort()'s
    // frames in the C library do not keep: its walk may stop before.
    if (std::string(kind) == "dmp") continue;
    const Frame* at_fault = nullptr;
    for (const Frame& f : panicking->frames)
      if (f.pc == fault_pc) at_fault = &f;
    ASSERT_NE(at_fault, nullptr) << kind << ": no frame at the faulting pc";
    EXPECT_EQ(at_fault->function, "panicstop_test_load_at_entry") << kind;
    EXPECT_EQ(at_fault->offset, std::optional<uint64_t>(0)) << kind;
  }
}

}  // namespace
}  // namespace panicstop::read
