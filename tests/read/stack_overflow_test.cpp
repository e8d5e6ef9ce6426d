// A stack overflow, said as one in every dump: a thread that overflows its
// stack faults in the guard below it, and the text report, the core and the
// minidump all name the fault a stack overflow, with the stack it ran off,
// as `panicstop show` reads each of them; the text report and the core keep
// the thread's callers, which are above the guard. A wild write into some
// other thread's guard is not called one.
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <regex>
#include <string>
#include <thread>

#include "dump/dump_step.hpp"
#include "panic/panic_test_util.hpp"
#include "panicstop/panic.hpp"
#include "panicstop/thread.hpp"
#include "read/dump_file.hpp"
#include "support/child_process.hpp"
#include "support/faults.hpp"

namespace panicstop::read {
namespace {

testing::ChildResult crash(const std::string& dir, void (*body)()) {
  return testing::run_in_child(
      [body] {
        install();
        detail::register_dump_step();
        body();
      },
      testing::with_env(
          {{"PANICSTOP_DUMP_DIR", dir}, {"PANICSTOP_DUMP", "text,core,minidump"}, {"PANICSTOP_CORE_LIMIT", "ignore"}}));
}

const Thread& panicking_thread(const Report& r) {
  for (const Thread& t : r.threads)
    if (t.tid == r.panicking_tid) return t;
  static const Thread none;
  return none;
}

std::string dump_path(const testing::ChildResult& child, const char* kind) {
  std::smatch m;
  std::regex written("panicstop: wrote (\\S+\\." + std::string(kind) + ")");
  return std::regex_search(child.output, m, written) ? std::string(m[1]) : "";
}

TEST(StackOverflow, EveryDumpSaysItWithTheStackAndKeepsTheCallers) {
  testing::TempDir dumps;
  auto child = crash(dumps.path(), [] {
    std::thread([] {
      set_thread_name("deep");
      testing::say("%d\n", testing::overflow_the_stack(0));
    }).join();
  });
  ASSERT_FALSE(child.hung) << child.describe();
  const std::regex said("(^|\n)stack overflow: the fault address is [0-9]+ bytes below the panicking thread's stack, "
                        "0x[0-9a-f]+-0x[0-9a-f]+ \\([0-9]+ KiB\\)\n");
  for (const char* kind : {"txt", "core", "dmp"}) {
    std::string path = dump_path(child, kind);
    ASSERT_FALSE(path.empty()) << kind << "\n" << child.output;
    Report r = read_dump_file(path);
    const Thread& t = panicking_thread(r);
    EXPECT_EQ(t.name, "deep") << kind;
    std::string notes;
    for (const std::string& n : t.notes) notes += n + "\n";
    EXPECT_TRUE(std::regex_search(notes, said)) << kind << ":\n" << notes;
    if (std::string(kind) == "txt") {
      ASSERT_FALSE(r.header_lines.empty());
      std::string header;
      for (const std::string& l : r.header_lines) header += l + "\n";
      EXPECT_NE(header.find(", a stack overflow\n"), std::string::npos) << header;
    }
    // The minidump's stacks are walked by frame pointers only.
    if (std::string(kind) == "dmp") continue;
    size_t callers = 0;
    for (const Frame& f : t.frames) callers += f.function.find("overflow_the_stack") != std::string::npos;
    EXPECT_GE(callers, 16u) << kind;
  }
}

// A write into the guard below another thread's stack: a fault in a guard,
// but not the panicking thread's overflow.
TEST(StackOverflow, AWildWriteIntoAnotherThreadsGuardIsNotOne) {
  testing::TempDir dumps;
  auto child = crash(dumps.path(), [] {
    static std::atomic<pthread_t> parked{};
    std::thread([] {
      parked = pthread_self();
      testing::park();
    }).detach();
    while (parked.load() == pthread_t{}) std::this_thread::yield();
    pthread_attr_t attr;
    void* stack = nullptr;
    size_t size = 0;
    pthread_getattr_np(parked.load(), &attr);
    pthread_attr_getstack(&attr, &stack, &size);
    testing::say("guard write at %p\n", static_cast<char*>(stack) - 16);
    *reinterpret_cast<volatile char*>(static_cast<char*>(stack) - 16) = 1;
  });
  ASSERT_FALSE(child.hung) << child.describe();
  ASSERT_NE(child.output.find("panic: fatal signal SIGSEGV"), std::string::npos) << child.output;
  for (const char* kind : {"txt", "core", "dmp"}) {
    std::string path = dump_path(child, kind);
    ASSERT_FALSE(path.empty()) << kind << "\n" << child.output;
    Report r = read_dump_file(path);
    for (const std::string& n : panicking_thread(r).notes)
      EXPECT_EQ(n.find("stack overflow"), std::string::npos) << kind << ": " << n;
    for (const std::string& l : r.header_lines) EXPECT_EQ(l.find("stack overflow"), std::string::npos) << l;
  }
}

}  // namespace
}  // namespace panicstop::read
