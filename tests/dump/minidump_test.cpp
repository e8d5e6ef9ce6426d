// The minidump opened by independent readers: a child with parked threads
// crashes (SIGSEGV at 0x10) under the real panic path with
// PANICSTOP_DUMP=minidump; the .dmp is then read
//   - byte by byte here, from the format's offsets (not the writer's structs):
//     directory, thread list, names, memory ranges, modules, exception;
//   - by Breakpad's minidump_dump (every stream must parse: exit 0) and
//     minidump_stackwalk with symbols made by Breakpad's dump_syms from this
//     test binary (every thread, each with its own function; the crash reason
//     and address);
//   - by lldb: every thread, the crashing one stopped by SIGSEGV, each
//     parked thread's function in its backtrace.
// Breakpad's tools come from the npm package `minidump` (prebuilt), installed
// by `scripts/deps.sh test`; PANICSTOP_BREAKPAD_BIN overrides where they are.
#include "dump/minidump.hpp"

#include <gtest/gtest.h>

#include <elf.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "dump/dump_step.hpp"
#include "dump/minidump_context.hpp"
#include "dump/minidump_streams.hpp"
#include "dump/unstopped_threads.hpp"
#include "dump/dump_options.hpp"
#include "dump/writer.hpp"
#include "panicstop/kdb.hpp"
#include "panicstop/panic.hpp"
#include "snapshot/parked_threads.hpp"
#include "support/child_process.hpp"
#include "sys/heap_sort.hpp"

namespace panicstop::detail {
namespace {

using testing::ChildOptions;
using testing::ChildResult;

// --- an independent reader of the raw file ---------------------------------

struct RawDump {
  std::string b;
  bool ok = false;
  std::map<uint32_t, std::pair<uint32_t, uint32_t>> streams;  // type -> (rva, size)
  std::vector<uint32_t> types;                                // in directory order

  uint32_t u32(size_t off) const {
    uint32_t v = 0;
    if (off + 4 <= b.size()) memcpy(&v, b.data() + off, 4);
    return v;
  }
  uint64_t u64(size_t off) const {
    uint64_t v = 0;
    if (off + 8 <= b.size()) memcpy(&v, b.data() + off, 8);
    return v;
  }
  bool has(uint32_t type) const { return streams.count(type) != 0; }
  uint32_t rva(uint32_t type) const { return streams.at(type).first; }
  uint32_t size(uint32_t type) const { return streams.at(type).second; }
  // An MDString as ASCII (the tests' names are ASCII).
  std::string string16(uint32_t at) const {
    uint32_t len = u32(at);
    std::string s;
    for (uint32_t i = 0; i + 1 < len && at + 4 + i + 1 < b.size(); i += 2) s += char(b[at + 4 + i]);
    return s;
  }
};

RawDump read_dump(const std::string& path) {
  RawDump d;
  d.b = testing::read_file(path);
  if (d.b.size() < 32 || d.u32(0) != 0x504D444D) return d;
  uint32_t count = d.u32(8), dir = d.u32(12);
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t type = d.u32(dir + 12 * i), size = d.u32(dir + 12 * i + 4), rva = d.u32(dir + 12 * i + 8);
    if (type == 0 && size == 0) continue;
    d.types.push_back(type);
    d.streams[type] = {rva, size};
  }
  d.ok = true;
  return d;
}

struct RawThread {
  uint32_t tid;
  uint64_t stack_start;
  uint32_t stack_size, stack_rva, context_size, context_rva;
};

// The first entry of list stream `type` (count, then `entry`-byte records);
// *n gets the count. The stream must be exactly that long.
uint32_t list_start(const RawDump& d, uint32_t type, uint32_t entry, uint32_t* n) {
  uint32_t at = d.rva(type);
  *n = d.u32(at);
  EXPECT_EQ(d.size(type), 4 + uint64_t(entry) * *n) << "list stream " << type << " has trailing bytes";
  return at + 4;
}

std::vector<RawThread> raw_threads(const RawDump& d) {
  std::vector<RawThread> out;
  uint32_t at = d.rva(3), n = d.u32(at);
  for (uint32_t i = 0; i < n; ++i) {
    size_t e = at + 4 + 48 * size_t(i);
    out.push_back({d.u32(e), d.u64(e + 24), d.u32(e + 32), d.u32(e + 36), d.u32(e + 40), d.u32(e + 44)});
  }
  return out;
}

// --- the tools -------------------------------------------------------------

std::string breakpad_bin() {
  if (const char* env = getenv("PANICSTOP_BREAKPAD_BIN")) return env;
  return PANICSTOP_BREAKPAD_DEFAULT_BIN;
}

bool have_breakpad() { return access((breakpad_bin() + "/minidump_stackwalk").c_str(), X_OK) == 0; }

ChildResult run_tool(const std::vector<std::string>& argv, bool merge_stderr = true) {
  ChildOptions opts;
  opts.deadline = std::chrono::milliseconds(120000);
  if (merge_stderr) return testing::run_command(argv, opts);
  // Breakpad's tools log every step on stderr: keep only stdout.
  std::vector<std::string> sh = {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>/dev/null"};
  sh.insert(sh.end(), argv.begin(), argv.end());
  return testing::run_command(sh, opts);
}

std::string exe_path() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, size_t(n)) : std::string();
}

