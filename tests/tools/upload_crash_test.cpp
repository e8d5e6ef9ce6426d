// The crash-time upload (src/dump/upload_step.hpp): a process that panics
// with PANICSTOP_UPLOAD_URL set sends its dump to the tests' collector before
// it dies, and still dies of its signal, in time, when the collector or the
// uploader hangs. `panicstop run` carries the settings to the program.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <string>
#include <vector>

#include "panicstop/panic.hpp"
#include "panicstop/panicstop.hpp"
#include "support/child_process.hpp"
#include "tools/collector.hpp"

namespace {

using namespace std::chrono_literals;
using panicstop::testing::ChildOptions;
using panicstop::testing::ChildResult;
using panicstop::testing::Collector;
using panicstop::testing::Reply;
using panicstop::testing::run_command;
using panicstop::testing::run_in_child;
using panicstop::testing::TempDir;

const std::string kTool = PANICSTOP_TOOL_PATH;

ChildOptions crash_options(const TempDir& dir, const std::string& url, const std::string& uploader,
                           const std::string& timeout_ms) {
  ChildOptions o;
  o.deadline = 30s;
  o.set_env = {{"PANICSTOP_UPLOAD_URL", url},   {"PANICSTOP_UPLOADER", uploader},
               {"PANICSTOP_DUMP_DIR", dir.path()}, {"PANICSTOP_DUMP", "text"},
               {"PANICSTOP_UPLOAD_TIMEOUT_MS", timeout_ms}, {"PANICSTOP_RELEASE", "9.9.9"}};
  return o;
}

void crash() {
  panicstop::install();
  panicstop::panic("upload me: %d", 42);
}

TEST(CrashUpload, TheDumpReachesTheCollectorBeforeTheProcessDies) {
  TempDir dir;
  Collector c;
  ChildResult r = run_in_child(crash, crash_options(dir, c.url(), kTool, "10000"));
  ASSERT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << "\n" << r.output;
  // The dying process waited: the request is in before the child was reaped.
  auto reqs = c.requests();
  ASSERT_EQ(reqs.size(), 1u) << r.output;
  std::string report = dir.file_ending(".txt");
  ASSERT_FALSE(report.empty()) << r.output;
  // The upload URL alone added a minidump to PANICSTOP_DUMP=text: it takes
  // the minidump part, gzip-compressed, and the report its own part.
  std::string minidump = dir.file_ending(".dmp");
  ASSERT_FALSE(minidump.empty()) << r.output;
  const auto* md = reqs[0].part("upload_file_minidump");
  ASSERT_NE(md, nullptr);
  EXPECT_EQ(md->filename, minidump.substr(minidump.rfind('/') + 1) + ".gz");
  EXPECT_EQ(md->data.rfind("\x1f\x8b", 0), 0u) << "not gzip";
  const auto* text = reqs[0].part("panicstop_report");
  ASSERT_NE(text, nullptr);
  EXPECT_EQ(text->data.rfind("panic: upload me: 42", 0), 0u) << text->data.substr(0, 200);
  ASSERT_NE(reqs[0].part("ver"), nullptr);
  EXPECT_EQ(reqs[0].part("ver")->data, "9.9.9");
  EXPECT_NE(r.output.find("panicstop: upload: done"), std::string::npos) << r.output;
  EXPECT_TRUE(!dir.file_ending(".sent").empty()) << "the uploader marks what it sent";
}

TEST(CrashUpload, AHangingCollectorCostsNoMoreThanTheTimeout) {
  TempDir dir;
  Collector c;
  c.script({Reply{200, "", {}, true}});
  ChildResult r = run_in_child(crash, crash_options(dir, c.url(), kTool, "1500"));
  ASSERT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << "\n" << r.output;
  EXPECT_TRUE(c.wait_for(1, 5s));
  EXPECT_NE(r.output.find("stays pending"), std::string::npos) << r.output;
  EXPECT_TRUE(dir.file_ending(".sent").empty());
  // 1.5 s of waiting; the rest is the panic and the dump, with room for load.
  EXPECT_LT(r.elapsed, 10s) << r.output;

  // Later, with the collector back, the pending dump goes once.
  Collector back;
  ChildResult later = run_command({kTool, "upload", "--url", back.url(), "--dir", dir.path()});
  EXPECT_TRUE(later.exited && later.exit_code == 0) << later.describe() << "\n" << later.output;
  EXPECT_EQ(back.requests().size(), 1u);
}

TEST(CrashUpload, AHungUploaderIsKilledAtTheDeadlineAndTheProcessStillDies) {
  TempDir dir;
  // An "uploader" that never ends on its own.
  std::string stuck = dir.path() + "/stuck-uploader";
  std::ofstream(stuck) << "#!/bin/sh\nexec sleep 600\n";
  chmod(stuck.c_str(), 0755);
  ChildResult r = run_in_child(crash, crash_options(dir, "http://127.0.0.1:9/", stuck, "700"));
  ASSERT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("did not finish within 700 ms and was killed"), std::string::npos) << r.output;
  EXPECT_LT(r.elapsed, 10s) << r.output;
}

