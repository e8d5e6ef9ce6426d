// Each writer is a step of its own: a fault or a hang in one writer costs its
// own file only. The other dumps are complete and readable, the ones written
// after the failure name the failed step, nothing half-written is left, and
// the process still dies of its original signal. A fault or a hang in the
// capture step costs detail, not the dumps: they are written from what it
// had taken, and say where it stopped.
//
// The fault is injected through the writer table: this file defines
// dump_writers() itself (writer.hpp), so the linker takes this table and never
// pulls the library's writers.o out of the static archive. The injection
// exists in this test binary only. The capture's fault comes the same way:
// this file defines capture_part_reached() (snapshot.hpp), which the linker
// takes over the library's empty weak one, and the capture calls it as each
// of its parts begins.
#include <gtest/gtest.h>

#include <elf.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <string>
#include <vector>

#include "dump/core_limit.hpp"
#include "dump/elf_core.hpp"
#include "dump/text_report.hpp"
#include "dump/writer.hpp"
#include "panic/panic_state.hpp"
#include "panicstop/panic.hpp"
#include "snapshot/parked_threads.hpp"
#include "snapshot/snapshot.hpp"
#include "support/child_process.hpp"
#include "sys/format.hpp"
#include "sys/syscall.hpp"

namespace panicstop::detail {

namespace {

// Set in the child before the panic: which writer or capture part fails, and
// how; g_fault_skip: how many times the part begins before the one that fails.
char g_fault_writer[16];
char g_fault_part[32];
int g_fault_skip = 0;
char g_fault_kind[16];
volatile bool g_spin = true;

void fail_now() noexcept {
  if (sys::equals(g_fault_kind, "segv")) {
    volatile int* nowhere = nullptr;
    *nowhere = 1;
  }
  while (g_spin) {
  }
}

void maybe_fail(const char* writer, int fd) noexcept {
  if (!sys::equals(g_fault_writer, writer)) return;
  // Part of a file first: what a writer that dies mid-way leaves behind.
  static const char kPartial[] = "partial";
  sys::write_all(fd, kPartial, sizeof kPartial - 1);
  fail_now();
}

bool faulty_text(const CrashRecord& rec, const DumpOptions& o, int fd) noexcept {
  maybe_fail("text", fd);
  return write_text_report(rec, o, fd);
}

bool faulty_core(const CrashRecord& rec, const DumpOptions& o, int fd) noexcept {
  maybe_fail("core", fd);
  return write_elf_core(rec, o, fd);
}

constexpr DumpWriter kTestWriters[] = {
    {"text", ".txt", true, faulty_text, nullptr, true},
    {"core", ".core", true, faulty_core, core_refusal, false},
};

}  // namespace

void capture_part_reached(const char* part) noexcept {
  if (g_fault_part[0] != '\0' && sys::equals(g_fault_part, part) && g_fault_skip-- == 0) fail_now();
}

const DumpWriter* dump_writers(size_t* count) noexcept {
  *count = sizeof kTestWriters / sizeof kTestWriters[0];
  return kTestWriters;
}

}  // namespace panicstop::detail

