// More mappings than a fixed table would hold: the capture keeps every one up
// to vm.max_map_count, and past its table it keeps what a dump needs (ELF
// files, stacks) and says how much it left out.
#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <regex>
#include <set>
#include <string>
#include <thread>

#include "dump/text_report.hpp"
#include "panic/tunables.hpp"
#include "panicstop/panic.hpp"
#include "snapshot/crash_dumps.hpp"
#include "snapshot/parked_threads.hpp"
#include "snapshot/snapshot.hpp"
#include "support/reports.hpp"
#include "sys/syscall.hpp"

namespace panicstop {
namespace {

constexpr size_t kPage = 4096;

// Maps 2 * n pages and makes every other one read-only: n + 1 mappings or
// more, each a separate line of /proc/self/maps.
void split_into_mappings(size_t n) {
  size_t bytes = 2 * n * kPage;
  auto* p = static_cast<unsigned char*>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (p == MAP_FAILED) _exit(20);
  for (size_t i = 0; i < n; ++i)
    if (mprotect(p + 2 * i * kPage, kPage, PROT_READ) != 0) _exit(21);
}

std::atomic<uint32_t> g_forever{0};
std::atomic<int> g_parked{0};
std::atomic<uintptr_t> g_parked_stack[3];

__attribute__((noinline)) void parked_among_many_mappings(int i) {
  volatile int on_stack = 0;
  g_parked_stack[i].store(reinterpret_cast<uintptr_t>(&on_stack));
  g_parked.fetch_add(1);
  while (true) sys::futex_wait(&g_forever, 0);
}

__attribute__((noinline)) void crash_among_many_mappings() {
  int* null = nullptr;
  __asm__ volatile("" : "+r"(null));
  *null = 1;
  __asm__ volatile("" ::: "memory");
}

[[noreturn]] void many_mappings_then_crash() {
  install();
  for (int i = 0; i < 3; ++i) std::thread(parked_among_many_mappings, i).detach();
  while (g_parked.load() < 3) sched_yield();
  // Mapped after the libraries and the stacks, so below them: in the old
  // fixed table, they were what fell off the end.
  split_into_mappings(12000);
  for (int i = 0; i < 3; ++i) printf("parked_stack=0x%lx\n", static_cast<unsigned long>(g_parked_stack[i].load()));
  fflush(stdout);
  crash_among_many_mappings();
  _exit(3);
}

TEST(CaptureLimits, TwelveThousandMappingsStillGiveLibrariesStacksAndCore) {
  testing::TempDir dir;
  testing::CrashDumps d = testing::crash_with_dumps(dir.path(), many_mappings_then_crash);
  ASSERT_FALSE(d.child.hung) << d.child.output;
  ASSERT_FALSE(d.report.empty()) << d.child.describe() << "\n" << d.child.output;
  EXPECT_TRUE(testing::lists_module(d.report, "libc.so")) << d.report.substr(0, 2000);
  EXPECT_EQ(d.report.find("incomplete:"), std::string::npos) << d.report.substr(0, 2000);
  size_t at = d.report.find("[panicking]");
  ASSERT_NE(at, std::string::npos) << d.report.substr(0, 2000);
  std::string lead = d.report.substr(at, d.report.find("\nthread ", at) - at);
  EXPECT_NE(lead.find("crash_among_many_mappings"), std::string::npos) << lead;
  EXPECT_NE(lead.find("many_mappings_then_crash"), std::string::npos) << lead;  // past frame 0
  EXPECT_GE(testing::frame_lines(lead), 2) << lead;
  ASSERT_FALSE(d.core_path.empty()) << d.child.output;
  std::regex stack(R"(parked_stack=0x([0-9a-f]+))");
  int stacks = 0;
  for (std::sregex_iterator it(d.child.output.begin(), d.child.output.end(), stack), end; it != end; ++it, ++stacks)
    EXPECT_TRUE(testing::core_has_memory_at(d.core_path, uintptr_t(std::stoull((*it)[1], nullptr, 16))))
        << "a parked thread's stack is not in the core";
  EXPECT_EQ(stacks, 3);
}

TEST(CaptureLimits, TableSizedForTheKernelsLimit) {
  ASSERT_TRUE(detail::reserve_snapshot());
  std::string text = testing::read_file("/proc/sys/vm/max_map_count");
  uint64_t max = std::stoull(text);
  EXPECT_GE(detail::snapshot_mapping_capacity(), std::min<uint64_t>(max, detail::kMaxMappingsCap));
  EXPECT_GE(detail::snapshot_mapping_capacity(), detail::kMinMappings);
}

// A table too small for the process: what is kept, and what the report says.
TEST(CaptureLimits, AFullTableKeepsFilesAndStacksAndSaysWhatItLeftOut) {
  ASSERT_TRUE(detail::reserve_snapshot());
  split_into_mappings(600);
  testing::ParkedThreads parked(4, {testing::park_in_alpha, testing::park_in_beta});
  ASSERT_TRUE(parked.stop());
  detail::ProcessSnapshot* full = detail::capture_snapshot();
  ASSERT_NE(full, nullptr);
  uint32_t all_mappings = full->mapping_count;
  std::set<std::string> all_modules;
  for (uint32_t i = 0; i < full->module_count; ++i) all_modules.insert(full->path(full->modules[i].path_offset));
  EXPECT_EQ(full->gaps.mappings_dropped, 0u);

  detail::limit_snapshot_mappings_for_test(all_mappings / 2);
  detail::ProcessSnapshot* s = detail::capture_snapshot();
  detail::limit_snapshot_mappings_for_test(0);
  ASSERT_NE(s, nullptr);
  EXPECT_GT(s->gaps.mappings_dropped, 0u);
  EXPECT_EQ(s->gaps.maps_lines, s->mapping_count + s->gaps.mappings_dropped);
  std::set<std::string> modules;
  for (uint32_t i = 0; i < s->module_count; ++i) modules.insert(s->path(s->modules[i].path_offset));
  EXPECT_EQ(modules, all_modules);
  for (uint32_t i = 1; i < s->mapping_count; ++i) EXPECT_LE(s->mappings[i - 1].end, s->mappings[i].start);
  for (uint32_t i = 0; i < s->thread_count; ++i) {
    const detail::SnapshotThread& t = s->threads[i];
    if (t.context == nullptr) continue;
    EXPECT_NE(t.stack_lo, 0u) << "thread " << t.tid << " lost its stack mapping";
    EXPECT_GE(t.frame_count, 2u) << "thread " << t.tid;
  }
  int fd = memfd_create("report", 0);
  ASSERT_GE(fd, 0);
  detail::CrashRecord rec;
  rec.snapshot = s;
  ASSERT_TRUE(detail::write_text_report(rec, detail::dump_options(), fd));
  parked.restart();
  std::string report(size_t(lseek(fd, 0, SEEK_END)), '\0');
  ASSERT_EQ(pread(fd, report.data(), report.size(), 0), ssize_t(report.size()));
  close(fd);
  std::string want = "incomplete: " + std::to_string(s->gaps.mappings_dropped) + " of " +
                     std::to_string(s->gaps.maps_lines) + " mappings left out";
  EXPECT_NE(report.find(want), std::string::npos) << report.substr(0, 1500);
}

}  // namespace
}  // namespace panicstop
