// The text report names C++ functions as c++filt does (issue 12): what a
// person reads first should not be "_ZN9panicstop...".
#include <gtest/gtest.h>
#include <unistd.h>

#include <sstream>
#include <string>

#include "snapshot/parked_threads.hpp"
#include "snapshot/snapshot.hpp"
#include "support/reports.hpp"

namespace panicstop {
namespace {

using testing::cxa_demangled;

// The mangled name of this binary's function whose name contains needle.
std::string mangled_symbol(const char* needle) {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return "";
  self[n] = '\0';
  std::string found;
  for (const std::string& name : testing::nm_defined_symbols(self, ""))
    if (name.rfind("_Z", 0) == 0 && name.find(needle) != std::string::npos) found = name;
  return found;
}

TEST(DemangledReport, FramesNameFunctionsAsCxxFiltDoes) {
  std::string mangled = mangled_symbol("park_until_released");
  ASSERT_FALSE(mangled.empty()) << "park_until_released not in the symbol table";
  std::string readable = cxa_demangled(mangled);
  ASSERT_FALSE(readable.empty());

  ASSERT_TRUE(detail::reserve_snapshot());
  testing::ParkedThreads parked(4, {testing::park_in_alpha});
  ASSERT_TRUE(parked.stop());
  detail::CrashRecord& rec = detail::reset_crash_record();
  ASSERT_TRUE(detail::capture_crash_record(rec));
  std::string text = testing::render_text_report(rec);
  parked.restart();

  EXPECT_NE(text.find(" " + readable + "+0x"), std::string::npos) << text.substr(0, 3000);
  EXPECT_EQ(text.find(mangled), std::string::npos) << "still mangled:\n" << text.substr(0, 3000);
  // No frame keeps a C++ name mangled that c++filt can read. A frame line:
  // "  #N 0xPC FUNCTION+0xOFF (MODULE)".
  std::istringstream in(text);
  size_t frames = 0;
  for (std::string l; std::getline(in, l);) {
    if (l.rfind("  #", 0) != 0) continue;
    size_t pc = l.find(" 0x");
    size_t fn = pc == std::string::npos ? pc : l.find(' ', pc + 1);
    size_t plus = l.rfind("+0x");
    if (fn == std::string::npos || plus == std::string::npos || plus < fn) continue;
    ++frames;
    std::string function = l.substr(fn + 1, plus - fn - 1);
    if (function.rfind("_Z", 0) == 0) {
      EXPECT_EQ(cxa_demangled(function), "") << l;
    }
  }
  EXPECT_GT(frames, 2u);
}

}  // namespace
}  // namespace panicstop