// An environment string whose first byte ends one page and whose rest lies on
// the next, a page registered with userfaultfd (missing pages) that nobody
// serves: whoever reads past the first byte waits for good. nullptr where
// userfaultfd cannot catch the kernel's own reads (not root, or no
// userfaultfd). The descriptor stays open for the life of the process.
char* string_that_hangs_its_reader() {
  long fd = syscall(SYS_userfaultfd, O_CLOEXEC);
  if (fd < 0) return nullptr;
  uffdio_api api{};
  api.api = UFFD_API;
  if (ioctl(int(fd), UFFDIO_API, &api) != 0) return nullptr;
  long page = sysconf(_SC_PAGESIZE);
  auto* two = static_cast<char*>(mmap(nullptr, size_t(2 * page), PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (two == MAP_FAILED) return nullptr;
  uffdio_register reg{};
  reg.range.start = reinterpret_cast<uintptr_t>(two + page);
  reg.range.len = uint64_t(page);
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  if (ioctl(int(fd), UFFDIO_REGISTER, &reg) != 0) return nullptr;
  two[page - 1] = 'X';  // not 'L': the upload step's LD_PRELOAD filter reads no further
  return two + page - 1;
}

// An uploader whose execve hangs, as one read from a hung NFS or FUSE mount
// does: the kernel copies the environment during execve, reaches the page
// nobody serves, and waits there. A vfork() parent waits for that exec in a
// sleep only SIGKILL ends, so before the timed wait the panic hung until the
// panic path's kill timer ended it by SIGKILL, with no die policy.
TEST(CrashUpload, AnUploaderWhoseExecHangsIsKilledAtTheDeadlineAndTheProcessStillDies) {
  TempDir dir;
  ChildResult r = run_in_child(
      [] {
        panicstop::install();
        // Only now: install() reads the environment. Set into environ
        // directly, as putenv() would read the string.
        char* hangs = string_that_hangs_its_reader();
        if (hangs == nullptr) _exit(77);
        static std::vector<char*> env;
        for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
        env.push_back(hangs);
        env.push_back(nullptr);
        environ = env.data();
        panicstop::panic("upload me: %d", 42);
      },
      crash_options(dir, "http://127.0.0.1:9/", kTool, "700"));
  if (r.exited && r.exit_code == 77) GTEST_SKIP() << "userfaultfd cannot catch the kernel's reads here (needs root)";
  ASSERT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("did not start within 700 ms (its execve hangs) and was killed"), std::string::npos)
      << r.output;
  EXPECT_LT(r.elapsed, 10s) << r.output;
}

// A program at its descriptor limit, every one of them open without
// O_CLOEXEC (as servers' listening sockets often are).
void crash_at_the_descriptor_limit() {
  panicstop::install();
  rlimit lim{128, 128};
  if (setrlimit(RLIMIT_NOFILE, &lim) != 0) _exit(3);
  while (open("/dev/null", O_RDONLY) >= 0) {
  }
  panicstop::panic("upload me: %d", 42);
}

// The uploader takes none of the program's descriptors with it: a crashed
// server's listening socket must not outlive it in its uploader.
TEST(CrashUpload, TheUploaderTakesNoneOfTheProgramsDescriptors) {
  TempDir dir;
  std::string uploader = dir.path() + "/count-fds";
  std::ofstream(uploader) << "#!/bin/sh\nls /proc/$$/fd | wc -l > " << dir.path() << "/fds\n";
  chmod(uploader.c_str(), 0755);
  ChildResult r = run_in_child(crash_at_the_descriptor_limit, crash_options(dir, "http://127.0.0.1:9/", uploader, "5000"));
  ASSERT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << "\n" << r.output;
  std::ifstream in(dir.path() + "/fds");
  int fds = -1;
  in >> fds;
  // 0, 1 and 2, and what the shell opens itself (the script); not the 120 of the program.
  EXPECT_GE(fds, 3) << r.output;
  EXPECT_LE(fds, 8) << r.output;
}

// At the program's descriptor limit the dump is still written (install()
// held descriptors back for the crash path) and the uploader, which starts
// with none of the program's, still sends it.
TEST(CrashUpload, AtTheDescriptorLimitTheDumpIsStillWrittenAndSent) {
  TempDir dir;
  Collector c;
  ChildResult r = run_in_child(crash_at_the_descriptor_limit, crash_options(dir, c.url(), kTool, "10000"));
  ASSERT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << "\n" << r.output;
  EXPECT_EQ(c.requests().size(), 1u) << r.output;
  EXPECT_NE(r.output.find("panicstop: upload: done"), std::string::npos) << r.output;
}

TEST(CrashUpload, BadSettingsAreRefusedAtInstall) {
  ChildOptions o;
  o.set_env = {{"PANICSTOP_UPLOAD_URL", "http://127.0.0.1:9/"}, {"PANICSTOP_UPLOAD_TIMEOUT_MS", "10s"}};
  ChildResult r = run_in_child([] { panicstop::install(); }, o);
  EXPECT_TRUE(r.exited && r.exit_code == 2) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("PANICSTOP_UPLOAD_TIMEOUT_MS=10s is not valid"), std::string::npos) << r.output;

  o.set_env = {{"PANICSTOP_UPLOAD_URL", "http://127.0.0.1:9/"}, {"PANICSTOP_UPLOADER", "relative/panicstop"}};
  r = run_in_child([] { panicstop::install(); }, o);
  EXPECT_TRUE(r.exited && r.exit_code == 2) << r.describe() << "\n" << r.output;

  // No uploader anywhere: a warning, and the crash dies as before.
  TempDir dir;
  o.set_env = {{"PANICSTOP_UPLOAD_URL", "http://127.0.0.1:9/"}, {"PATH", dir.path()},
               {"PANICSTOP_DUMP_DIR", dir.path()}, {"PANICSTOP_DUMP", "text"}};
  o.unset_env = {"PANICSTOP_UPLOADER"};
  r = run_in_child(crash, o);
  EXPECT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("no panicstop program was found"), std::string::npos) << r.output;
}

