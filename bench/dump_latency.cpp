// Dump latency: for a process with N threads, the time to stop them, capture
// the snapshot and write the text report, the mini ELF core and the minidump, and the files'
// sizes — next to `gcore` (gdb) on the same process when gdb is installed.
// Uses the soft stop and restart, as kdb and live dumps do, so it repeats
// without dying. A plain program, not Google Benchmark: each figure is a median
// of a few whole dumps.
//
//   dump_latency [--no-gcore] [--rounds R] [N...]     (default N: 10 100 1000)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "dump/elf_core.hpp"
#include "dump/minidump.hpp"
#include "dump/text_report.hpp"
#include "dump/dump_options.hpp"
#include "panicstop/panic.hpp"
#include "snapshot/snapshot.hpp"
#include "stop/stop.hpp"
#include "sys/syscall.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using panicstop::detail::ProcessSnapshot;

std::atomic<uint32_t> g_release{0};

// A little stack depth, so the unwinder and the core have frames to carry.
__attribute__((noinline)) void park(int depth) {
  if (depth > 0) return park(depth - 1);
  while (g_release.load() == 0) panicstop::sys::futex_wait(&g_release, 0);
}

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

long file_size(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? long(st.st_size) : -1;
}

// Bytes the file occupies on disk (a core's holes take none).
long disk_size(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? long(st.st_blocks) * 512 : -1;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

struct Row {
  double stop_ms, capture_ms, text_ms, core_ms, dmp_ms;
  long text_bytes, core_bytes, core_disk_bytes, dmp_bytes;
};

// Writes one dump file with the writer; the milliseconds it took, fsync included.
double timed_write(const std::string& path, const panicstop::detail::CrashRecord& rec,
                   bool (*write)(const panicstop::detail::CrashRecord&, const panicstop::detail::DumpOptions&,
                                 int) noexcept) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  auto t = Clock::now();
  write(rec, panicstop::detail::dump_options(), fd);
  fsync(fd);
  double ms = ms_since(t);
  close(fd);
  return ms;
}

Row dump_once(const std::string& dir, int round) {
  using namespace panicstop::detail;
  Row row{};
  auto t0 = Clock::now();
  StopResult stop = stop_other_threads(StopKind::kSoft, 10'000'000'000);
  row.stop_ms = ms_since(t0);
  if (!stop.ok) fprintf(stderr, "dump_latency: %u threads did not stop\n", stop.not_stopped);
  auto t1 = Clock::now();
  CrashRecord& rec = reset_crash_record();
  capture_crash_record(rec);
  row.capture_ms = ms_since(t1);
  std::string text = dir + "/r" + std::to_string(round) + ".txt";
  std::string core = dir + "/r" + std::to_string(round) + ".core";
  std::string dmp = dir + "/r" + std::to_string(round) + ".dmp";
  row.text_ms = timed_write(text, rec, write_text_report);
  row.core_ms = timed_write(core, rec, write_elf_core);
  row.dmp_ms = timed_write(dmp, rec, write_minidump);
  restart_stopped_threads();
  row.dmp_bytes = file_size(dmp);
  unlink(dmp.c_str());
  row.text_bytes = file_size(text);
  row.core_bytes = file_size(core);
  row.core_disk_bytes = disk_size(core);
  unlink(text.c_str());
  unlink(core.c_str());
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  bool gcore = system("command -v gcore >/dev/null 2>&1") == 0;
  int rounds = 5;
  std::vector<int> counts;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--no-gcore") == 0) gcore = false;
    else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) rounds = atoi(argv[++i]);
    else counts.push_back(atoi(argv[i]));
  }
  if (counts.empty()) counts = {10, 100, 1000};
  panicstop::install();
  char dir_template[] = "/tmp/dump_latency.XXXXXX";
  std::string dir = mkdtemp(dir_template);

  // Sizes: apparent (st_size) / on disk (allocated blocks), in KiB.
  printf("%8s %9s %10s %9s %9s %8s %10s %17s %9s %10s %21s\n", "threads", "stop_ms", "capture_ms", "text_ms",
         "core_ms", "dmp_ms", "text_KiB", "core_KiB app/disk", "dmp_KiB", "gcore_ms", "gcore_KiB app/disk");
  std::vector<std::thread> threads;
  for (int n : counts) {
    g_release = 0;
    for (int i = 0; i < n; ++i) threads.emplace_back([] { park(8); });
    std::vector<double> stop, capture, text, core, dmp;
    Row last{};
    for (int r = 0; r < rounds; ++r) {
      last = dump_once(dir, r);
      stop.push_back(last.stop_ms);
      capture.push_back(last.capture_ms);
      text.push_back(last.text_ms);
      core.push_back(last.core_ms);
      dmp.push_back(last.dmp_ms);
    }
    double gcore_ms = -1;
    long gcore_bytes = -1, gcore_disk = -1;
    if (gcore) {
      std::string prefix = dir + "/gcore";
      std::string cmd = "gcore -o " + prefix + " " + std::to_string(getpid()) + " >/dev/null 2>&1";
      auto t = Clock::now();
      if (system(cmd.c_str()) == 0) {
        gcore_ms = ms_since(t);
        std::string file = prefix + "." + std::to_string(getpid());
        gcore_bytes = file_size(file);
        gcore_disk = disk_size(file);
        unlink(file.c_str());
      }
    }
    printf("%8d %9.2f %10.2f %9.2f %9.2f %8.2f %10.1f %8ld/%-8ld %9.1f %10.1f %10ld/%-10ld\n", n + 1, median(stop),
           median(capture), median(text), median(core), median(dmp), last.text_bytes / 1024.0,
           last.core_bytes / 1024, last.core_disk_bytes / 1024, last.dmp_bytes / 1024.0, gcore_ms,
           gcore_bytes / 1024, gcore_disk / 1024);
    fflush(stdout);
    g_release = 1;
    panicstop::sys::futex_wake(&g_release, 1 << 30);
    for (auto& t : threads) t.join();
    threads.clear();
  }
  rmdir(dir.c_str());
  return 0;
}