namespace panicstop {
namespace {

using testing::ChildResult;
using testing::run_in_child;
using testing::TempDir;
using testing::with_env;

// The file ending with suffix (TempDir::file_ending), and in *others the
// names of every other entry, hidden temporary files included.
std::string file_with_suffix(const TempDir& dir, const std::string& suffix, std::vector<std::string>* others) {
  for (const std::string& name : dir.list())
    if (name[0] == '.' || !name.ends_with(suffix)) others->push_back(name);
  return dir.file_ending(suffix);
}

// A complete core: an ELF header, and every segment's bytes inside the file.
void expect_complete_core(const std::string& text) {
  ASSERT_GE(text.size(), sizeof(Elf64_Ehdr));
  Elf64_Ehdr eh;
  memcpy(&eh, text.data(), sizeof eh);
  ASSERT_EQ(memcmp(eh.e_ident, ELFMAG, SELFMAG), 0);
  EXPECT_EQ(eh.e_type, ET_CORE);
  ASSERT_GT(eh.e_phnum, 1u);
  ASSERT_LE(eh.e_phoff + uint64_t(eh.e_phnum) * sizeof(Elf64_Phdr), text.size());
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    memcpy(&ph, text.data() + eh.e_phoff + i * sizeof ph, sizeof ph);
    EXPECT_LE(ph.p_offset + ph.p_filesz, text.size()) << "segment " << i;
  }
  EXPECT_NE(text.find("PANICSTOP"), std::string::npos);
}

void expect_complete_report(const std::string& text) {
  EXPECT_EQ(text.rfind("panic: writer fault test\n", 0), 0u) << text.substr(0, 200);
  EXPECT_NE(text.find("\nmodules:\n"), std::string::npos) << text;
  EXPECT_TRUE(!text.empty() && text.back() == '\n');
}

struct Case {
  const char* order;        // PANICSTOP_DUMP
  const char* faulty;       // the writer that fails
  const char* kind;         // "segv" or "hang"
  const char* part = "";    // or the part of the capture that fails (CaptureGaps::interrupted_while)
  int skip = 0;             // after beginning that many times
};

ChildResult run_case(const Case& c, const TempDir& dir) {
  return run_in_child(
      [&] {
        sys::copy_string(detail::g_fault_writer, sizeof detail::g_fault_writer, c.faulty);
        sys::copy_string(detail::g_fault_kind, sizeof detail::g_fault_kind, c.kind);
        sys::copy_string(detail::g_fault_part, sizeof detail::g_fault_part, c.part);
        detail::g_fault_skip = c.skip;
        install();
        static testing::ParkedThreads* parked =
            new testing::ParkedThreads(3, {testing::park_in_alpha, testing::park_in_beta}, "worker");
        (void)parked;
        panic("writer fault test");
      },
      with_env({{"PANICSTOP_DUMP_DIR", dir.path()},
                {"PANICSTOP_DUMP", c.order},
                {"PANICSTOP_STEP_TIMEOUT_MS", "300"},
                {"PANICSTOP_CORE_LIMIT", "ignore"},
                {"PANICSTOP_KDB_SOCKET", "0"},
                {"PANICSTOP_ON_PANIC", "die"}},
               30000));
}

// The failed writer runs first: the other one's file is complete and names
// the failed step.
void check_failed_first(const Case& c) {
  TempDir dir;
  ChildResult r = run_case(c, dir);
  ASSERT_FALSE(r.hung) << r.describe() << "\n" << r.output;
  EXPECT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << "\n" << r.output;
  std::string step = std::string("dump (") + c.faulty + ")";
  if (std::string(c.kind) == "segv")
    EXPECT_NE(r.output.find("panicstop: nested panic in step " + step + ": fatal signal SIGSEGV"), std::string::npos)
        << r.output;
  else
    EXPECT_NE(r.output.find("panicstop: step " + step + " overran its deadline"), std::string::npos) << r.output;
  bool text_failed = std::string(c.faulty) == "text";
  std::vector<std::string> others;
  std::string survivor = file_with_suffix(dir, text_failed ? ".core" : ".txt", &others);
  ASSERT_FALSE(survivor.empty()) << r.output;
  // Nothing else: no file of the failed writer, no temporary file.
  EXPECT_TRUE(others.empty()) << others.front() << "\n" << r.output;
  EXPECT_NE(r.output.find("panicstop: removed the unfinished "), std::string::npos) << r.output;
  std::string content = testing::read_file(survivor);
  if (text_failed) {
    expect_complete_core(content);
    // The core's note lists the nested panic, in step kDump.
    std::string nested = "\nnested=";
    size_t at = content.find(nested);
    ASSERT_NE(at, std::string::npos);
    std::string step_field = " step=" + std::to_string(int(detail::PanicStep::kDump)) + " ";
    EXPECT_NE(content.find(step_field, at), std::string::npos);
  } else {
    expect_complete_report(content);
    if (std::string(c.kind) == "segv")
      EXPECT_NE(content.find("(the panicking thread): signal SIGSEGV during " + step), std::string::npos) << content;
    else
      EXPECT_NE(content.find("(the panicking thread): panic during " + step + ": step " + step + " overran"),
                std::string::npos)
          << content;
  }
}

TEST(WriterFault, AFaultInTheTextWriterKeepsTheCore) { check_failed_first({"text,core", "text", "segv"}); }
TEST(WriterFault, AHangInTheTextWriterKeepsTheCore) { check_failed_first({"text,core", "text", "hang"}); }
TEST(WriterFault, AFaultInTheCoreWriterKeepsTheReport) { check_failed_first({"core,text", "core", "segv"}); }
TEST(WriterFault, AHangInTheCoreWriterKeepsTheReport) { check_failed_first({"core,text", "core", "hang"}); }

// The failed writer runs last: the earlier file is complete, and the cleanup
// step still removes the unfinished one.
TEST(WriterFault, AFaultInTheLastWriterLeavesNoUnfinishedFile) {
  TempDir dir;
  ChildResult r = run_case({"text,core", "core", "segv"}, dir);
  ASSERT_FALSE(r.hung) << r.describe() << "\n" << r.output;
  EXPECT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << "\n" << r.output;
  std::vector<std::string> others;
  std::string report = file_with_suffix(dir, ".txt", &others);
  ASSERT_FALSE(report.empty()) << r.output;
  EXPECT_TRUE(others.empty()) << others.front() << "\n" << r.output;
  expect_complete_report(testing::read_file(report));
  EXPECT_NE(r.output.find("panicstop: removed the unfinished "), std::string::npos) << r.output;
}

// PANICSTOP_DUMP's order is the writing order.
TEST(WriterFault, TheDumpTunableGivesTheOrder) {
  TempDir dir;
  ChildResult r = run_case({"core,text", "none", "segv"}, dir);
  ASSERT_FALSE(r.hung) << r.describe() << "\n" << r.output;
  size_t core = r.output.find(".core\n");
  size_t text = r.output.find(".txt\n");
  ASSERT_NE(core, std::string::npos) << r.output;
  ASSERT_NE(text, std::string::npos) << r.output;
  EXPECT_LT(core, text) << r.output;
}

// The capture fails in c.part: the writers still run, from the facts and
// what the capture had taken, and the report says where it stopped and why.
// Returns the report's text ("" if none).
std::string check_capture_failure(const Case& c, const std::string& where) {
  TempDir dir;
  ChildResult r = run_case(c, dir);
  EXPECT_FALSE(r.hung) << r.describe() << "\n" << r.output;
  EXPECT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("panicstop: the capture step failed; the dumps hold what it had taken"), std::string::npos)
      << r.output;
  std::string report = dir.file_ending(".txt");
  EXPECT_FALSE(report.empty()) << r.output;
  if (report.empty()) return "";
  std::string text = testing::read_file(report);
  EXPECT_EQ(text.rfind("panic: writer fault test\n", 0), 0u) << text.substr(0, 400);
  EXPECT_NE(text.find("\nincomplete: the capture failed while " + where), std::string::npos) << text;
  std::string step = std::string(c.kind) == "segv" ? "signal SIGSEGV during capture"
                                                    : "panic during capture: step capture overran";
  EXPECT_NE(text.find("(the panicking thread): " + step), std::string::npos) << text;
  if (std::string(c.order).find("core") != std::string::npos) {
    std::string core = dir.file_ending(".core");
    EXPECT_FALSE(core.empty()) << r.output;
    if (!core.empty()) expect_complete_core(testing::read_file(core));
  }
  return text;
}

