// Threads that ignore the stop (the hard-stop signal blocked with a raw
// system call): one asleep in read(), one spinning. The text report says
// they did not stop and what /proc showed; the core gives the sleeping one
// the pc and sp /proc gave, with its stack, so gdb unwinds it, and leaves the
// spinning one (no registers to be had) out of its thread list instead of
// writing it as a thread of zeros.
#include <gtest/gtest.h>

#include <elf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "dump/unstopped_threads.hpp"
#include "snapshot/snapshot.hpp"
#include "support/child_process.hpp"
#include "support/reports.hpp"

namespace panicstop {
namespace {

using testing::UnstoppedDumps;
using testing::thread_block;

UnstoppedDumps& dumps() { return testing::unstopped_dumps_once(); }

#define REQUIRE_DUMPS(d)                                                                          \
  ASSERT_FALSE((d).child.hung) << (d).child.describe() << "\n" << (d).child.output;               \
  ASSERT_TRUE((d).child.signaled && (d).child.term_signal == SIGABRT) << (d).child.describe()     \
                                                                      << "\n" << (d).child.output; \
  ASSERT_GT((d).reader, 0) << (d).child.output;                                                   \
  ASSERT_GT((d).spinner, 0) << (d).child.output;                                                  \
  ASSERT_FALSE((d).report_path.empty()) << (d).child.output;                                      \
  ASSERT_FALSE((d).core_path.empty()) << (d).child.output


TEST(UnstoppedThread, ReportShowsTheBlockedThreadWithWhatProcSaid) {
  UnstoppedDumps& d = dumps();
  REQUIRE_DUMPS(d);
  std::string text = testing::read_file(d.report_path);
  std::string block = thread_block(text, d.reader);
  std::string tid = std::to_string(d.reader);
  EXPECT_EQ(block.rfind("thread " + tid + " (unstop-reader) [not_stopped] S\n", 0), 0u) << text;
  std::string line = "  did not stop: state S, blocked in syscall " + std::to_string(SYS_read) + " (read)";
  EXPECT_NE(block.find(line), std::string::npos) << block;
  EXPECT_NE(block.find("hard-stop signal blocked; pc and sp from /proc/self/task/" + tid + "/syscall\n"),
            std::string::npos)
      << block;
  // Frame 0 is the kernel's pc, inside libc's read; CFI walks from there to
  // the thread's own function.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(block, m, std::regex(R"(\n  #0 0x[0-9a-f]+ (\S+) \((libc\.so[^)]*)\)\n)"))) << block;
  EXPECT_NE(m[1].str().find("read"), std::string::npos) << block;
  EXPECT_NE(block.find("unstopped_reader_in_read"), std::string::npos) << block;
  EXPECT_EQ(block.find("(no frames)"), std::string::npos) << block;
}

TEST(UnstoppedThread, ReportSaysTheSpinningThreadHasNoRegisters) {
  UnstoppedDumps& d = dumps();
  REQUIRE_DUMPS(d);
  std::string text = testing::read_file(d.report_path);
  std::string block = thread_block(text, d.spinner);
  std::string tid = std::to_string(d.spinner);
  EXPECT_EQ(block,
            "thread " + tid +
                " (unstop-spinner) [not_stopped] R\n"
                "  did not stop: state R, running, hard-stop signal blocked; no registers\n"
                "  (no registers: the thread was running)")
      << text;
  EXPECT_NE(text.find("threads that did not stop:\n"), std::string::npos) << text;
}

// --- the core ---------------------------------------------------------------

struct Prstatus {
  int tid;
  uint64_t pc, sp, orig_syscall;
};

struct CoreNotes {
  std::vector<Prstatus> threads;
  std::string panicstop;
};

CoreNotes read_core_notes(const std::string& core) {
  CoreNotes out;
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(core.data());
  const auto* ph = reinterpret_cast<const Elf64_Phdr*>(core.data() + eh->e_phoff);
  size_t off = ph[0].p_offset, end = off + ph[0].p_filesz;
  while (off + 12 <= end) {
    uint32_t hdr[3];
    std::memcpy(hdr, core.data() + off, 12);
    off += 12;
    std::string name(core.data() + off, hdr[0] > 0 ? hdr[0] - 1 : 0);
    off += (hdr[0] + 3) & ~3u;
    const char* desc = core.data() + off;
    if (name == "CORE" && hdr[2] == NT_PRSTATUS) {
      Prstatus p{};
      std::memcpy(&p.tid, desc + 32, 4);
#if defined(__x86_64__)
      std::memcpy(&p.pc, desc + 112 + 16 * 8, 8);
      std::memcpy(&p.sp, desc + 112 + 19 * 8, 8);
      std::memcpy(&p.orig_syscall, desc + 112 + 15 * 8, 8);
#elif defined(__aarch64__)
      std::memcpy(&p.sp, desc + 112 + 31 * 8, 8);
      std::memcpy(&p.pc, desc + 112 + 32 * 8, 8);
#endif
      out.threads.push_back(p);
    }
    if (name == "PANICSTOP") out.panicstop.assign(desc, hdr[1]);
    off += (hdr[1] + 3) & ~3u;
  }
  return out;
}

TEST(UnstoppedThread, CoreHasTheBlockedThreadsPcAndSpAndNoZeroThread) {
  UnstoppedDumps& d = dumps();
  REQUIRE_DUMPS(d);
  CoreNotes notes = read_core_notes(testing::read_file(d.core_path));
  ASSERT_GE(notes.threads.size(), 2u);
  bool reader_found = false;
  for (const Prstatus& p : notes.threads) {
    EXPECT_NE(p.pc, 0u) << "thread " << p.tid << " is written with pc 0";
    EXPECT_NE(p.sp, 0u) << "thread " << p.tid << " is written with sp 0";
    EXPECT_NE(p.tid, d.spinner) << "the running thread has no registers to write";
    if (p.tid != d.reader) continue;
    reader_found = true;
#if defined(__x86_64__)
    EXPECT_EQ(p.orig_syscall, uint64_t(SYS_read));
#endif
  }
  EXPECT_TRUE(reader_found);
  std::string reader = "\nthread=" + std::to_string(d.reader) +
                       " name=unstop-reader state=not_stopped kernel_state=S registers=kernel kernel_view=syscall "
                       "syscall=" + std::to_string(SYS_read) +
                       " syscall_name=read( wchan=\\S+)? stop_signal_blocked=hard\n";
  EXPECT_TRUE(std::regex_search(notes.panicstop, std::regex(reader))) << notes.panicstop;
  std::string spinner = "\nthread=" + std::to_string(d.spinner) +
                        " name=unstop-spinner state=not_stopped kernel_state=R registers=none kernel_view=running "
                        "stop_signal_blocked=hard\n";
  EXPECT_NE(notes.panicstop.find(spinner), std::string::npos) << notes.panicstop;
}

std::string exe_path() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, size_t(n)) : std::string();
}