// The GNU build id of this test binary, as readelf prints it.
std::string own_build_id() {
  ChildResult r = run_tool({"readelf", "-n", exe_path()});
  std::smatch m;
  if (!std::regex_search(r.output, m, std::regex(R"(Build ID: ([0-9a-f]+))"))) return "";
  return m[1];
}

// Breakpad symbols for this binary: DIR/NAME/ID/NAME.sym as the stackwalker
// looks them up. Returns DIR, or "" if dump_syms failed.
std::string make_symbols(const std::string& root) {
  ChildResult r = run_tool({breakpad_bin() + "/dump_syms", exe_path()}, /*merge_stderr=*/false);
  std::istringstream in(r.output);
  std::string module, os, arch, id, name;
  in >> module >> os >> arch >> id >> name;
  if (module != "MODULE" || id.empty()) return "";
  std::string dir = root + "/symbols/" + name + "/" + id;
  testing::run_command({"mkdir", "-p", dir});
  std::ofstream(dir + "/" + name + ".sym") << r.output;
  return root + "/symbols";
}

// --- the crashing child ----------------------------------------------------

constexpr uintptr_t kFaultAddress = 0x10;
// Through a variable the compiler cannot see, so it neither warns about nor
// drops the store.
volatile uintptr_t g_fault_address = kFaultAddress;

__attribute__((noinline)) void crash_here() {
  *reinterpret_cast<volatile int*>(g_fault_address) = 1;
  __asm__ volatile("" ::: "memory");
}

struct Crash {
  testing::TempDir dir;
  ChildResult child;
  std::string dmp;
  int crasher = 0;
  std::map<int, std::string> parked;  // tid -> its park function
};

// threads parked in alpha, beta, gamma in turn; then this thread faults.
Crash* make_crash(size_t threads, std::vector<std::pair<std::string, std::string>> env = {}) {
  auto* c = new Crash;
  ChildOptions opts;
  opts.deadline = std::chrono::milliseconds(60000);
  opts.set_env = {{"PANICSTOP_DUMP_DIR", c->dir.path()}, {"PANICSTOP_DUMP", "minidump"},
                  {"PANICSTOP_STOP_TIMEOUT_MS", "10000"}};
  for (auto& e : env) opts.set_env.push_back(e);
  c->child = testing::run_in_child(
      [threads] {
        install();
        register_dump_step();
        static auto* parked = new testing::ParkedThreads(
            threads, {testing::park_in_alpha, testing::park_in_beta, testing::park_in_gamma}, "worker");
        for (size_t i = 0; i < parked->tids().size(); ++i) printf("parked=%d:%zu\n", parked->tids()[i], i % 3);
        printf("crasher=%d\n", sys::gettid());
        fflush(stdout);
        crash_here();
      },
      opts);
  std::smatch m;
  std::regex wrote(R"(panicstop: wrote (\S+\.dmp))");
  if (std::regex_search(c->child.output, m, wrote)) c->dmp = m[1];
  if (std::regex_search(c->child.output, m, std::regex(R"(crasher=(\d+))"))) c->crasher = std::stoi(m[1]);
  static const char* const kFns[] = {"park_in_alpha", "park_in_beta", "park_in_gamma"};
  std::regex parked(R"(parked=(\d+):(\d))");
  for (std::sregex_iterator it(c->child.output.begin(), c->child.output.end(), parked), end; it != end; ++it)
    c->parked[std::stoi((*it)[1])] = kFns[std::stoi((*it)[2])];
  return c;
}

Crash& crash() {
  static Crash* c = make_crash(6);
  return *c;
}

