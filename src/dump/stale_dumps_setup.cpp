// Sweeping temporary dump files of dead processes at install
// (stale_dumps.hpp). Setup: libc and allocation are fine here.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "dump/stale_dumps.hpp"
#include "dump/dump_options.hpp"
#include "sys/private_dir.hpp"

namespace panicstop::detail {

namespace {

constexpr char kPrefix[] = ".panicstop-";
constexpr char kTemporary[] = ".tmp";
// A process whose start time, read from /proc in whole seconds, is this much
// past the name's SECONDS did not write the file (clock ticks and the boot
// time are both rounded).
constexpr long long kStartSlackSeconds = 2;

bool all_digits(const char* s, size_t n) {
  if (n == 0 || n > 19) return false;
  for (size_t i = 0; i < n; ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

long long number(const char* s, size_t n) {
  long long v = 0;
  for (size_t i = 0; i < n; ++i) v = v * 10 + (s[i] - '0');
  return v;
}

// When process pid started, in seconds since the epoch; -1 if unknown.
long long start_seconds(long long pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%lld/stat", pid);
  char stat[1024] = {};
  FILE* f = fopen(path, "re");
  if (f == nullptr) return -1;
  size_t n = fread(stat, 1, sizeof stat - 1, f);
  fclose(f);
  stat[n] = '\0';
  // The command name may hold spaces and parentheses: fields are counted
  // from the last ')'. The start time is field 22, the 20th after it.
  const char* p = strrchr(stat, ')');
  if (p == nullptr) return -1;
  unsigned long long ticks = 0;
  for (int field = 0; field < 20; ++field) {
    while (*p != '\0' && *p != ' ') ++p;
    while (*p == ' ') ++p;
    if (*p == '\0') return -1;
  }
  ticks = strtoull(p, nullptr, 10);
  long long boot = -1;
  if (FILE* s = fopen("/proc/stat", "re")) {
    char line[256];
    while (fgets(line, sizeof line, s) != nullptr)
      if (strncmp(line, "btime ", 6) == 0) boot = atoll(line + 6);
    fclose(s);
  }
  long hz = sysconf(_SC_CLK_TCK);
  if (boot < 0 || hz <= 0) return -1;
  return boot + (long long)(ticks / (unsigned long long)hz);
}

// Could the process pid, which wrote no later than `seconds`, still be
// writing the file?
bool may_be_writing(long long pid, long long seconds) {
  if (pid <= 0 || pid > 0x7fffffff) return false;
  if (pid == getpid()) return false;  // this process is installing: it has not dumped yet
  if (kill(pid_t(pid), 0) != 0 && errno == ESRCH) return false;
  long long started = start_seconds(pid);
  if (started >= 0 && started > seconds + kStartSlackSeconds) return false;  // the pid was reused
  return true;
}

// Reads "panicstop-COMM-PID-SECONDS[-N]SUFFIX" (the name without its leading
// '.' and trailing ".tmp"); true when it has that shape and no process it can
// name may still be writing it.
bool stale(const char* name, size_t len) {
  // SUFFIX: a dot and a short lower-case word (".txt", ".core").
  const char* dot = static_cast<const char*>(memrchr(name, '.', len));
  if (dot == nullptr || dot == name) return false;
  size_t suffix = len - size_t(dot - name) - 1;
  if (suffix == 0 || suffix > 16) return false;
  for (size_t i = 1; i <= suffix; ++i)
    if (!((dot[i] >= 'a' && dot[i] <= 'z') || (dot[i] >= '0' && dot[i] <= '9'))) return false;
  size_t stem = size_t(dot - name);
  constexpr size_t kBase = sizeof kPrefix - 2;  // "panicstop-"
  if (stem <= kBase || strncmp(name, kPrefix + 1, kBase) != 0) return false;
  // Up to three numbers at the end of the stem, right to left, each after a '-'.
  const char* numbers[3] = {};
  size_t lengths[3] = {};
  size_t found = 0;
  size_t end = stem;
  while (found < 3) {
    const char* dash = static_cast<const char*>(memrchr(name + kBase, '-', end - kBase));
    if (dash == nullptr) break;
    size_t from = size_t(dash - name) + 1;
    if (!all_digits(name + from, end - from)) break;
    numbers[found] = name + from;
    lengths[found] = end - from;
    ++found;
    end = size_t(dash - name);
  }
  // The COMM before the numbers is never empty (dump_files.cpp names it
  // "process" then). With two numbers: PID-SECONDS. With three, also
  // PID-SECONDS-N, or a COMM that ends in "-digits".
  auto comm_before = [&](size_t k) { return size_t(numbers[k] - 1 - name) > kBase; };
  if (found < 2 || !comm_before(1)) return false;
  if (may_be_writing(number(numbers[1], lengths[1]), number(numbers[0], lengths[0]))) return false;
  if (found == 3 && comm_before(2) && number(numbers[0], lengths[0]) >= 2 &&
      may_be_writing(number(numbers[2], lengths[2]), number(numbers[1], lengths[1])))
    return false;
  return true;
}

void sweep(const char* dir) {
  DIR* d = sys::open_for_sweep(dir);
  if (d == nullptr) return;
  uid_t me = geteuid();
  while (dirent* e = readdir(d)) {
    size_t len = strlen(e->d_name);
    constexpr size_t kPrefixLen = sizeof kPrefix - 1;
    constexpr size_t kTemporaryLen = sizeof kTemporary - 1;
    if (len <= kPrefixLen + kTemporaryLen || strncmp(e->d_name, kPrefix, kPrefixLen) != 0 ||
        strcmp(e->d_name + len - kTemporaryLen, kTemporary) != 0)
      continue;
    if (!stale(e->d_name + 1, len - 1 - kTemporaryLen)) continue;
    struct stat st {};
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) || st.st_uid != me)
      continue;
    unlinkat(dirfd(d), e->d_name, 0);
  }
  closedir(d);
}

}  // namespace

void remove_stale_dump_files() noexcept {
  static std::atomic<bool> done{false};
  if (done.exchange(true)) return;
  const char* dir = dump_options().dir[0] != '\0' ? dump_options().dir : ".";
  sweep(dir);
  // Dumps fall back to /tmp when their directory refuses them.
  char here[4096];
  const char* resolved = realpath(dir, here);
  if (resolved == nullptr || strcmp(resolved, "/tmp") != 0) sweep("/tmp");
}

}  // namespace panicstop::detail
