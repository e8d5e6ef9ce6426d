// `panicstop show` on hostile but readable input: a small text report whose
// thread headers and frames would multiply (memory must follow the file's
// size), run under an address-space limit; and a real panicstop core cut
// short at several points (what survives is shown, what is lost is said).
// The tool always runs as a child with a deadline.
#include <gtest/gtest.h>

#include <elf.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "panicstop/panic.hpp"
#include "support/child_process.hpp"

namespace {

using panicstop::testing::ChildOptions;
using panicstop::testing::ChildResult;
using panicstop::testing::TempDir;

const std::string kTool = PANICSTOP_TOOL_PATH;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;  // the runtime reserves terabytes of shadow: no address-space limit
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

constexpr rlim_t kAddressSpaceLimit = rlim_t{256} << 20;

// Runs the tool with its address space limited to `limit` bytes; with
// discard_stdout its standard output goes to /dev/null (JSON of a large
// report is large by design: it lists every thread's frames).
ChildResult tool_limited(const std::vector<std::string>& args, rlim_t limit, bool discard_stdout = false) {
  ChildOptions options;
  options.deadline = std::chrono::milliseconds(60000);
  return panicstop::testing::run_in_child(
      [&] {
        struct rlimit rl = {limit, limit};
        if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(120);
        if (discard_stdout) {
          int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
          if (null < 0 || dup2(null, STDOUT_FILENO) < 0) _exit(121);
        }
        std::vector<char*> argv{const_cast<char*>(kTool.c_str())};
        for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        execv(kTool.c_str(), argv.data());
        _exit(127);
      },
      options);
}

// `threads` thread headers in a row, then `frames` frames: one group, so
// every thread has every frame. Counts that lie (a header claiming billions
// of threads, a group line claiming more) must not matter either.
std::string grouped_report(int threads, int frames) {
  std::string s = "panic: many threads share one deep stack\n";
  s += "process 100 (demo): demo\n";
  s += "4294967295 threads: 4294967295 stopped, 0 not stopped\n\n";
  for (int t = 1; t <= threads; ++t) s += "thread " + std::to_string(t) + " (w) [stopped] t\n";
  s += "  (18446744073709551615 threads with this stack)\n";
  for (int f = 0; f < frames; ++f) {
    s += "  #" + std::to_string(f) + " 0x" + std::to_string(4096 + f) + " a_function_name_on_the_heap+0x10 (libmodule_name_on_the_heap.so)\n";
  }
  return s;
}

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = 0; (pos = haystack.find(needle, pos)) != std::string::npos; pos += needle.size()) ++n;
  return n;
}

// The issue's case: threads times frames in memory. 3,000 x 3,000 frames of
// ~200 bytes each needed gigabytes; the file is under 400 KB.
TEST(ShowLimits, GroupedStackUsesMemoryInProportionToTheFile) {
  if (kSanitized) GTEST_SKIP() << "sanitizer runtimes do not run under an address-space limit";
  TempDir dir;
  const int kThreads = 3000, kFrames = 3000;
  std::string path = dir.path() + "/grouped.txt";
  std::string report = grouped_report(kThreads, kFrames);
  ASSERT_LT(report.size(), 400u << 10);
  std::ofstream(path, std::ios::binary) << report;

  ChildResult text = tool_limited({"show", path}, kAddressSpaceLimit);
  ASSERT_FALSE(text.hung) << text.describe();
  ASSERT_TRUE(text.exited && text.exit_code == 0) << text.describe() << "\n" << text.output.substr(0, 2000);
  EXPECT_EQ(count(text.output, "\nthread "), size_t(kThreads)) << text.output.substr(0, 2000);
  EXPECT_NE(text.output.find("(" + std::to_string(kThreads) + " threads with this stack)"), std::string::npos);
  EXPECT_EQ(count(text.output, " a_function_name_on_the_heap+0x10 "), size_t(kFrames));
  EXPECT_NE(text.output.find("  #" + std::to_string(kFrames - 1) + " 0x"), std::string::npos);

  // JSON repeats the frames for each thread by its schema: the output is
  // large, the memory is not.
  std::string smaller = dir.path() + "/smaller.txt";
  std::ofstream(smaller, std::ios::binary) << grouped_report(1500, 1500);
  ChildResult json = tool_limited({"show", "--json", smaller}, kAddressSpaceLimit, true);
  ASSERT_FALSE(json.hung) << json.describe();
  EXPECT_TRUE(json.exited && json.exit_code == 0) << json.describe() << "\n" << json.output.substr(0, 2000);
  EXPECT_EQ(json.output, "");
}

