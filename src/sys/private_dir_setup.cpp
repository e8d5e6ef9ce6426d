// The private directory and the sweep records (private_dir.hpp). Setup: libc
// is fine here, except in make_private_directory() (async-signal-safe).
#include "sys/private_dir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "sys/format.hpp"

namespace panicstop::sys {

namespace {

constexpr char kRecordPrefix[] = "swept-";
// The record of the last removal of old records: a name no directory's
// record can take (those are "swept-" and two hexadecimal numbers).
constexpr char kCleanupRecord[] = "swept-records";

void record_name(const struct stat& dir, char* out, size_t cap) noexcept {
  format(out, cap, "%s%llx-%llx", kRecordPrefix, (unsigned long long)dir.st_dev, (unsigned long long)dir.st_ino);
}

// The private directory, opened, and the name of the record of the
// directory open at dir_fd in it; -1 if either cannot be had.
int open_record_directory(int dir_fd, char* name, size_t cap) noexcept {
  struct stat st {};
  if (fstat(dir_fd, &st) != 0) return -1;
  record_name(st, name, cap);
  char dir[64];
  private_directory_path(dir, sizeof dir);
  if (make_private_directory(dir) != 0) return -1;
  return open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

// Whether the record exists (as a plain file), and then its age in seconds
// (negative: written after now, by a clock since stepped back).
bool record_age(int private_fd, const char* name, time_t now, long long* age) noexcept {
  struct stat st {};
  if (fstatat(private_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) return false;
  *age = (long long)(now - st.st_mtime);
  return true;
}

// A record just written can be a second ahead of time(): the kernel stamps a
// file whose times were lately read with its fine-grained clock (multigrain
// timestamps, Linux 6.13 on), and time() reads the coarse one, whose second
// may not have turned yet (1783 of 200,000 fresh stamps on ext4, 6.18). A
// record from further ahead was written before the clock was stepped back.
inline constexpr long long kFineClockLeadSeconds = 2;

bool recent(long long age) noexcept { return age > -kFineClockLeadSeconds && age < kSweepPeriodSeconds; }

bool recorded_recently(int private_fd, const char* name, time_t now) noexcept {
  long long age = 0;
  return record_age(private_fd, name, now, &age) && recent(age);
}

void write_record(int private_fd, const char* name) noexcept {
  int fd = openat(private_fd, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
  if (fd < 0) return;
  futimens(fd, nullptr);  // now, also for a record that was already there
  close(fd);
}

// Once per period: records older than the period (or from the future) say
// nothing any more; without this they would grow by one for every directory
// a program under `panicstop run` ever started in.
void remove_old_records(int private_fd, time_t now) noexcept {
  if (recorded_recently(private_fd, kCleanupRecord, now)) return;
  write_record(private_fd, kCleanupRecord);
  int fd = openat(private_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  DIR* d = fdopendir(fd);
  if (d == nullptr) {
    close(fd);
    return;
  }
  while (dirent* e = readdir(d)) {
    if (strncmp(e->d_name, kRecordPrefix, sizeof kRecordPrefix - 1) != 0 || strcmp(e->d_name, kCleanupRecord) == 0)
      continue;
    long long age = 0;
    if (record_age(private_fd, e->d_name, now, &age) && !recent(age)) unlinkat(private_fd, e->d_name, 0);
  }
  closedir(d);
}

}  // namespace

void private_directory_path(char* out, size_t cap) noexcept {
  format(out, cap, "/tmp/panicstop-%u", unsigned(geteuid()));
}

int make_private_directory(const char* dir) noexcept {
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) return errno;
  struct stat st {};
  if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) return -1;
  return 0;
}

bool sweep_due(int dir_fd) noexcept {
  char name[64];
  int private_fd = open_record_directory(dir_fd, name, sizeof name);
  if (private_fd < 0) return true;
  time_t now = time(nullptr);
  remove_old_records(private_fd, now);
  bool due = !recorded_recently(private_fd, name, now);
  if (due) write_record(private_fd, name);
  close(private_fd);
  return due;
}

DIR* open_for_sweep(const char* path) noexcept {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  DIR* d = sweep_due(fd) ? fdopendir(fd) : nullptr;
  if (d == nullptr) close(fd);
  return d;
}

void forget_sweep(int dir_fd) noexcept {
  char name[64];
  int private_fd = open_record_directory(dir_fd, name, sizeof name);
  if (private_fd < 0) return;
  unlinkat(private_fd, name, 0);
  close(private_fd);
}

}  // namespace panicstop::sys
