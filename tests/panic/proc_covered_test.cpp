// A panic after /proc was covered (a sandbox unmounting it, a tmpfs mounted
// over it) still reads what the panic path takes from /proc: the panicking
// thread's kernel name, the current directory the dumps go to, the core's
// coredump_filter and the pagemap that turns untouched memory into holes.
// Each goes through the procfs descriptor kept from install; opened by
// absolute name, each came back empty once /proc was covered.
//
// With no /proc even at install, the threads are those of panicstop's
// registry: every thread started through pthread_create after install is in
// it, whether or not it ever called the library.

#include <gtest/gtest.h>

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <string>
#include <thread>

#include "panicstop/panic.hpp"
#include "snapshot/crash_dumps.hpp"
#include "support/hide_proc.hpp"
#include "support/reports.hpp"
#include "support/sanitizer.hpp"
#include "sys/syscall.hpp"
#include "thread/altstack.hpp"

namespace panicstop {
namespace {

constexpr size_t kUntouchedBytes = size_t(256) << 20;
constexpr char kFilePattern[] = "file-backed page, dumped only under coredump_filter bit 2 ";

// The bytes of the core's PT_LOAD data at addr, "" where the core holds none.
std::string core_bytes_at(const std::string& path, uintptr_t addr, size_t n) {
  std::ifstream f(path, std::ios::binary);
  Elf64_Ehdr eh{};
  if (!f.read(reinterpret_cast<char*>(&eh), sizeof eh) || eh.e_phentsize != sizeof(Elf64_Phdr)) return "";
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph{};
    f.seekg(std::streamoff(eh.e_phoff + uint64_t(i) * sizeof ph));
    if (!f.read(reinterpret_cast<char*>(&ph), sizeof ph)) return "";
    if (ph.p_type != PT_LOAD || addr < ph.p_vaddr || addr + n > ph.p_vaddr + ph.p_filesz) continue;
    std::string out(n, '\0');
    f.seekg(std::streamoff(ph.p_offset + (addr - ph.p_vaddr)));
    return f.read(out.data(), std::streamsize(n)) ? out : "";
  }
  return "";
}

__attribute__((noinline)) void crash_here() {
  int* null = nullptr;
  __asm__ volatile("" : "+r"(null));
  *null = 1;
  __asm__ volatile("" ::: "memory");
}

// In the child: a file mapped privately (in a full core only under filter
// bit 2, which the child sets), a large never-touched anonymous region (a
// hole with pagemap, written zeros without), both addresses printed; then
// /proc is covered and a thread with a kernel name but no registry name
// crashes. Dumps go to the current directory (no PANICSTOP_DUMP_DIR).
void crash_with_proc_covered(const std::string& dir) {
  if (!testing::enter_private_mount_namespace()) _exit(77);
  if (chdir(dir.c_str()) != 0) _exit(79);
  std::string file = dir + "/mapped.bin";
  std::string page(4096, '\0');
  for (size_t i = 0; i < page.size(); ++i) page[i] = kFilePattern[i % (sizeof kFilePattern - 1)];
  int fd = open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || write(fd, page.data(), page.size()) != ssize_t(page.size())) _exit(80);
  void* mapped = mmap(nullptr, page.size(), PROT_READ, MAP_PRIVATE, fd, 0);
  void* untouched = mmap(nullptr, kUntouchedBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED || untouched == MAP_FAILED) _exit(81);
  {
    std::ofstream filter("/proc/self/coredump_filter");
    filter << "0x37";  // the default 0x33 plus private file mappings
  }
  install();
  printf("mapped=0x%lx untouched=0x%lx\n", static_cast<unsigned long>(reinterpret_cast<uintptr_t>(mapped)),
         static_cast<unsigned long>(reinterpret_cast<uintptr_t>(untouched)));
  fflush(stdout);
  if (!testing::cover_proc()) _exit(78);
  std::thread([] {
    prctl(PR_SET_NAME, "covered-crash");
    crash_here();
  }).join();
}