TEST(CrashUpload, RunCarriesTheSettingsAndOffersItselfAsTheUploader) {
  TempDir dir;
  Collector c;
  ChildOptions o;
  o.deadline = 30s;
  o.unset_env = {"PANICSTOP_UPLOADER", "PANICSTOP_UPLOAD_URL"};
  o.set_env = {{"PANICSTOP_RELEASE", "run-1"}};
  ChildResult r = run_command({kTool, "run", "--dump", "text", "--dump-dir", dir.path(), "--upload-url", c.url(),
                               "--", "sh", "-c", "kill -SEGV $$"},
                              o);
  ASSERT_TRUE(r.exited && r.exit_code == 128 + SIGSEGV) << r.describe() << "\n" << r.output;
  auto reqs = c.requests();
  ASSERT_EQ(reqs.size(), 1u) << r.output;
  ASSERT_NE(reqs[0].part("upload_file_minidump"), nullptr);
  EXPECT_EQ(reqs[0].part("upload_file_minidump")->data.rfind("\x1f\x8b", 0), 0u) << "the minidump, gzip-compressed";
  ASSERT_NE(reqs[0].part("panicstop_report"), nullptr);
  EXPECT_EQ(reqs[0].part("panicstop_report")->data.rfind("panic: ", 0), 0u);
  EXPECT_EQ(reqs[0].part("ver")->data, "run-1");
}

}  // namespace