void expect_crashed_child(const Crash& c, size_t parked) {
  ASSERT_FALSE(c.child.hung) << c.child.describe();
  ASSERT_TRUE(c.child.signaled && c.child.term_signal == SIGSEGV) << c.child.describe() << "\n" << c.child.output;
  ASSERT_FALSE(c.dmp.empty()) << c.child.output;
  ASSERT_EQ(c.parked.size(), parked) << c.child.output;
  ASSERT_NE(c.crasher, 0);
}

// --- structure, read here ----------------------------------------------------

TEST(Minidump, FileNameAndDirectory) {
  Crash& c = crash();
  expect_crashed_child(c, 6);
  std::string base = c.dmp.substr(c.dmp.rfind('/') + 1);
  EXPECT_TRUE(std::regex_match(base, std::regex(R"(panicstop-[A-Za-z0-9_.-]+-\d+-\d+\.dmp)"))) << base;
  EXPECT_EQ(c.dir.list().size(), 1u);  // no temporary file left
  RawDump d = read_dump(c.dmp);
  ASSERT_TRUE(d.ok);
  EXPECT_EQ(d.u32(4) & 0xffff, 0xA793u);
  // The crash time, not 0: Sentry drops events it thinks are old.
  EXPECT_GT(d.u32(20), 1700000000u);
  std::set<uint32_t> seen;
  for (uint32_t type : d.types) {
    EXPECT_TRUE(seen.insert(type).second) << "duplicate stream " << type;  // lldb refuses the file
    EXPECT_LE(uint64_t(d.rva(type)) + d.size(type), d.b.size()) << "stream " << type << " past the end";
  }
  for (uint32_t type : {3u, 4u, 5u, 6u, 7u, 15u, 16u, 24u, 0x47670002u, 0x47670003u, 0x47670004u, 0x47670006u,
                        0x47670008u, 0x47670009u, 0x43500001u})
    EXPECT_TRUE(d.has(type)) << "missing stream 0x" << std::hex << type;
  EXPECT_FALSE(d.has(0x47670007u)) << "the environment is written only when asked for";
  EXPECT_FALSE(d.has(0x47670001u)) << "a crash is no requested dump";
  // MiscInfo: pid and process times (Breakpad prints the uptime from them).
  uint32_t misc = d.rva(15);
  EXPECT_EQ(d.u32(misc), 24u);
  EXPECT_EQ(d.u32(misc + 4), 3u) << "PROCESS_ID | PROCESS_TIMES";
  uint32_t created = d.u32(misc + 12);
  EXPECT_LE(created, d.u32(20));
  EXPECT_GT(created + 3600, d.u32(20)) << "the child started moments before it crashed";
}

TEST(Minidump, EveryThreadWithNameContextAndStack) {
  Crash& c = crash();
  expect_crashed_child(c, 6);
  RawDump d = read_dump(c.dmp);
  ASSERT_TRUE(d.ok);
  std::vector<RawThread> threads = raw_threads(d);
  ASSERT_EQ(d.size(3), 4 + 48 * threads.size());  // no trailing bytes in a list stream
  ASSERT_FALSE(threads.empty());
  EXPECT_EQ(int(threads[0].tid), c.crasher) << "the crashing thread comes first";
  std::map<uint32_t, std::string> names;
  uint32_t n;
  uint32_t at = list_start(d, 24, 12, &n);
  for (uint32_t i = 0; i < n; ++i) names[d.u32(at + 12 * i)] = d.string16(uint32_t(d.u64(at + 4 + 12 * i)));
  std::set<int> tids;
  for (const RawThread& t : threads) {
    EXPECT_TRUE(tids.insert(int(t.tid)).second) << "duplicate tid " << t.tid;
#if defined(__aarch64__)
    // The older 796-byte arm64 context (the layout lldb reads): flags, x0-x30, sp, pc.
    ASSERT_EQ(t.context_size, 796u);
    EXPECT_EQ(d.u64(t.context_rva) & 0xffffffff00000000u, 0u);
    EXPECT_EQ(d.u32(t.context_rva) & 0xffff0000u, 0x80000000u);
    uint64_t rsp = d.u64(t.context_rva + 8 + 31 * 8), rip = d.u64(t.context_rva + 8 + 32 * 8);
#else
    ASSERT_EQ(t.context_size, 1232u);
    uint32_t flags = d.u32(t.context_rva + 48);
    EXPECT_EQ(flags & 0xffffff00u, 0x00100000u);
    uint64_t rsp = d.u64(t.context_rva + 152), rip = d.u64(t.context_rva + 248);
#endif
    EXPECT_NE(rip, 0u) << t.tid;
    // The stack starts just below the stack pointer and is in the file.
    ASSERT_GT(t.stack_size, 0u) << t.tid;
    EXPECT_LE(t.stack_start, rsp);
    EXPECT_GT(t.stack_start + t.stack_size, rsp);
    EXPECT_LE(uint64_t(t.stack_rva) + t.stack_size, d.b.size());
  }
  for (const auto& [tid, fn] : c.parked) {
    EXPECT_TRUE(tids.count(tid)) << "parked thread " << tid << " missing";
    EXPECT_EQ(names[uint32_t(tid)].rfind("worker-", 0), 0u) << names[uint32_t(tid)];
  }
  // The crashing thread's context is the fault's: rip in crash_here, which
  // wrote to kFaultAddress.
  uint32_t ex = d.rva(6);
  EXPECT_EQ(int(d.u32(ex)), c.crasher);
  EXPECT_EQ(d.u32(ex + 8), uint32_t(SIGSEGV));
  EXPECT_EQ(d.u32(ex + 12), uint32_t(SEGV_MAPERR));
  EXPECT_EQ(d.u64(ex + 24), kFaultAddress);
  EXPECT_EQ(d.u32(ex + 164), threads[0].context_rva);
}