// Unwinding the second thread faults: the mappings, modules and the
// panicking thread's stack were taken before it, and are all there.
TEST(CaptureFault, AFaultWhileUnwindingKeepsEveryDumpAndTheStacksBefore) {
  std::string text = check_capture_failure({"text,core", "none", "segv", "unwinding", 1}, "unwinding thread ");
  EXPECT_NE(text.find("\nmodules:\n"), std::string::npos) << text;
  EXPECT_NE(text.find("[panicking]"), std::string::npos) << text;
  size_t lead = text.find("[panicking]");
  EXPECT_NE(text.find("\n  #0 0x", lead), std::string::npos) << text;
}

// Finding the modules hangs past the capture's deadline: the dumps are
// still written from the threads and the mapping table, and the core holds
// the memory.
TEST(CaptureFault, AHangWhileFindingModulesKeepsEveryDump) {
  std::string text = check_capture_failure({"text,core", "none", "hang", "finding modules", 0}, "finding modules");
  EXPECT_NE(text.find("[panicking]"), std::string::npos) << text;
}

// Listing the threads faults: the report still has the panic's facts, the
// panicking thread with its signal, and what the stop did.
TEST(CaptureFault, AFaultWhileListingThreadsStillReportsThePanic) {
  std::string text = check_capture_failure({"text", "none", "segv", "listing threads", 0}, "listing threads");
  // With its name: from its slot or, as here, the kernel's comm.
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(\npanicking thread \d+ \([^)]+\): signal SIGABRT)"))) << text;
  EXPECT_NE(text.find("\nincomplete: only the capturing thread is listed; the stop had stopped 3 other threads"),
            std::string::npos)
      << text;
}

void print_captures(void*) {
  char line[64];
  size_t n = sys::format(line, sizeof line, "captures=%u\n", detail::snapshot_capture_count());
  sys::write_all(2, line, n);
}

// Trace and debugger on: the debugger step, the trace and every writer read
// the one record the capture step took.
TEST(CaptureStep, TraceAndDebuggerShareTheOneCapture) {
  TempDir dir, sockets;
  ChildResult r = run_in_child(
      [] {
        setsid();
        install();
        on_panic(Stage::Final, print_captures, nullptr);
        panic("one capture");
      },
      with_env({{"PANICSTOP_DUMP_DIR", dir.path()},
                {"PANICSTOP_TRACE_ON_PANIC", "1"},
                {"PANICSTOP_DEBUGGER_ON_PANIC", "1"},
                {"PANICSTOP_KDB_SOCKET", sockets.path()},
                {"PANICSTOP_KDB_IDLE_MS", "200"},
                {"PANICSTOP_CORE_LIMIT", "ignore"}}));
  ASSERT_FALSE(r.hung) << r.describe() << "\n" << r.output;
  EXPECT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe();
  EXPECT_NE(r.output.find("stack of the panicking thread (PANICSTOP_TRACE_ON_PANIC=1)"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("captures=1\n"), std::string::npos) << r.output;
  EXPECT_EQ(dir.list().size(), 2u) << r.output;
}

}  // namespace
}  // namespace panicstop
