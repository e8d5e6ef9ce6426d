// `panicstop show` on minidumps: a child with parked threads crashes with
// PANICSTOP_DUMP=minidump, and the reader must find the message, the crashing
// thread, every parked thread by name with its own function (frame-pointer
// walk, symbolized from the module list), and the executable's build id; every
// truncation of the file is read or rejected with ReadError, never read out of
// bounds.
#include "read/minidump_parser.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "dump/dump_step.hpp"
#include "panicstop/panic.hpp"
#include "read/dump_file.hpp"
#include "read/render.hpp"
#include "snapshot/parked_threads.hpp"
#include "support/child_process.hpp"

namespace panicstop::read {
namespace {

volatile uintptr_t g_fault_address = 0x10;

__attribute__((noinline)) void crash_in_reader_test() {
  *reinterpret_cast<volatile int*>(g_fault_address) = 1;
  __asm__ volatile("" ::: "memory");
}

struct Dump {
  testing::TempDir dir;
  testing::ChildResult child;
  std::string path;
  int crasher = 0;
  std::map<int, std::string> parked;  // tid -> function
};

Dump& dump() {
  static Dump* d = [] {
    auto* d = new Dump;
    testing::ChildOptions opts;
    opts.set_env = {{"PANICSTOP_DUMP_DIR", d->dir.path()}, {"PANICSTOP_DUMP", "minidump"}};
    d->child = testing::run_in_child(
        [] {
          install();
          detail::register_dump_step();
          static auto* parked =
              new testing::ParkedThreads(3, {testing::park_in_alpha, testing::park_in_beta, testing::park_in_gamma},
                                         "reader");
          for (size_t i = 0; i < parked->tids().size(); ++i) printf("parked=%d:%zu\n", parked->tids()[i], i);
          printf("crasher=%d\n", sys::gettid());
          fflush(stdout);
          crash_in_reader_test();
        },
        opts);
    std::smatch m;
    if (std::regex_search(d->child.output, m, std::regex(R"(panicstop: wrote (\S+\.dmp))"))) d->path = m[1];
    if (std::regex_search(d->child.output, m, std::regex(R"(crasher=(\d+))"))) d->crasher = std::stoi(m[1]);
    static const char* const kFns[] = {"park_in_alpha", "park_in_beta", "park_in_gamma"};
    std::regex parked(R"(parked=(\d+):(\d))");
    for (std::sregex_iterator it(d->child.output.begin(), d->child.output.end(), parked), end; it != end; ++it)
      d->parked[std::stoi((*it)[1])] = kFns[std::stoi((*it)[2])];
    return d;
  }();
  return *d;
}

TEST(MinidumpParser, ShowsEveryThreadWithItsFunction) {
  Dump& d = dump();
  ASSERT_FALSE(d.path.empty()) << d.child.describe() << "\n" << d.child.output;
  Report r = read_dump_file(d.path);
  EXPECT_EQ(r.kind, Report::Kind::kMinidump);
  EXPECT_EQ(r.message.rfind("fatal signal SIGSEGV", 0), 0u) << r.message;
  EXPECT_EQ(r.signal, SIGSEGV);
  EXPECT_EQ(r.panicking_tid, d.crasher);
  EXPECT_GT(r.pid, 0);
  std::map<int, const Thread*> by_tid;
  for (const Thread& t : r.threads) by_tid[t.tid] = &t;
  ASSERT_TRUE(by_tid.count(d.crasher));
  const Thread& crashed = *by_tid[d.crasher];
  EXPECT_EQ(crashed.state, "panicking");
  ASSERT_FALSE(crashed.frames.empty());
  EXPECT_NE(crashed.frames[0].function.find("crash_in_reader_test"), std::string::npos) << crashed.frames[0].function;
  ASSERT_EQ(d.parked.size(), 3u);
  for (const auto& [tid, fn] : d.parked) {
    ASSERT_TRUE(by_tid.count(tid)) << tid;
    const Thread& t = *by_tid[tid];
    EXPECT_EQ(t.name.rfind("reader-", 0), 0u) << t.name;
    EXPECT_EQ(t.state, "stopped");
    std::string functions;
    for (const Frame& f : t.frames) functions += f.function + "\n";
    EXPECT_NE(functions.find(fn), std::string::npos) << tid << " should show " << fn << ":\n" << functions;
  }
  ASSERT_FALSE(r.modules.empty());
  EXPECT_TRUE(r.modules[0].is_executable);
  EXPECT_EQ(r.modules[0].build_id.size(), 40u) << "the full 20-byte GNU build id";
  std::ostringstream json;
  render_json(r, d.path, json);
  EXPECT_NE(json.str().find("\"kind\":\"minidump\""), std::string::npos);
}

TEST(MinidumpParser, EveryTruncationIsReadOrRejected) {
  Dump& d = dump();
  ASSERT_FALSE(d.path.empty());
  std::string file = testing::read_file(d.path);
  std::vector<unsigned char> bytes(file.begin(), file.end());
  size_t rejected = 0;
  // Every cut in the header and directory, then a cut every 509 bytes.
  for (size_t n = 0; n < bytes.size(); n += n < 512 ? 1 : 509) {
    try {
      parse_minidump({bytes.data(), n});
    } catch (const ReadError& e) {
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0u);
  EXPECT_THROW(parse_minidump({bytes.data(), 3}), ReadError);
}

}  // namespace
}  // namespace panicstop::read
