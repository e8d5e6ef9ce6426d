#include "dump/text_report.hpp"

#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "panic/panic_state.hpp"
#include "panicstop/mutex.hpp"
#include "panicstop/thread.hpp"
#include "snapshot/parked_threads.hpp"
#include "support/reports.hpp"

namespace panicstop {
namespace {

using detail::CrashRecord;
using testing::ParkedThreads;

// A live capture into the process's one crash record, its facts cleared.
CrashRecord* capture() {
  CrashRecord& rec = detail::reset_crash_record();
  return detail::capture_crash_record(rec) ? &rec : nullptr;
}

std::string render(const CrashRecord& rec) { return testing::render_text_report(rec); }

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(TextReport, TwoHundredThreadsEachHaveALineAndIdenticalStacksShareOne) {
  ASSERT_TRUE(detail::reserve_snapshot());
  ParkedThreads parked(200, {testing::park_in_alpha, testing::park_in_beta});
  ASSERT_TRUE(parked.stop());
  CrashRecord* snap = capture();
  ASSERT_NE(snap, nullptr);
  std::string text = render(*snap);
  parked.restart();
  std::vector<std::string> lines = lines_of(text);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0].rfind("panic: ", 0), 0u) << lines[0];

  // Every thread: its own header line, with the state the snapshot gives it.
  std::map<int, std::string> headers;
  std::regex header(R"(^thread (\d+) \((.*)\) \[(\w+)\] (.)$)");
  for (const std::string& l : lines) {
    std::smatch m;
    if (std::regex_match(l, m, header)) headers[std::stoi(m[1])] = m[3];
  }
  EXPECT_EQ(headers.size(), snap->snap().thread_count);
  for (int tid : parked.tids()) {
    ASSERT_EQ(headers.count(tid), 1u) << "no line for thread " << tid;
    EXPECT_EQ(headers[tid], "stopped");
  }
  EXPECT_EQ(headers[gettid()], "dumping");

  // Grouping: two groups of 100 (alpha, beta), each stack printed once.
  std::regex group(R"(^  \((\d+) threads with this stack\)$)");
  std::vector<int> groups;
  for (const std::string& l : lines) {
    std::smatch m;
    if (std::regex_match(l, m, group)) groups.push_back(std::stoi(m[1]));
  }
  ASSERT_EQ(groups.size(), 2u) << text.substr(0, 4000);
  EXPECT_EQ(groups[0], 100);
  EXPECT_EQ(groups[1], 100);
  size_t alpha = 0, beta = 0;
  for (const std::string& l : lines) {
    if (l.find("#") == std::string::npos) continue;
    alpha += l.find("park_in_alpha") != std::string::npos;
    beta += l.find("park_in_beta") != std::string::npos;
  }
  EXPECT_EQ(alpha, 1u);
  EXPECT_EQ(beta, 1u);
  // A frame names its function and module.
  bool framed = false;
  std::regex frame(R"(^  #\d+ 0x[0-9a-f]+ \S*park_in_alpha\S*\+0x[0-9a-f]+ \(dump_text_report_test\)$)");
  for (const std::string& l : lines) framed |= std::regex_match(l, frame);
  EXPECT_TRUE(framed) << text.substr(0, 3000);
  // Readable size: about one line per thread plus the shared stacks.
  EXPECT_LT(lines.size(), 200u + 200u);
}

TEST(TextReport, WaitersNameTheLockAndItsOwner) {
  static Mutex held{"cache lock"};
  ASSERT_TRUE(detail::reserve_snapshot());
  held.lock();
  std::atomic<int> waiter_tid{0};
  std::thread waiter([&] {
    waiter_tid = current_tid();
    held.lock();
    held.unlock();
  });
  while (waiter_tid == 0 || testing::kernel_state(waiter_tid) != 'S') std::this_thread::yield();
  CrashRecord* snap = capture();
  ASSERT_NE(snap, nullptr);
  std::string text = render(*snap);
  held.unlock();
  waiter.join();
  char addr[32];
  snprintf(addr, sizeof addr, "%p", static_cast<const void*>(&held.lock_object()));
  std::string wait_line = "  waiting for mutex \"cache lock\" (" + std::string(addr) + ") held by thread " +
                          std::to_string(gettid());
  EXPECT_NE(text.find(wait_line), std::string::npos) << text.substr(0, 3000);
  std::string lock_line = "  " + std::string(addr) + " kind=mutex name=cache_lock owner=" + std::to_string(gettid()) +
                          " readers=0";
  EXPECT_NE(text.find("\nlocks:\n"), std::string::npos);
  EXPECT_NE(text.find(lock_line), std::string::npos) << text;
  EXPECT_NE(text.find("waiters=" + std::to_string(waiter_tid.load())), std::string::npos);
}

