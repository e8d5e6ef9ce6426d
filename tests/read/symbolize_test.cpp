// Symbolization of a dump's frames with libdw: file:line comes from the
// compile unit that holds the pc, even where .debug_aranges says otherwise.
#include "read/symbolize.hpp"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace panicstop::read {
namespace {

struct LoadedFixture {
  void* handle = nullptr;
  uint64_t base = 0;
  uint64_t split_unit_hot = 0;
  uint64_t unit_without_aranges = 0;
};

LoadedFixture load_fixture() {
  LoadedFixture f;
  f.handle = dlopen(PANICSTOP_PARTIAL_ARANGES_LIB, RTLD_NOW | RTLD_LOCAL);
  if (f.handle == nullptr) return f;
  void* hot = dlsym(f.handle, "split_unit_hot");
  void* without = dlsym(f.handle, "unit_without_aranges");
  Dl_info info{};
  if (hot == nullptr || without == nullptr || dladdr(hot, &info) == 0) return f;
  f.base = reinterpret_cast<uint64_t>(info.dli_fbase);
  f.split_unit_hot = reinterpret_cast<uint64_t>(hot);
  f.unit_without_aranges = reinterpret_cast<uint64_t>(without);
  return f;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The fixture's unit_without_aranges lies between the two parts of
// split_unit, and only split_unit is in .debug_aranges: libdwfl credits the
// gap to split_unit, and its line table then names a line of split_unit.c.
// A Go binary with cgo is laid out so (every Go frame read "gcc_mmap.c:37").
TEST(Symbolize, AFrameInAUnitMissingFromArangesIsNamedAfterItsOwnUnit) {
  LoadedFixture f = load_fixture();
  ASSERT_NE(f.base, 0u) << dlerror();
  ASSERT_LT(f.unit_without_aranges, f.split_unit_hot) << "the fixture's link order changed";

  Report report;
  report.kind = Report::Kind::kTextReport;
  Module m;
  m.start = f.base;
  m.end = f.split_unit_hot + 0x1000;
  m.path = PANICSTOP_PARTIAL_ARANGES_LIB;
  report.modules.push_back(m);
  Thread t;
  t.tid = 1;
  Frame inner, outer;
  inner.pc = f.unit_without_aranges;  // the innermost frame: looked up as is
  outer.pc = f.split_unit_hot + 1;    // a return address: looked up one byte before
  t.frames = FrameList({inner, outer});
  report.threads.push_back(t);

  symbolize_text_report(report);
  const FrameList& frames = report.threads[0].frames;
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].function, "unit_without_aranges");
  EXPECT_TRUE(ends_with(frames[0].file, "/unit_without_aranges.c")) << frames[0].file << ":" << frames[0].line;
  EXPECT_GT(frames[0].line, 0);
  EXPECT_EQ(frames[1].function, "split_unit_hot");
  EXPECT_TRUE(ends_with(frames[1].file, "/split_unit.c")) << frames[1].file << ":" << frames[1].line;
  EXPECT_EQ(frames[1].line, 7);
  dlclose(f.handle);
}

}  // namespace
}  // namespace panicstop::read