TEST(Minidump, MemoryRangesAreSortedDisjointAndHoldEveryStack) {
  Crash& c = crash();
  expect_crashed_child(c, 6);
  RawDump d = read_dump(c.dmp);
  ASSERT_TRUE(d.ok);
  uint32_t n;
  uint32_t at = list_start(d, 5, 16, &n);
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (uint32_t i = 0; i < n; ++i) {
    uint64_t start = d.u64(at + 16 * i);
    uint32_t size = d.u32(at + 8 + 16 * i), rva = d.u32(at + 12 + 16 * i);
    EXPECT_GT(size, 0u);
    EXPECT_LE(uint64_t(rva) + size, d.b.size());
    if (!ranges.empty()) {
      EXPECT_GT(start, ranges.back().second) << "ranges overlap or touch";
    }
    ranges.emplace_back(start, start + size);
  }
  // lldb reads stacks only from the memory list.
  for (const RawThread& t : raw_threads(d)) {
    bool inside = false;
    for (auto& [s, e] : ranges) inside |= t.stack_start >= s && t.stack_start + t.stack_size <= e;
    EXPECT_TRUE(inside) << "stack of " << t.tid << " not in the memory list";
  }
}

TEST(Minidump, ExecutableFirstWithItsFullBuildId) {
  Crash& c = crash();
  expect_crashed_child(c, 6);
  RawDump d = read_dump(c.dmp);
  ASSERT_TRUE(d.ok);
  uint32_t n;
  uint32_t at = list_start(d, 4, 108, &n);
  ASSERT_GT(n, 2u);
  EXPECT_EQ(d.string16(d.u32(at + 20)), exe_path());
  uint32_t cv_size = d.u32(at + 76), cv = d.u32(at + 80);
  ASSERT_GE(cv_size, 4u + 20u);
  EXPECT_EQ(d.b.substr(cv, 4), "LEpB");
  std::string id;
  for (uint32_t i = 4; i < cv_size; ++i) {
    char hex[3];
    snprintf(hex, sizeof hex, "%02x", static_cast<unsigned char>(d.b[cv + i]));
    id += hex;
  }
  EXPECT_EQ(id, own_build_id());
  std::set<std::string> names;
  for (uint32_t i = 0; i < n; ++i) names.insert(d.string16(d.u32(at + 108 * i + 20)));
  // A vDSO where the kernel maps one (qemu-user 7.2 gives aarch64 guests none).
  if (getauxval(AT_SYSINFO_EHDR) != 0) {
    EXPECT_TRUE(names.count("linux-gate.so")) << "the vDSO";
  }
}

// --- Breakpad --------------------------------------------------------------