// --- truncated cores ----------------------------------------------------------

constexpr int kExitIncomplete = 3;  // show printed the dump, but the core was cut short

std::string read_whole(const std::string& path) { return panicstop::testing::read_file(path); }

// A panicstop core of a process with three parked threads besides the
// panicking one.
std::string make_core(const TempDir& dir) {
  ChildOptions options = panicstop::testing::with_env({{"PANICSTOP_DUMP", "core"},
                                                        {"PANICSTOP_DUMP_DIR", dir.path()},
                                                        {"PANICSTOP_CORE_LIMIT", "ignore"},
                                                        {"PANICSTOP_KDB_SOCKET", "0"}},
                                                       30000);
  ChildResult crashed = panicstop::testing::run_in_child(
      [] {
        panicstop::install();
        std::atomic<int> parked{0};
        for (int i = 0; i < 3; ++i) {
          std::thread([&] {
            parked.fetch_add(1);
            for (;;) pause();
          }).detach();
        }
        while (parked.load() < 3) std::this_thread::yield();
        panicstop::panic("a core that will be cut short");
      },
      options);
  EXPECT_FALSE(crashed.hung) << crashed.describe();
  for (const std::string& name : dir.list()) {
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".core") == 0) return dir.path() + "/" + name;
  }
  ADD_FAILURE() << "no core written: " << crashed.describe() << "\n" << crashed.output;
  return "";
}

struct CoreLayout {
  uint64_t notes_begin = 0, notes_end = 0;
  std::vector<std::pair<int, uint64_t>> threads;  // tid, offset where its NT_PRSTATUS ends
  std::vector<std::pair<uint64_t, uint64_t>> loads;  // file offset, file size of each PT_LOAD
};

// Where the core's notes, threads and memory lie (the core is the writer's
// own: sizes are trusted here).
CoreLayout layout_of(const std::string& core) {
  CoreLayout l;
  Elf64_Ehdr eh;
  std::memcpy(&eh, core.data(), sizeof eh);
  for (size_t i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, core.data() + eh.e_phoff + i * sizeof ph, sizeof ph);
    if (ph.p_type == PT_LOAD && ph.p_filesz > 0) l.loads.emplace_back(ph.p_offset, ph.p_filesz);
    if (ph.p_type != PT_NOTE) continue;
    l.notes_begin = ph.p_offset;
    l.notes_end = ph.p_offset + ph.p_filesz;
    for (uint64_t pos = ph.p_offset; pos + sizeof(Elf64_Nhdr) <= l.notes_end;) {
      Elf64_Nhdr nh;
      std::memcpy(&nh, core.data() + pos, sizeof nh);
      uint64_t desc = pos + sizeof nh + ((nh.n_namesz + 3) & ~3u);
      uint64_t end = desc + ((nh.n_descsz + 3) & ~3u);
      if (nh.n_type == NT_PRSTATUS && nh.n_namesz == 5 && std::memcmp(core.data() + pos + sizeof nh, "CORE", 5) == 0) {
        int32_t tid;
        std::memcpy(&tid, core.data() + desc + 32, sizeof tid);
        l.threads.emplace_back(tid, end);
      }
      pos = end;
    }
  }
  return l;
}

