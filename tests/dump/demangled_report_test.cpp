// The text report names C++ functions as c++filt does (issue 12): what a
// person reads first should not be "_ZN9panicstop...".
#include <cxxabi.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <regex>
#include <sstream>
#include <string>

#include "dump/text_report.hpp"
#include "panic/panic_state.hpp"
#include "snapshot/parked_threads.hpp"

namespace panicstop {
namespace {

std::string reference(const std::string& mangled) {
  int status = 0;
  char* r = abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status);
  std::string out = status == 0 && r != nullptr ? r : "";
  std::free(r);
  return out;
}

// The mangled name of this binary's function whose name contains needle.
std::string mangled_symbol(const char* needle) {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return "";
  self[n] = '\0';
  std::string cmd = std::string("nm --defined-only '") + self + "'";
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) return "";
  std::string found;
  char line[4096];
  while (fgets(line, sizeof line, f) != nullptr) {
    std::string l(line);
    std::string name = l.substr(l.rfind(' ') + 1);
    while (!name.empty() && name.back() == '\n') name.pop_back();
    if (name.rfind("_Z", 0) == 0 && name.find(needle) != std::string::npos) found = name;
  }
  pclose(f);
  return found;
}

std::string render(const detail::ProcessSnapshot& snap) {
  int fd = memfd_create("report", 0);
  EXPECT_GE(fd, 0);
  EXPECT_TRUE(detail::write_text_report(snap, detail::tunables(), fd));
  off_t size = lseek(fd, 0, SEEK_END);
  std::string text(size_t(size), '\0');
  EXPECT_EQ(pread(fd, text.data(), text.size(), 0), size);
  close(fd);
  return text;
}

TEST(DemangledReport, FramesNameFunctionsAsCxxFiltDoes) {
  std::string mangled = mangled_symbol("park_until_released");
  ASSERT_FALSE(mangled.empty()) << "park_until_released not in the symbol table";
  std::string readable = reference(mangled);
  ASSERT_FALSE(readable.empty());

  ASSERT_TRUE(detail::reserve_snapshot());
  testing::ParkedThreads parked(4, {testing::park_in_alpha});
  ASSERT_TRUE(parked.stop());
  detail::ProcessSnapshot* snap = detail::capture_snapshot();
  ASSERT_NE(snap, nullptr);
  std::string text = render(*snap);
  parked.restart();

  EXPECT_NE(text.find(" " + readable + "+0x"), std::string::npos) << text.substr(0, 3000);
  EXPECT_EQ(text.find(mangled), std::string::npos) << "still mangled:\n" << text.substr(0, 3000);
  // No frame keeps a C++ name mangled that c++filt can read.
  std::regex frame(R"(^  #\d+ 0x[0-9a-f]+ (.*)\+0x[0-9a-f]+ \(.*\)$)");
  std::istringstream in(text);
  size_t frames = 0;
  for (std::string l; std::getline(in, l);) {
    std::smatch m;
    if (!std::regex_match(l, m, frame)) continue;
    ++frames;
    std::string fn = m[1];
    if (fn.rfind("_Z", 0) == 0) {
      EXPECT_EQ(reference(fn), "") << l;
    }
  }
  EXPECT_GT(frames, 2u);
}

}  // namespace
}  // namespace panicstop