TEST(MinidumpBreakpad, MinidumpDumpParsesEveryStream) {
  ASSERT_TRUE(have_breakpad()) << "Breakpad's tools are missing at " << breakpad_bin()
                               << ": run scripts/deps.sh test";
  Crash& c = crash();
  expect_crashed_child(c, 6);
  ChildResult r = run_tool({breakpad_bin() + "/minidump_dump", c.dmp});
  // minidump_dump exits 1 if any stream it knows fails to read.
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output.substr(0, 4000);
  EXPECT_EQ(r.output.find("ERROR"), std::string::npos) << r.output.substr(0, 4000);
  // Its log lines on stderr can land inside a line of stdout: read the
  // streams' text from stdout alone.
  ChildResult out = run_tool({breakpad_bin() + "/minidump_dump", c.dmp}, /*merge_stderr=*/false);
  EXPECT_NE(out.output.find("simple_annotations[\"panic_message\"] = fatal signal SIGSEGV"), std::string::npos)
      << out.output.substr(0, 4000) << "\nthe crashing child's output:\n" << c.child.output;
  EXPECT_NE(out.output.find("simple_annotations[\"signal\"] = SIGSEGV (SEGV_MAPERR), fault address 0x10"),
            std::string::npos)
      << out.output.substr(0, 4000);
}

TEST(MinidumpBreakpad, StackwalkShowsEveryThreadWithItsFunction) {
  ASSERT_TRUE(have_breakpad()) << "Breakpad's tools are missing at " << breakpad_bin()
                               << ": run scripts/deps.sh test";
  Crash& c = crash();
  expect_crashed_child(c, 6);
  testing::TempDir work;
  std::string symbols = make_symbols(work.path());
  ASSERT_FALSE(symbols.empty()) << "dump_syms failed";
  ChildResult r = run_tool({breakpad_bin() + "/minidump_stackwalk", c.dmp, symbols}, /*merge_stderr=*/false);
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  const std::string& out = r.output;
  EXPECT_NE(out.find("Crash reason:  SIGSEGV /SEGV_MAPERR"), std::string::npos) << out;
  EXPECT_NE(out.find("Crash address: 0x10\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Assertion: Unknown assertion type 0x00000000 fatal signal SIGSEGV"), std::string::npos) << out;
  // Threads are printed in the thread list's order: map index -> tid.
  std::vector<RawThread> threads = raw_threads(read_dump(c.dmp));
  std::map<int, std::string> blocks;
  std::istringstream in(out);
  std::string line;
  int current = -1;
  while (std::getline(in, line)) {
    if (line.rfind("Thread ", 0) == 0) current = std::atoi(line.c_str() + 7);
    else if (line.rfind("Loaded modules:", 0) == 0) current = -1;
    if (current >= 0) blocks[current] += line + "\n";
  }
  ASSERT_EQ(blocks.size(), threads.size()) << out;
  EXPECT_EQ(blocks[0].rfind("Thread 0 (crashed)", 0), 0u) << blocks[0];
  EXPECT_NE(blocks[0].find("crash_here"), std::string::npos) << blocks[0];
  for (size_t i = 0; i < threads.size(); ++i) {
    auto it = c.parked.find(int(threads[i].tid));
    if (it == c.parked.end()) continue;
    EXPECT_NE(blocks[int(i)].find(it->second), std::string::npos)
        << "thread " << threads[i].tid << " should show " << it->second << ":\n" << blocks[int(i)];
  }
}

// --- lldb ------------------------------------------------------------------

TEST(MinidumpLldb, EveryThreadAndItsFunction) {
  if (!testing::have_program("lldb")) GTEST_SKIP() << "lldb not installed";
  Crash& c = crash();
  expect_crashed_child(c, 6);
  ChildResult r = run_tool({"lldb", "--batch", "-c", c.dmp, "-o", "thread list", "-o", "bt all"});
  const std::string& out = r.output;
  ASSERT_FALSE(r.hung) << out;
  // `thread list` gives "thread #N: tid = T"; the backtraces are keyed by #N.
  std::map<int, int> tid_of_index;
  std::istringstream list(out);
  std::string line;
  while (std::getline(list, line)) {
    size_t h = line.find("thread #"), t = line.find("tid = ");
    if (h != std::string::npos && t != std::string::npos)
      tid_of_index[std::atoi(line.c_str() + h + 8)] = std::atoi(line.c_str() + t + 6);
  }
  size_t bt_at = out.find("(lldb) bt all");
  ASSERT_NE(bt_at, std::string::npos) << out;
  std::map<int, std::string> bt;
  std::istringstream in(out.substr(bt_at));
  int current = -1;
  while (std::getline(in, line)) {
    size_t h = line.find("thread #");
    if (h != std::string::npos && line.find_first_not_of(" *") == h) current = tid_of_index[std::atoi(line.c_str() + h + 8)];
    if (current > 0) bt[current] += line + "\n";
  }
  EXPECT_EQ(tid_of_index.size(), raw_threads(read_dump(c.dmp)).size()) << out;
  EXPECT_NE(bt[c.crasher].find("stop reason = signal SIGSEGV"), std::string::npos) << out;
  EXPECT_NE(bt[c.crasher].find("crash_here"), std::string::npos) << out;
  for (const auto& [tid, fn] : c.parked) {
    ASSERT_TRUE(bt.count(tid)) << "lldb does not show thread " << tid << ":\n" << out;
    EXPECT_NE(bt[tid].find(fn), std::string::npos) << tid << " should show " << fn << ":\n" << bt[tid];
  }
}