// The core cut at several points: show prints every thread whose registers
// lie before the cut, says the core is truncated and exits 3; cut before
// any thread, it refuses the file with one line and exits 1. Never a crash.
TEST(ShowLimits, TruncatedCoreShowsWhatSurvivesAndSaysWhatIsMissing) {
  TempDir dir;
  std::string path = make_core(dir);
  ASSERT_FALSE(path.empty());
  std::string core = read_whole(path);
  CoreLayout layout = layout_of(core);
  ASSERT_EQ(layout.threads.size(), 4u);
  ASSERT_GE(layout.loads.size(), 2u);
  uint64_t last_load = layout.loads.back().first;

  struct Cut {
    const char* where;
    uint64_t at;
  };
  std::vector<Cut> cuts = {
      {"inside the first thread's registers", layout.notes_begin + 100},
      {"inside the notes, after two threads", layout.threads[1].second + 8},
      {"right after the notes", layout.notes_end},
      {"in the middle of the memory", layout.loads[layout.loads.size() / 2].first + 100},
      {"inside the last segment", last_load + layout.loads.back().second / 2},
      {"one byte short", core.size() - 1},
  };
  for (const Cut& cut : cuts) {
    SCOPED_TRACE(std::string(cut.where) + " (" + std::to_string(cut.at) + " of " + std::to_string(core.size()) + ")");
    std::string cut_path = dir.path() + "/cut.core";
    std::ofstream(cut_path, std::ios::binary | std::ios::trunc) << core.substr(0, cut.at);
    ChildResult shown = tool_limited({"show", cut_path}, RLIM_INFINITY);
    ASSERT_FALSE(shown.hung) << shown.describe();
    ASSERT_TRUE(shown.exited) << shown.describe() << "\n" << shown.output;
    size_t readable = 0;
    for (const auto& [tid, end] : layout.threads) readable += end <= cut.at;
    if (readable == 0) {
      EXPECT_EQ(shown.exit_code, 1) << shown.output;
      EXPECT_NE(shown.output.find(": truncated core: "), std::string::npos) << shown.output;
      continue;
    }
    EXPECT_EQ(shown.exit_code, kExitIncomplete) << shown.output;
    EXPECT_NE(shown.output.find("core truncated at " + std::to_string(cut.at) + " of "), std::string::npos)
        << shown.output;
    EXPECT_NE(shown.output.find("warning: core truncated at "), std::string::npos) << shown.output;
    for (const auto& [tid, end] : layout.threads) {
      std::string header = "\nthread " + std::to_string(tid);
      bool listed = shown.output.find(header + " ") != std::string::npos ||
                    shown.output.find(header + "\n") != std::string::npos;
      EXPECT_EQ(listed, end <= cut.at) << "thread " << tid << "\n" << shown.output;
    }
    if (cut.at <= layout.notes_end) {
      // Every memory segment is lost, so is every stack.
      EXPECT_NE(shown.output.find(std::to_string(layout.loads.size()) + " wholly missing"), std::string::npos)
          << shown.output;
      EXPECT_NE(shown.output.find("of thread" + std::string(readable > 1 ? "s " : " ") +
                                  std::to_string(layout.threads[0].first)),
                std::string::npos)
          << shown.output;
    }
    if (cut.at < layout.notes_end) {
      EXPECT_NE(shown.output.find("notes cut after note "), std::string::npos) << shown.output;
    }
  }

  // And anywhere else: refused or shown as truncated, never a crash or a hang.
  const size_t kCuts = 24;
  for (size_t i = 1; i <= kCuts; ++i) {
    size_t at = core.size() * i / (kCuts + 1) + i * 37;
    std::string cut_path = dir.path() + "/anywhere.core";
    std::ofstream(cut_path, std::ios::binary | std::ios::trunc) << core.substr(0, at);
    ChildResult shown = tool_limited({"show", "--json", cut_path}, RLIM_INFINITY, true);
    ASSERT_FALSE(shown.hung) << "cut at " << at << ": " << shown.describe();
    EXPECT_TRUE(shown.exited && (shown.exit_code == 1 || shown.exit_code == kExitIncomplete))
        << "cut at " << at << ": " << shown.describe() << "\n" << shown.output;
  }
}

}  // namespace