TEST(TextReport, ListsModulesWithBuildIds) {
  CrashRecord* snap = capture();
  ASSERT_NE(snap, nullptr);
  std::string text = render(*snap);
  EXPECT_NE(text.find("\nmodules:\n"), std::string::npos);
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(dump_text_report_test build-id=[0-9a-f]{40} \(executable\))")))
      << text.substr(text.find("modules:"));
}

}  // namespace
}  // namespace panicstop

namespace panicstop {
namespace {

// WITNESS's held-lock list (written here by hand: witness is off in most
// builds), nested panics and threads that did not stop, as the panic path
// records them.
TEST(TextReport, HeldLocksNestedPanicsAndThreadsThatDidNotStop) {
  static Mutex held{"config"};
  detail::ThreadSlot* slot = detail::current_slot();
  slot->held[0] = detail::HeldLock{&held.lock_object(), "server.cpp", 0, 0, 42, 0, 0, 0};
  slot->held_count = 1;
  CrashRecord* snap = capture();
  ASSERT_NE(snap, nullptr);
  detail::CrashFacts& f = snap->facts;
  f.nested[0].tid = 77;
  f.nested[0].signo = SIGSEGV;
  f.nested[0].step = int(detail::PanicStep::kDump);
  snprintf(f.nested[0].step_name, sizeof f.nested[0].step_name, "%s", detail::panic_step_name(detail::PanicStep::kDump));
  snprintf(f.nested[0].message, sizeof f.nested[0].message, "bad pointer");
  f.nested_count = 1;
  static const int kNotStopped[] = {111, 222};
  f.not_stopped_tids = kNotStopped;
  f.not_stopped_count = 2;
  std::string text = render(*snap);
  slot->held_count = 0;
  char addr[32];
  snprintf(addr, sizeof addr, "%p", static_cast<const void*>(&held.lock_object()));
  EXPECT_NE(text.find("  holding mutex \"config\" (" + std::string(addr) + ") locked at server.cpp:42\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(std::string("\nnested panics:\n  thread 77: signal SIGSEGV during ") +
                      detail::panic_step_name(detail::PanicStep::kDump) + ": bad pointer\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\nthreads that did not stop:\n  111 222\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace panicstop

namespace panicstop {
namespace {

// Text the program supplied cannot start lines of its own: a newline in the
// panic message, a nested panic's message or a thread's name would otherwise
// forge a thread block that the reader believes.
TEST(TextReport, ProgramTextIsEscapedOntoOneLine) {
  ASSERT_TRUE(detail::reserve_snapshot());
  std::atomic<bool> named{false}, done{false};
  std::thread named_thread([&] {
    set_thread_name("a\nthread 99998 (x) [stopped]");
    named = true;
    while (!done) std::this_thread::yield();
  });
  while (!named) std::this_thread::yield();
  CrashRecord* snap = capture();
  ASSERT_NE(snap, nullptr);
  detail::CrashFacts& f = snap->facts;
  snprintf(f.nested[0].message, sizeof f.nested[0].message, "nested\nthread 99997 (n) [stopped] S");
  f.nested[0].tid = 77;
  f.nested_count = 1;
  f.message = "boom\nthread 99999 (evil) [panicking] R\n  #0 0x1 evil+0x0 (evil)\r\x1b[31m\tback\\slash";
  std::string text = render(*snap);
  done = true;
  named_thread.join();
  std::vector<std::string> lines = lines_of(text);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0],
            "panic: boom\\nthread 99999 (evil) [panicking] R\\n  #0 0x1 evil+0x0 (evil)\\r\\x1b[31m\\tback\\\\slash");
  for (const std::string& l : lines) {
    EXPECT_NE(l.rfind("thread 9999", 0), 0u) << "forged line: " << l;
    EXPECT_EQ(l.find('\r'), std::string::npos) << l;
    EXPECT_EQ(l.find('\x1b'), std::string::npos) << l;
  }
  EXPECT_NE(text.find(" (a\\nthread 99998 (x) [stopped]) ["), std::string::npos) << text.substr(0, 3000);
  EXPECT_NE(text.find(": nested\\nthread 99997 (n) [stopped] S\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace panicstop