// --- a requested dump ------------------------------------------------------

TEST(Minidump, LiveDumpIsARequestedDumpNotACrash) {
  testing::TempDir dir;
  ChildOptions opts;
  opts.set_env = {{"PANICSTOP_DUMP_DIR", dir.path()}, {"PANICSTOP_DUMP", "minidump"}};
  ChildResult r = testing::run_in_child(
      [] {
        install();
        testing::ParkedThreads parked(3, {testing::park_in_alpha}, "live");
        printf("dumper=%d\n", sys::gettid());
        fflush(stdout);
        _exit(live_dump(nullptr) == 1 ? 0 : 3);
      },
      opts);
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex(R"(panicstop: wrote (\S+\.dmp))"))) << r.output;
  std::string path = m[1];
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex(R"(dumper=(\d+))")));
  int dumper = std::stoi(m[1]);
  RawDump d = read_dump(path);
  ASSERT_TRUE(d.ok);
  EXPECT_FALSE(d.has(6)) << "no exception: nothing crashed";
  ASSERT_TRUE(d.has(0x47670001u));
  uint32_t bi = d.rva(0x47670001u);
  EXPECT_EQ(d.u32(bi), 2u) << "only the requesting thread is valid";
  EXPECT_EQ(int(d.u32(bi + 8)), dumper);
  EXPECT_EQ(raw_threads(d).size(), 4u + 0u) << "three parked, the dumper";
  if (!have_breakpad()) return;
  ChildResult sw = run_tool({breakpad_bin() + "/minidump_stackwalk", path}, /*merge_stderr=*/false);
  EXPECT_NE(sw.output.find("No crash"), std::string::npos) << sw.output;
  EXPECT_NE(sw.output.find("Thread 0 (requested dump, did not crash)"), std::string::npos) << sw.output;
}

// --- many threads ----------------------------------------------------------

TEST(Minidump, AThousandThreadsStaySmall) {
  std::unique_ptr<Crash> c(make_crash(1000));
  expect_crashed_child(*c, 1000);
  RawDump d = read_dump(c->dmp);
  ASSERT_TRUE(d.ok);
  EXPECT_EQ(raw_threads(d).size(), 1001u);
  EXPECT_LT(d.b.size(), 5u << 20) << "a 1,000-thread minidump should stay under 5 MiB";
  printf("1,000-thread minidump: %zu bytes\n", d.b.size());
  if (!have_breakpad()) return;
  ChildResult sw = run_tool({breakpad_bin() + "/minidump_stackwalk", c->dmp}, /*merge_stderr=*/false);
  size_t listed = 0;
  for (size_t at = sw.output.find("\nThread "); at != std::string::npos; at = sw.output.find("\nThread ", at + 1))
    ++listed;
  EXPECT_EQ(listed, 1001u);
}

TEST(Minidump, EnvironmentOnlyWhenAskedFor) {
  std::unique_ptr<Crash> c(make_crash(1, {{"PANICSTOP_MINIDUMP_ENVIRON", "1"}}));
  expect_crashed_child(*c, 1);
  RawDump d = read_dump(c->dmp);
  ASSERT_TRUE(d.has(0x47670007u));
  // The forked child's environment block is this process's.
  std::string env = d.b.substr(d.rva(0x47670007u), d.size(0x47670007u));
  EXPECT_EQ(env, testing::read_file("/proc/self/environ"));
}

// --- threads that did not stop ---------------------------------------------

