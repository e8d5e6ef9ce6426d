// What memory the core keeps, on a synthetic snapshot over real mappings of
// this process: stacks from SP - 128 up, an overflowed stack whole, nothing of
// unneeded anonymous memory, empty segments for plain files, no [vvar], and
// full mode's coredump_filter bits.
#include <gtest/gtest.h>

#include <cstring>
#include <elf.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dump/core_plan.hpp"

namespace panicstop::detail::core {
namespace {

constexpr uintptr_t kPage = 4096;

struct Fixture {
  // [guard | stack (16 pages)] [other anonymous (4 pages)] [file (2 pages)] [vvar-named (1 page)]
  unsigned char* guard = nullptr;
  unsigned char* stack = nullptr;
  unsigned char* anon = nullptr;
  SnapshotMapping mappings[5];
  char paths[64] = "\0/etc/hostname\0[vvar]";
  SavedContext context;
  SnapshotThread thread;
  ProcessSnapshot snap;
  MappingPlan plans[5];

  Fixture() {
    auto* mem = static_cast<unsigned char*>(
        mmap(nullptr, 24 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    guard = mem;
    mprotect(guard, kPage, PROT_NONE);
    stack = mem + kPage;
    anon = mem + 17 * kPage;
    auto map = [&](int i, uintptr_t start, uintptr_t end, bool read, uint32_t path, uint64_t inode) {
      mappings[i].start = start;
      mappings[i].end = end;
      mappings[i].read = read;
      mappings[i].write = read;
      mappings[i].path_offset = path;
      mappings[i].inode = inode;
    };
    auto a = [](const void* p) { return reinterpret_cast<uintptr_t>(p); };
    map(0, a(guard), a(stack), false, 0, 0);
    map(1, a(stack), a(stack) + 16 * kPage, true, 0, 0);
    map(2, a(anon), a(anon) + 4 * kPage, true, 0, 0);
    // Not really a file or [vvar]: only the names matter to the plan, and it
    // must not read them (a plain file gets an empty segment, [vvar] none).
    map(3, a(anon) + 4 * kPage, a(anon) + 6 * kPage, true, 1, 42);
    map(4, a(anon) + 6 * kPage, a(anon) + 7 * kPage, true, 15, 0);
    context.valid = true;
    thread.tid = 1;
    thread.context = &context;
    snap.pid = getpid();
    snap.thread_count = 1;
    snap.threads = &thread;
    snap.mapping_count = 5;
    snap.mappings = mappings;
    snap.paths = paths;
  }
  ~Fixture() { munmap(guard, 24 * kPage); }

  PlanInputs inputs(bool full) {
    PlanInputs in;
    in.snap = &snap;
    in.full = full;
    in.plans = plans;
    in.plan_capacity = 5;
    return in;
  }
};

TEST(CorePlan, MiniKeepsTheStackFromBelowSpOnly) {
  Fixture f;
  f.context.stack_pointer = reinterpret_cast<uintptr_t>(f.stack) + 10 * kPage + 64;
  PlanInputs in = f.inputs(false);
  PlanSummary s = plan_core_memory(in);
  Segment stack = segment_for(in, 1);
  ASSERT_TRUE(stack.present);
  // page_floor(SP - 128) is the page below SP's page here.
  EXPECT_EQ(stack.start, reinterpret_cast<uintptr_t>(f.stack) + 9 * kPage);
  EXPECT_EQ(stack.end, reinterpret_cast<uintptr_t>(f.stack) + 16 * kPage);
  EXPECT_EQ(stack.file_size, 7 * kPage);
  EXPECT_FALSE(segment_for(in, 0).present) << "a guard page is never in the core";
  EXPECT_FALSE(segment_for(in, 2).present) << "unneeded anonymous memory gets no segment";
  Segment file = segment_for(in, 3);
  EXPECT_TRUE(file.present);
  EXPECT_EQ(file.file_size, 0u) << "a plain file mapping is named by NT_FILE, not copied";
  EXPECT_FALSE(segment_for(in, 4).present) << "[vvar] is never read";
  EXPECT_EQ(s.segment_count, 2u);
}

TEST(CorePlan, OverflowedStackIsKeptWhole) {
  Fixture f;
  f.context.stack_pointer = reinterpret_cast<uintptr_t>(f.guard) + 100;  // in the guard page
  PlanInputs in = f.inputs(false);
  plan_core_memory(in);
  Segment stack = segment_for(in, 1);
  ASSERT_TRUE(stack.present);
  EXPECT_EQ(stack.start, reinterpret_cast<uintptr_t>(f.stack));
  EXPECT_EQ(stack.file_size, 16 * kPage);
}

TEST(CorePlan, FullFollowsCoredumpFilter) {
  Fixture f;
  f.context.stack_pointer = reinterpret_cast<uintptr_t>(f.stack) + 10 * kPage;
  PlanInputs in = f.inputs(true);
  plan_core_memory(in);
  uint32_t filter = read_coredump_filter();
  Segment anon = segment_for(in, 2);
  EXPECT_EQ(anon.present, (filter & 1) != 0);
  if (filter & 1) {
    EXPECT_EQ(anon.file_size, 4 * kPage);
    EXPECT_TRUE(anon.zero_if_absent);
    // Anonymous private memory taken whole also takes the whole stack.
    EXPECT_EQ(segment_for(in, 1).file_size, 16 * kPage);
  }
  EXPECT_FALSE(segment_for(in, 0).present);
  EXPECT_FALSE(segment_for(in, 4).present);
}

}  // namespace
}  // namespace panicstop::detail::core