// gdb's "Thread N (... LWP TID ...)" blocks of `thread apply all bt`.
std::map<int, std::string> gdb_blocks(const std::string& out) {
  std::map<int, std::string> blocks;
  std::istringstream in(out);
  std::string line;
  int current = -1;
  while (std::getline(in, line)) {
    if (line.rfind("Thread ", 0) == 0) {
      size_t lwp = line.find("LWP ");
      current = lwp == std::string::npos ? -1 : std::atoi(line.c_str() + lwp + 4);
    }
    if (current > 0) blocks[current] += line + "\n";
  }
  return blocks;
}

TEST(UnstoppedThread, GdbUnwindsTheBlockedThreadFromTheCore) {
  UnstoppedDumps& d = dumps();
  REQUIRE_DUMPS(d);
  if (!testing::have_program("gdb")) GTEST_SKIP() << "gdb not installed";
  testing::ChildOptions opts;
  opts.deadline = std::chrono::milliseconds(120000);
  testing::ChildResult r = testing::run_command(
      {"gdb", "-nx", "-batch", "-ex", "info threads", "-ex", "thread apply all bt", exe_path(), d.core_path}, opts);
  ASSERT_FALSE(r.hung) << r.describe();
  std::map<int, std::string> blocks = gdb_blocks(r.output);
  ASSERT_TRUE(blocks.count(d.reader)) << r.output;
  const std::string& bt = blocks[d.reader];
  EXPECT_TRUE(std::regex_search(bt, std::regex(R"(#0 .*\b(__libc_read|__GI___libc_read|read)\b)"))) << bt;
  EXPECT_NE(bt.find("unstopped_reader_in_read"), std::string::npos) << bt;
  EXPECT_FALSE(blocks.count(d.spinner)) << r.output;
  EXPECT_EQ(r.output.find("LWP " + std::to_string(d.spinner) + ")"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("0x0000000000000000 in ??"), std::string::npos) << r.output;
}

// The parser of /proc/self/task/TID/syscall, on the kernel's three forms.
TEST(UnstoppedThread, ParsesTheKernelsSyscallFile) {
  detail::KernelView k;
  const char in_syscall[] =
      "0 0x3 0x7f0a4f9aa000 0x20000 0x7f0a4fa3ab60 0xffffffff 0x0 0x7fff361a1788 0x7f0a4fb232ad\n";
  ASSERT_TRUE(detail::parse_task_syscall(in_syscall, sizeof in_syscall - 1, &k));
  EXPECT_EQ(k.source, detail::KernelView::Source::kSyscall);
  EXPECT_EQ(k.syscall_nr, 0);
  EXPECT_EQ(k.args[0], 3u);
  EXPECT_EQ(k.args[4], 0xffffffffu);
  EXPECT_EQ(k.sp, 0x7fff361a1788u);
  EXPECT_EQ(k.pc, 0x7f0a4fb232adu);
  EXPECT_TRUE(k.has_regs());

  const char blocked[] = "-1 0x7ffd0c71b040 0x7f6d1213daec\n";
  k = {};
  ASSERT_TRUE(detail::parse_task_syscall(blocked, sizeof blocked - 1, &k));
  EXPECT_EQ(k.source, detail::KernelView::Source::kBlocked);
  EXPECT_EQ(k.syscall_nr, -1);
  EXPECT_EQ(k.sp, 0x7ffd0c71b040u);
  EXPECT_EQ(k.pc, 0x7f6d1213daecu);

  const char running[] = "running\n";
  k = {};
  ASSERT_TRUE(detail::parse_task_syscall(running, sizeof running - 1, &k));
  EXPECT_EQ(k.source, detail::KernelView::Source::kRunning);
  EXPECT_FALSE(k.has_regs());

  for (const char* bad : {"", "-1 0x10\n", "0 0x1 0x2\n", "x 0x1 0x2\n", "-2 0x1 0x2\n", "-1 12 0x2\n",
                          "0 0x1 0x2 0x3 0x4 0x5 0x6 0x7 0x8 0x9\n"}) {
    k = {};
    EXPECT_FALSE(detail::parse_task_syscall(bad, std::strlen(bad), &k)) << bad;
    EXPECT_EQ(k.source, detail::KernelView::Source::kUnreadable) << bad;
    EXPECT_FALSE(k.has_regs()) << bad;
  }
}

}  // namespace
}  // namespace panicstop