// One thread asleep in read() with the stop signal blocked (the kernel's pc and
// sp only), one spinning (no registers at all): both are in the thread list,
// with what is known and nothing made up, and the readers still take the file.
TEST(Minidump, ThreadsThatDidNotStopKeepWhatTheKernelShowed) {
  testing::TempDir dir;
  ChildOptions opts;
  opts.deadline = std::chrono::milliseconds(30000);
  opts.set_env = {{"PANICSTOP_DUMP_DIR", dir.path()}, {"PANICSTOP_DUMP", "minidump"},
                  {"PANICSTOP_STOP_TIMEOUT_MS", "200"}};
  ChildResult r = testing::run_in_child([] { testing::panic_with_unstopped_threads(true); }, opts);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex(R"(reader=(\d+) spinner=(\d+))"))) << r.output;
  uint32_t reader = uint32_t(std::stoi(m[1])), spinner = uint32_t(std::stoi(m[2]));
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex(R"(panicstop: wrote (\S+\.dmp))"))) << r.output;
  std::string path = m[1];
  RawDump d = read_dump(path);
  ASSERT_TRUE(d.ok);
  bool saw_reader = false, saw_spinner = false;
  for (const RawThread& t : raw_threads(d)) {
    uint32_t flags = d.u32(t.context_rva + 48);
    uint64_t rsp = d.u64(t.context_rva + 152), rip = d.u64(t.context_rva + 248);
    if (t.tid == reader) {
      saw_reader = true;
      EXPECT_EQ(flags, 0x00100001u) << "control registers only (pc and sp from /proc)";
      EXPECT_NE(rip, 0u);
      EXPECT_NE(rsp, 0u);
      EXPECT_GT(t.stack_size, 0u);
      EXPECT_LE(t.stack_start, rsp);
    }
    if (t.tid == spinner) {
      saw_spinner = true;
      EXPECT_EQ(flags, 0x00100000u) << "no registers: no register flags";
      EXPECT_EQ(rip, 0u);
      EXPECT_EQ(t.stack_size, 0u);
    }
  }
  EXPECT_TRUE(saw_reader);
  EXPECT_TRUE(saw_spinner);
  if (testing::have_program("lldb")) {
    ChildResult l = run_tool({"lldb", "--batch", "-c", path, "-o", "thread list"});
    EXPECT_NE(l.output.find("tid = " + std::to_string(reader)), std::string::npos) << l.output;
    EXPECT_NE(l.output.find("tid = " + std::to_string(spinner)), std::string::npos) << l.output;
  }
  if (!have_breakpad()) return;
  ChildResult sw = run_tool({breakpad_bin() + "/minidump_stackwalk", path}, /*merge_stderr=*/false);
  EXPECT_TRUE(sw.exited && sw.exit_code == 0) << sw.describe();
  size_t listed = 0;
  for (size_t at = sw.output.find("\nThread "); at != std::string::npos; at = sw.output.find("\nThread ", at + 1))
    ++listed;
  EXPECT_EQ(listed, raw_threads(d).size()) << sw.output;
}

// --- pieces ----------------------------------------------------------------

TEST(MinidumpPieces, Utf16FromUtf8) {
  uint16_t out[16];
  EXPECT_EQ(md::utf16_from_utf8("ab", 16, out, 16), 2u);
  EXPECT_EQ(out[0], 'a');
  // é (2 bytes), € (3 bytes), 😀 (4 bytes: a surrogate pair)
  const char* s = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
  ASSERT_EQ(md::utf16_from_utf8(s, 64, out, 16), 4u);
  EXPECT_EQ(out[0], 0xe9);
  EXPECT_EQ(out[1], 0x20ac);
  EXPECT_EQ(out[2], 0xd83d);
  EXPECT_EQ(out[3], 0xde00);
  // A stray continuation byte and a truncated sequence become U+FFFD.
  ASSERT_EQ(md::utf16_from_utf8("\x80x\xe2\x82", 64, out, 16), 4u);
  EXPECT_EQ(out[0], 0xfffd);
  EXPECT_EQ(out[1], 'x');
  // The cap holds, and a pair is never split.
  EXPECT_EQ(md::utf16_from_utf8("\xf0\x9f\x98\x80", 64, out, 1), 0u);
}

