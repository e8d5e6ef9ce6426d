// The ELF core opened by the tools people use: a child with 8 threads parked in
// known functions is hard-stopped, captured and written as a core; gdb,
// eu-stack, lldb and drgn must each show every thread, the capturing thread
// first, and each thread's own function in its own backtrace. The core's
// structure (note order and sizes, the PANICSTOP note) is checked directly.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <elf.h>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <pthread.h>
#include <sstream>
#include <sys/procfs.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "dump/elf_core.hpp"
#include "panic/panic_state.hpp"
#include "panicstop/thread.hpp"
#include "snapshot/snapshot.hpp"
#include "stop/stop.hpp"
#include "support/child_process.hpp"
#include "sys/syscall.hpp"

namespace panicstop::detail {
namespace {

using testing::ChildOptions;
using testing::ChildResult;

constexpr int kWorkers = 8;
const char* const kWorkerNames[kWorkers] = {"worker_alpha", "worker_beta",    "worker_gamma", "worker_delta",
                                            "worker_epsilon", "worker_zeta", "worker_eta",   "worker_theta"};

std::atomic<int> g_ready{0};
std::atomic<int> g_worker_tids[kWorkers];
std::atomic<uint32_t> g_never{0};

// Each worker parks in its own function; noinline and a distinct body keep
// every name in the backtrace.
#define DEFINE_WORKER(index, fname)                                     \
  __attribute__((noinline)) void fname() {                              \
    pthread_setname_np(pthread_self(), &#fname[7]);                     \
    g_worker_tids[index].store(sys::gettid());                          \
    g_ready.fetch_add(1);                                               \
    for (;;) sys::futex_wait(&g_never, 0);                              \
    __asm__ volatile("" ::: "memory");                                  \
  }
DEFINE_WORKER(0, worker_alpha)
DEFINE_WORKER(1, worker_beta)
DEFINE_WORKER(2, worker_gamma)
DEFINE_WORKER(3, worker_delta)
DEFINE_WORKER(4, worker_epsilon)
DEFINE_WORKER(5, worker_zeta)
DEFINE_WORKER(6, worker_eta)
DEFINE_WORKER(7, worker_theta)
void (*const kWorkers_fn[kWorkers])() = {worker_alpha, worker_beta, worker_gamma, worker_delta,
                                          worker_epsilon, worker_zeta, worker_eta, worker_theta};

std::atomic<int> g_main_tid{0};

// The main thread's place while another thread panics.
__attribute__((noinline)) void main_parked() {
  g_main_tid.store(sys::gettid());
  for (;;) sys::futex_wait(&g_never, 0);
  __asm__ volatile("" ::: "memory");
}

// Runs in the child: hard-stops the other threads, captures and writes the
// core, and records who is who in DIR/tids (the capturing thread first).
__attribute__((noinline)) void panicking_capture(const std::string& dir, CoreKind kind) {
  StopResult r = stop_other_threads(StopKind::kHard, 5'000'000'000);
  if (!r.ok) _exit(5);
  save_own_context_via_signal();
  CrashRecord& rec = reset_crash_record();
  if (!capture_crash_record(rec)) _exit(3);
  rec.facts.signo = SIGABRT;
  rec.facts.message = "elf core test: eight\nthreads";
  DumpOptions o;
  o.core = kind;
  int fd = open((dir + "/test.core").c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
  if (fd < 0 || !write_elf_core(rec, o, fd)) _exit(4);
  close(fd);
  std::ofstream tids(dir + "/tids");
  tids << sys::gettid() << " panicking_capture\n";
  for (int i = 0; i < kWorkers; ++i) tids << g_worker_tids[i].load() << " " << kWorkerNames[i] << "\n";
  if (g_main_tid.load() != 0) tids << g_main_tid.load() << " main_parked\n";
  tids.close();
  _exit(0);
}

// on_worker: the capture runs on a ninth thread while main parks, as in most
// real panics; the main thread's control block is then not the current one.
void child_body(const std::string& dir, CoreKind kind, bool on_worker) {
  if (!install_stop_handlers()) _exit(2);
  claim_current_slot();
  for (int i = 0; i < kWorkers; ++i) std::thread(kWorkers_fn[i]).detach();
  while (g_ready.load() < kWorkers) sys::futex_wait(&g_ready, uint32_t(g_ready.load()), 1000000);
  if (!on_worker) panicking_capture(dir, kind);
  std::thread([&] {
    while (g_main_tid.load() == 0) sys::futex_wait(&g_main_tid, 0, 1000000);
    panicking_capture(dir, kind);
  }).detach();
  main_parked();
}

struct Frames {
  std::vector<std::pair<int, std::string>> threads;  // tid, its function; the panicking one first
};

std::string exe_path() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, size_t(n)) : std::string();
}

// One core per kind, written once for all the tests of that kind.
struct CoreFile {
  testing::TempDir dir;
  std::string path;
  Frames expected;
  ChildResult child;
  bool ok = false;
};

CoreFile* make_core(CoreKind kind, bool on_worker, const char* keep_name) {
  auto* c = new CoreFile;
  ChildOptions opts;
  opts.deadline = std::chrono::milliseconds(30000);
  std::string dir = c->dir.path();
  c->child = testing::run_in_child([&] { child_body(dir, kind, on_worker); }, opts);
  c->path = dir + "/test.core";
  std::ifstream tids(dir + "/tids");
  int tid;
  std::string fn;
  while (tids >> tid >> fn) c->expected.threads.emplace_back(tid, fn);
  // For debugging the writer: ELF_CORE_TEST_KEEP=DIR keeps a copy of each core.
  if (const char* keep = getenv("ELF_CORE_TEST_KEEP"))
    std::ofstream(std::string(keep) + "/" + keep_name) << testing::read_file(c->path);
  c->ok = c->child.exited && c->child.exit_code == 0 &&
          c->expected.threads.size() == size_t(kWorkers + 1 + (on_worker ? 1 : 0));
  return c;
}

CoreFile& mini_core() {
  static CoreFile* c = make_core(CoreKind::kMini, false, "mini.core");
  return *c;
}
CoreFile& full_core() {
  static CoreFile* c = make_core(CoreKind::kFull, false, "full.core");
  return *c;
}
CoreFile& worker_core() {
  static CoreFile* c = make_core(CoreKind::kMini, true, "worker.core");
  return *c;
}

// libthread_db needs every thread's control block; the main thread's is found
// only through its saved TLS base when another thread writes the core.
template <typename Context>
constexpr bool kHasTlsBase = requires(const Context& c) { c.tls_base; };
constexpr bool kTlsBaseSaved = kHasTlsBase<SavedContext>;

std::string run_tool(const std::vector<std::string>& argv) {
  ChildOptions opts;
  opts.deadline = std::chrono::milliseconds(120000);
  ChildResult r = testing::run_command(argv, opts);
  EXPECT_FALSE(r.hung) << argv[0] << ": " << r.describe();
  return r.output;
}

void expect_no_failure_signs(const std::string& out, bool thread_db = true) {
  for (const char* bad : {"Couldn't find general-purpose registers", "Corrupted shared library list",
                          "not a valid ELF file", "Unexpected size of section", "unexpected end of file",
                          "is truncated", "too small", "Cannot find new threads"}) {
    if (!thread_db && std::strcmp(bad, "Cannot find new threads") == 0) continue;
    EXPECT_EQ(out.find(bad), std::string::npos) << "found \"" << bad << "\" in:\n" << out;
  }
}

// Splits tool output into per-thread blocks: each block starts at a line that
// begins with `header` and is keyed by the number after `tid_marker` in it.
std::map<int, std::string> blocks_by_tid(const std::string& out, const std::string& header,
                                         const std::string& tid_marker, std::vector<int>* order) {
  std::map<int, std::string> blocks;
  std::istringstream in(out);
  std::string line;
  int current = -1;
  while (std::getline(in, line)) {
    size_t h = line.find(header);
    if (h != std::string::npos && line.find_first_not_of(" *") == h) {
      size_t m = line.find(tid_marker, h);
      current = m == std::string::npos ? -1 : std::atoi(line.c_str() + m + tid_marker.size());
      if (current > 0 && order != nullptr) order->push_back(current);
    }
    if (current > 0) blocks[current] += line + "\n";
  }
  return blocks;
}

void expect_every_thread(const Frames& expected, const std::map<int, std::string>& blocks,
                         const std::vector<int>& order, const std::string& all, const char* tool) {
  for (const auto& [tid, fn] : expected.threads) {
    auto it = blocks.find(tid);
    ASSERT_NE(it, blocks.end()) << tool << ": no thread " << tid << " in:\n" << all;
    size_t at = it->second.find(fn);
    EXPECT_NE(at, std::string::npos) << tool << ": thread " << tid << " lacks " << fn << ":\n" << it->second;
    // Frames up to the known function must all be resolved.
    if (at != std::string::npos) {
      EXPECT_EQ(it->second.substr(0, at).find("??"), std::string::npos) << tool << ":\n" << it->second;
    }
  }
  ASSERT_FALSE(order.empty()) << all;
  EXPECT_EQ(order.front(), expected.threads.front().first) << tool << ": first thread is not the panicking one\n"
                                                           << all;
}

#define REQUIRE_CORE(c)                                                         \
  ASSERT_TRUE((c).ok) << (c).child.describe() << "\n" << (c).child.output; \
  if (!testing::have_program("gdb")) {                                     \
    GTEST_SKIP() << "gdb not installed";                                  \
  }

// --- structure ---------------------------------------------------------------

struct Note {
  std::string name;
  uint32_t type;
  std::string desc;
};

std::vector<Note> read_notes(const std::string& core, const Elf64_Ehdr** eh_out = nullptr) {
  std::vector<Note> notes;
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(core.data());
  if (eh_out != nullptr) *eh_out = eh;
  const auto* ph = reinterpret_cast<const Elf64_Phdr*>(core.data() + eh->e_phoff);
  EXPECT_EQ(ph[0].p_type, uint32_t(PT_NOTE));
  EXPECT_EQ(ph[0].p_align, 4u);
  size_t off = ph[0].p_offset, end = off + ph[0].p_filesz;
  while (off + 12 <= end) {
    uint32_t hdr[3];
    std::memcpy(hdr, core.data() + off, 12);
    off += 12;
    Note n;
    n.name.assign(core.data() + off, hdr[0] > 0 ? hdr[0] - 1 : 0);
    off += (hdr[0] + 3) & ~3u;
    n.type = hdr[2];
    n.desc.assign(core.data() + off, hdr[1]);
    off += (hdr[1] + 3) & ~3u;
    notes.push_back(n);
  }
  EXPECT_EQ(off, end);
  return notes;
}

TEST(ElfCore, NotesComeInTheOrderTheToolsNeed) {
  CoreFile& c = mini_core();
  ASSERT_TRUE(c.ok) << c.child.describe() << "\n" << c.child.output;
  std::string core = testing::read_file(c.path);
  const Elf64_Ehdr* eh;
  std::vector<Note> notes = read_notes(core, &eh);
  EXPECT_EQ(eh->e_type, ET_CORE);
  ASSERT_GE(notes.size(), 6u);
  std::vector<uint32_t> head;
  for (size_t i = 0; i < 5; ++i) head.push_back(notes[i].type);
  EXPECT_EQ(head, (std::vector<uint32_t>{NT_PRSTATUS, NT_PRPSINFO, NT_SIGINFO, NT_AUXV, NT_FILE}));
  int prstatus = 0;
  int first_tid = 0;
  for (size_t i = 0; i < notes.size(); ++i) {
    const Note& n = notes[i];
    if (n.type == NT_PRSTATUS && n.name == "CORE") {
      EXPECT_EQ(n.desc.size(), sizeof(struct elf_prstatus));
      int pid;
      std::memcpy(&pid, n.desc.data() + 32, 4);
      if (prstatus++ == 0) first_tid = pid;
      // Each thread's FP notes follow its own NT_PRSTATUS.
      if (i > 0) {
        ASSERT_LT(i + 2, notes.size());
        EXPECT_EQ(notes[i + 1].type, uint32_t(NT_PRFPREG));
#if defined(__x86_64__)
        EXPECT_EQ(notes[i + 2].type, uint32_t(NT_X86_XSTATE));
        EXPECT_EQ(notes[i + 2].name, "LINUX");
#endif
      }
    }
    if (n.type == NT_PRPSINFO) {
      EXPECT_EQ(n.desc.size(), 136u);
    }
    if (n.type == NT_PRFPREG) {
      EXPECT_EQ(n.desc.size(), sizeof(elf_fpregset_t));
    }
  }
  EXPECT_EQ(notes[5].type, uint32_t(NT_PRFPREG)) << "the panicking thread's FP notes follow NT_FILE";
  EXPECT_EQ(prstatus, kWorkers + 1);
  EXPECT_EQ(first_tid, c.expected.threads.front().first);

  const Note& last = notes.back();
  EXPECT_EQ(last.name, "PANICSTOP");
  EXPECT_EQ(last.type, 0x50545350u);  // "PSTP": a type no reader takes for a core note of its own
  std::string text = last.desc;
  EXPECT_EQ(text.rfind("version=1\nmessage=elf core test: eight threads\npanicking_tid=", 0), 0u) << text;
  EXPECT_NE(text.find("\nsignal=6\n"), std::string::npos) << text;
  for (const auto& [tid, fn] : c.expected.threads) {
    std::string state = fn == "panicking_capture" ? "panicking" : "stopped";
    EXPECT_NE(text.find("thread=" + std::to_string(tid) + " name="), std::string::npos) << text;
    EXPECT_NE(text.find(" state=" + state + "\n"), std::string::npos) << text;
  }
  EXPECT_EQ(text.find("not_stopped="), std::string::npos) << text;
}

TEST(ElfCore, MiniCoreIsSmall) {
  CoreFile& c = mini_core();
  ASSERT_TRUE(c.ok) << c.child.describe() << "\n" << c.child.output;
  struct stat st{};
  ASSERT_EQ(stat(c.path.c_str(), &st), 0);
  std::printf("mini core, %d threads: %lld bytes\n", kWorkers + 1, static_cast<long long>(st.st_size));
  EXPECT_LT(st.st_size, 8 << 20);
}

// --- the tools ---------------------------------------------------------------

void check_gdb(CoreFile& c, bool thread_db = true) {
  std::string out = run_tool({"gdb", "-nx", "-batch", "-ex", "info threads", "-ex", "thread apply all bt",
                              exe_path(), c.path});
  expect_no_failure_signs(out, thread_db);
  std::vector<int> order;
  auto blocks = blocks_by_tid(out.substr(out.find("\nThread ") == std::string::npos ? 0 : out.find("\nThread ")),
                              "Thread ", "LWP ", &order);
  // `info threads` marks the current thread with '*'; it must be the panicking one.
  size_t star = out.find("\n* 1");
  ASSERT_NE(star, std::string::npos) << out;
  std::string current = out.substr(star, out.find('\n', star + 1) - star);
  std::string lwp = "LWP " + std::to_string(c.expected.threads.front().first);
  size_t at = current.find(lwp);
  ASSERT_NE(at, std::string::npos) << current;
  EXPECT_FALSE(std::isdigit(static_cast<unsigned char>(current[at + lwp.size()]))) << current;
  std::vector<int> first{c.expected.threads.front().first};  // `thread apply all` lists the newest first
  expect_every_thread(c.expected, blocks, first, out, "gdb");
}

TEST(ElfCore, GdbShowsEveryThread) {
  CoreFile& c = mini_core();
  REQUIRE_CORE(c);
  check_gdb(c);
}

TEST(ElfCore, FullCoreOpensInGdb) {
  CoreFile& c = full_core();
  REQUIRE_CORE(c);
  struct stat st{};
  ASSERT_EQ(stat(c.path.c_str(), &st), 0);
  std::printf("full core, %d threads: %lld bytes, %lld on disk (untouched memory is holes)\n", kWorkers + 1,
              static_cast<long long>(st.st_size), static_cast<long long>(st.st_blocks) * 512);
  check_gdb(c);
}

void check_eu_stack(CoreFile& c) {
  if (!testing::have_program("eu-stack")) GTEST_SKIP() << "eu-stack not installed";
  std::string out = run_tool({"eu-stack", "--core=" + c.path, "-e", exe_path()});
  expect_no_failure_signs(out);
  std::vector<int> order;
  auto blocks = blocks_by_tid(out, "TID ", "TID ", &order);
  expect_every_thread(c.expected, blocks, order, out, "eu-stack");
}

void check_lldb(CoreFile& c) {
  if (!testing::have_program("lldb")) GTEST_SKIP() << "lldb not installed";
  std::string out = run_tool({"lldb", "--batch", "-c", c.path, exe_path(), "-o", "thread list", "-o",
                              "thread backtrace all"});
  expect_no_failure_signs(out);
  // `thread list` gives "thread #N: tid = T"; the backtraces are keyed by #N.
  std::map<int, int> tid_of_index;
  std::vector<int> order;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    size_t h = line.find("thread #"), t = line.find("tid = ");
    if (h != std::string::npos && t != std::string::npos) {
      int index = std::atoi(line.c_str() + h + 8);
      int tid = std::atoi(line.c_str() + t + 6);
      if (!tid_of_index.count(index)) order.push_back(tid);
      tid_of_index[index] = tid;
    }
  }
  std::string bt = out.substr(out.find("thread backtrace all") == std::string::npos ? 0
                                                                                   : out.find("thread backtrace all"));
  auto by_index = blocks_by_tid(bt, "thread #", "thread #", nullptr);
  std::map<int, std::string> blocks;
  for (const auto& [index, text] : by_index) blocks[tid_of_index[index]] = text;
  expect_every_thread(c.expected, blocks, order, out, "lldb");
}

void check_drgn(CoreFile& c) {
  const char* python = "/usr/bin/python3";
  if (access(python, X_OK) != 0 ||
      testing::run_command({python, "-c", "import drgn"}).exit_code != 0)
    GTEST_SKIP() << "python3-drgn not installed";
  std::string script =
      "import drgn, sys\n"
      "prog = drgn.Program()\n"
      "prog.set_core_dump(sys.argv[1])\n"
      "try:\n"
      "    prog.load_debug_info([sys.argv[2]], default=True)\n"
      "except drgn.MissingDebugInfoError:\n"
      "    pass\n"
      "print('CRASHED', prog.crashed_thread().tid)\n"
      "for t in prog.threads():\n"
      "    print('TID', t.tid)\n"
      "    for f in t.stack_trace():\n"
      "        try:\n"
      "            pc = hex(f.pc)\n"
      "        except LookupError:\n"
      "            pc = '(pc unknown)'\n"
      "        print('   ', f.name, pc)\n";
  std::string out = run_tool({python, "-c", script, c.path, exe_path()});
  expect_no_failure_signs(out);
  std::vector<int> order;
  auto blocks = blocks_by_tid(out, "TID ", "TID ", nullptr);
  size_t crashed = out.find("CRASHED ");
  ASSERT_NE(crashed, std::string::npos) << out;
  order.push_back(std::atoi(out.c_str() + crashed + 8));
  expect_every_thread(c.expected, blocks, order, out, "drgn");
}

TEST(ElfCore, EuStackShowsEveryThread) {
  CoreFile& c = mini_core();
  ASSERT_TRUE(c.ok) << c.child.describe() << "\n" << c.child.output;
  check_eu_stack(c);
}

TEST(ElfCore, LldbShowsEveryThread) {
  CoreFile& c = mini_core();
  ASSERT_TRUE(c.ok) << c.child.describe() << "\n" << c.child.output;
  check_lldb(c);
}

TEST(ElfCore, DrgnShowsEveryThread) {
  CoreFile& c = mini_core();
  ASSERT_TRUE(c.ok) << c.child.describe() << "\n" << c.child.output;
  check_drgn(c);
}

// The usual panic: a thread other than main. Until the stop handler saves
// each thread's TLS base, gdb cannot activate libthread_db on such a core
// (a warning; every thread and backtrace is still there).
TEST(ElfCore, EveryToolShowsEveryThreadWhenAWorkerPanics) {
  CoreFile& c = worker_core();
  REQUIRE_CORE(c);
  check_gdb(c, kTlsBaseSaved);
  check_eu_stack(c);
  check_lldb(c);
  check_drgn(c);
}

// gdb (BFD) reads a note of any owner by its type: one of type 1 whose size
// is that of a prstatus (the x86-64 one, or x32's 296 bytes) became a thread
// of garbage registers. The PANICSTOP note's size follows its text, so a
// panic message of the right length made it one (seen with a GNAT program).
void write_single_thread_core(const std::string& path, size_t message_length) {
  install_stop_handlers();
  claim_current_slot();
  save_own_context_via_signal();
  CrashRecord& rec = reset_crash_record();
  if (!capture_crash_record(rec)) _exit(3);
  static std::string message;
  message.assign(message_length, 'x');
  rec.facts.signo = SIGABRT;
  rec.facts.message = message.c_str();
  DumpOptions o;
  int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
  if (fd < 0 || !write_elf_core(rec, o, fd)) _exit(4);
  close(fd);
  _exit(0);
}

TEST(ElfCore, APanicstopNoteOfAPrstatusSizeIsNoThreadToGdb) {
  if (!testing::have_program("gdb")) GTEST_SKIP() << "gdb not installed";
  testing::TempDir dir;
  std::string path = dir.path() + "/note.core";
  auto note_size = [&](size_t message_length) -> size_t {
    ChildResult r = testing::run_in_child([&] { write_single_thread_core(path, message_length); });
    EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
    std::vector<Note> notes = read_notes(testing::read_file(path));
    return notes.empty() || notes.back().name != "PANICSTOP" ? 0 : notes.back().desc.size();
  };
  size_t bare = note_size(1);
  ASSERT_GT(bare, 0u);
  ASSERT_LT(bare, sizeof(struct elf_prstatus));
  ASSERT_EQ(note_size(1 + sizeof(struct elf_prstatus) - bare), sizeof(struct elf_prstatus));
  std::string out = run_tool({"gdb", "-nx", "-batch", "-ex", "info threads", exe_path(), path});
  size_t threads = 0;
  for (size_t at = 0; (at = out.find("\n", at)) != std::string::npos; ++at)
    if (out.compare(at + 1, 4, "* 1 ") == 0 || out.compare(at + 1, 4, "  2 ") == 0) ++threads;
  EXPECT_EQ(threads, 1u) << out;
  EXPECT_EQ(out.find("  2 "), std::string::npos) << "a second thread:\n" << out;
}

}  // namespace
}  // namespace panicstop::detail