TEST(ProcCovered, APanicStillReadsCommCwdFilterAndPagemap) {
  if (testing::kSanitizerBuild) GTEST_SKIP() << "a full core would hold the sanitizer's shadow memory";
  testing::TempDir dir;
  testing::ChildOptions opts;
  opts.deadline = std::chrono::milliseconds(60000);
  opts.set_env = {{"PANICSTOP_CORE", "full"}};
  opts.unset_env = {"PANICSTOP_DUMP", "PANICSTOP_DUMP_DIR"};
  std::string where = dir.path();
  testing::ChildResult child = testing::run_in_child([where] { crash_with_proc_covered(where); }, opts);
  if (child.exited && child.exit_code == 77) GTEST_SKIP() << "no mount namespace here";
  ASSERT_FALSE(child.hung) << child.output;

  // The dump directory is the current one, spelled out as an absolute path.
  std::smatch report_line, core_line;
  ASSERT_TRUE(std::regex_search(child.output, report_line, std::regex(R"(panicstop: wrote (\S+\.txt))")))
      << child.output;
  ASSERT_TRUE(std::regex_search(child.output, core_line, std::regex(R"(panicstop: wrote (\S+\.core))")))
      << child.output;
  EXPECT_EQ(std::string(report_line[1]).rfind(where + "/", 0), 0u) << child.output;
  EXPECT_EQ(std::string(core_line[1]).rfind(where + "/", 0), 0u) << child.output;
  std::string report = testing::read_file(where + "/" + std::string(report_line[1]).substr(
                                                             std::string(report_line[1]).rfind('/') + 1));
  std::string core = where + "/" + std::string(core_line[1]).substr(std::string(core_line[1]).rfind('/') + 1);

  // The panicking thread's kernel name, from task/TID/comm.
  EXPECT_TRUE(std::regex_search(report, std::regex(R"(in thread \d+ \(covered-crash\))"))) << report.substr(0, 800);
  EXPECT_TRUE(std::regex_search(child.output, std::regex(R"(thread \d+ \(covered-crash\) panicked)")))
      << child.output;

  std::smatch m;
  ASSERT_TRUE(std::regex_search(child.output, m, std::regex(R"(mapped=0x([0-9a-f]+) untouched=0x([0-9a-f]+))")))
      << child.output;
  uintptr_t mapped = uintptr_t(std::stoull(m[1], nullptr, 16));
  uintptr_t untouched = uintptr_t(std::stoull(m[2], nullptr, 16));
  // coredump_filter was read: the private file page is in the core, byte for byte.
  std::string expected(4096, '\0');
  for (size_t i = 0; i < expected.size(); ++i) expected[i] = kFilePattern[i % (sizeof kFilePattern - 1)];
  EXPECT_TRUE(core_bytes_at(core, mapped, expected.size()) == expected) << "the file mapping is not in the core";
  // pagemap was read: the untouched region is in the core (zeros) but as a hole.
  EXPECT_TRUE(core_bytes_at(core, untouched, 4096) == std::string(4096, '\0')) << "the untouched region is not in the core";
  struct stat st{};
  ASSERT_EQ(stat(core.c_str(), &st), 0);
  EXPECT_LT(static_cast<long long>(st.st_blocks) * 512, static_cast<long long>(st.st_size - kUntouchedBytes))
      << "the untouched region was written out, not left as a hole";
}

std::atomic<uint32_t> g_forever{0};
std::atomic<int> g_plain_parked{0};

// Threads that never call the library: no name, no lock, no slot of their
// own making.
void start_plain_parked_threads(int n) {
  for (int i = 0; i < n; ++i)
    std::thread([] {
      printf("plain=%d\n", sys::gettid());
      fflush(stdout);
      g_plain_parked.fetch_add(1);
      while (true) sys::futex_wait(&g_forever, 0);
    }).detach();
  while (g_plain_parked.load() < n) sched_yield();
}

TEST(ProcCovered, NoProcAtInstallStillStopsAndListsPlainThreads) {
  if (!detail::thread_start_hook_active()) GTEST_SKIP() << "pthread_create is not interposed in this build";
  testing::TempDir dir;
  testing::CrashDumps d = testing::crash_with_dumps(dir.path(), [] {
    if (!testing::enter_private_mount_namespace() || !testing::cover_proc()) _exit(77);
    install();
    start_plain_parked_threads(3);
    crash_here();
  });
  if (d.child.exited && d.child.exit_code == 77) GTEST_SKIP() << "no mount namespace here";
  ASSERT_FALSE(d.child.hung) << d.child.output;
  ASSERT_FALSE(d.report.empty()) << d.child.describe() << "\n" << d.child.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(d.report, m, std::regex(R"(\n(\d+) threads: (\d+) stopped)"))) << d.report;
  EXPECT_EQ(std::stoi(m[2]), 3) << d.report.substr(0, 1000);
  std::regex plain(R"(plain=(\d+))");
  int seen = 0;
  for (std::sregex_iterator it(d.child.output.begin(), d.child.output.end(), plain), end; it != end; ++it, ++seen)
    EXPECT_NE(testing::thread_block(d.report, std::stoi((*it)[1])).find("[stopped]"), std::string::npos)
        << "thread " << (*it)[1] << ":\n" << d.report.substr(0, 2000);
  EXPECT_EQ(seen, 3);
}

}  // namespace
}  // namespace panicstop