// The memory ranges are ordered with it before they are merged.
TEST(MinidumpPieces, HeapSortOrdersAnyInput) {
  std::vector<uint64_t> v;
  for (uint64_t i = 0; i < 1000; ++i) v.push_back((i * 7919) % 1009);
  v.push_back(5);  // a duplicate
  std::vector<uint64_t> want = v;
  std::sort(want.begin(), want.end());
  sys::heap_sort(v.data(), v.size(), [](uint64_t a, uint64_t b) { return a < b; });
  EXPECT_EQ(v, want);
  sys::heap_sort(v.data(), 0, [](uint64_t a, uint64_t b) { return a < b; });
  sys::heap_sort(v.data(), 1, [](uint64_t a, uint64_t b) { return a < b; });
}

TEST(MinidumpPieces, KernelOnlyContextsSayWhatIsKnown) {
  md::ContextAmd64 c;
  md::amd64_context_from_kernel(0x1234, 0x7ff0, &c);
  EXPECT_EQ(c.context_flags, md::kContextAmd64 | md::kAmd64Control);
  EXPECT_EQ(c.rip, 0x1234u);
  EXPECT_EQ(c.rsp, 0x7ff0u);
  md::amd64_context_from_kernel(0, 0, &c);
  EXPECT_EQ(c.context_flags, md::kContextAmd64) << "no registers: no register flags";
  md::ContextArm64Old a;
  core::Aarch64Regs regs{};
  regs.x[29] = 0xf00;
  regs.sp = 0x7ff0;
  regs.pc = 0x1234;
  md::arm64_context_from_regs(regs, nullptr, &a);
  EXPECT_EQ(a.iregs[29], 0xf00u);
  EXPECT_EQ(a.iregs[31], 0x7ff0u);
  EXPECT_EQ(a.iregs[32], 0x1234u);
  EXPECT_EQ(a.context_flags, md::kContextArm64Old | md::kArm64OldInteger);
}

TEST(MinidumpPieces, DumpFormatsAreACommaList) {
  struct Case {
    const char* value;
    bool ok, text, core, minidump;
  };
  const Case cases[] = {
      {"text,core,minidump", true, true, true, true}, {"minidump", true, false, false, true},
      {"core,minidump", true, false, true, true},     {"none", true, false, false, false},
      {"text,text", false, false, false, false},      {"minidump,", false, false, false, false},
      {"mini", false, false, false, false},
  };
  // Which writers a parse chose, by name.
  auto chosen = [](const DumpOptions& o, const char* name) {
    size_t count = 0;
    const DumpWriter* writers = dump_writers(&count);
    for (uint32_t k = 0; k < o.order_count; ++k)
      if (std::string(writers[o.order[k]].name) == name) return true;
    return false;
  };
  for (const Case& k : cases) {
    setenv("PANICSTOP_DUMP", k.value, 1);
    DumpOptions o;
    char err[512] = "";
    bool ok = parse_dump_options(&o, err, sizeof err);
    EXPECT_EQ(ok, k.ok) << k.value << ": " << err;
    if (!ok) {
      EXPECT_NE(std::string(err).find("PANICSTOP_DUMP="), std::string::npos) << err;
      continue;
    }
    EXPECT_EQ(chosen(o, "text"), k.text) << k.value;
    EXPECT_EQ(chosen(o, "core"), k.core) << k.value;
    EXPECT_EQ(chosen(o, "minidump"), k.minidump) << k.value;
  }
  // An upload URL alone adds the minidump collectors take, except to "none".
  setenv("PANICSTOP_UPLOAD_URL", "http://127.0.0.1:9/upload", 1);
  for (const char* value : {"text", "text,core", "minidump,text"}) {
    setenv("PANICSTOP_DUMP", value, 1);
    DumpOptions o;
    char err[512] = "";
    ASSERT_TRUE(parse_dump_options(&o, err, sizeof err)) << err;
    EXPECT_TRUE(chosen(o, "minidump")) << value;
    EXPECT_TRUE(chosen(o, "text")) << value;
  }
  unsetenv("PANICSTOP_DUMP");
  DumpOptions defaults;
  char err[512] = "";
  ASSERT_TRUE(parse_dump_options(&defaults, err, sizeof err)) << err;
  EXPECT_TRUE(chosen(defaults, "minidump") && chosen(defaults, "text") && chosen(defaults, "core"));
  setenv("PANICSTOP_DUMP", "none", 1);
  DumpOptions none;
  ASSERT_TRUE(parse_dump_options(&none, err, sizeof err)) << err;
  EXPECT_EQ(none.order_count, 0u);
  unsetenv("PANICSTOP_UPLOAD_URL");
  unsetenv("PANICSTOP_DUMP");
}

}  // namespace
}  // namespace panicstop::detail
