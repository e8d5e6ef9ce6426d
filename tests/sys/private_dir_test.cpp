// The private directory and the once-a-minute record of install()'s sweeps
// (src/sys/private_dir.hpp). The records live in the real private directory
// (/tmp/panicstop-EUID), keyed by each test's own temporary directory.
#include "sys/private_dir.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <string>

#include "support/child_process.hpp"

namespace panicstop::sys {
namespace {

using testing::TempDir;

std::string private_dir() {
  char dir[64];
  private_directory_path(dir, sizeof dir);
  return dir;
}

// The record of a directory: its device and inode number, as the header says.
std::string record_of(int dir_fd) {
  struct stat st {};
  EXPECT_EQ(fstat(dir_fd, &st), 0);
  char name[64];
  snprintf(name, sizeof name, "/swept-%llx-%llx", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
  return private_dir() + name;
}

// Moves a file's modification time back by `seconds`.
void age(const std::string& path, int seconds) {
  struct timespec times[2] = {{time(nullptr) - seconds, 0}, {time(nullptr) - seconds, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << path;
}

bool exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

struct OpenDir {
  explicit OpenDir(const std::string& path) : fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {}
  ~OpenDir() { close(fd); }
  int fd;
};

TEST(PrivateDir, ADirectoryIsDueOnceAPeriodAndAgainWhenItsRecordIsOld) {
  TempDir dir;
  OpenDir d(dir.path());
  forget_sweep(d.fd);  // an earlier directory may have had this inode number
  EXPECT_TRUE(sweep_due(d.fd));
  EXPECT_TRUE(exists(record_of(d.fd)));
  EXPECT_FALSE(sweep_due(d.fd)) << "swept a second ago";
  EXPECT_FALSE(sweep_due(d.fd));
  age(record_of(d.fd), kSweepPeriodSeconds - 5);
  EXPECT_FALSE(sweep_due(d.fd)) << "still inside the period";
  age(record_of(d.fd), kSweepPeriodSeconds + 1);
  EXPECT_TRUE(sweep_due(d.fd)) << "the period has passed";
  EXPECT_FALSE(sweep_due(d.fd)) << "and that sweep is recorded";
  age(record_of(d.fd), -1);
  EXPECT_FALSE(sweep_due(d.fd)) << "a fresh record stamped by the fine-grained clock may lead time() by a second";
  age(record_of(d.fd), -3600);  // the clock was stepped back after the record
  EXPECT_TRUE(sweep_due(d.fd)) << "a record from the future says nothing";
  forget_sweep(d.fd);
  EXPECT_FALSE(exists(record_of(d.fd)));
  EXPECT_TRUE(sweep_due(d.fd));
  forget_sweep(d.fd);
}

TEST(PrivateDir, EachDirectoryHasItsOwnRecord) {
  TempDir a, b;
  OpenDir da(a.path()), db(b.path());
  forget_sweep(da.fd);
  forget_sweep(db.fd);
  EXPECT_TRUE(sweep_due(da.fd));
  EXPECT_TRUE(sweep_due(db.fd)) << "a sweep of another directory does not count";
  EXPECT_FALSE(sweep_due(da.fd));
  forget_sweep(da.fd);
  forget_sweep(db.fd);
}

// Records older than the period are removed by the private directory's own
// once-a-period cleanup, so they do not pile up one per directory ever swept.
TEST(PrivateDir, OldRecordsAreRemovedAndFreshOnesKept) {
  TempDir old_one, fresh, other;
  OpenDir old_fd(old_one.path()), fresh_fd(fresh.path()), other_fd(other.path());
  for (int fd : {old_fd.fd, fresh_fd.fd, other_fd.fd}) forget_sweep(fd);
  ASSERT_TRUE(sweep_due(old_fd.fd));
  ASSERT_TRUE(sweep_due(fresh_fd.fd));
  age(record_of(old_fd.fd), kSweepPeriodSeconds + 1);
  age(private_dir() + "/swept-records", kSweepPeriodSeconds + 1);  // the cleanup is due
  EXPECT_TRUE(sweep_due(other_fd.fd));
  EXPECT_FALSE(exists(record_of(old_fd.fd))) << "an old record is removed";
  EXPECT_TRUE(exists(record_of(fresh_fd.fd))) << "a fresh one is kept";
  EXPECT_TRUE(exists(record_of(other_fd.fd)));
  for (int fd : {old_fd.fd, fresh_fd.fd, other_fd.fd}) forget_sweep(fd);
}

TEST(PrivateDir, MakePrivateDirectoryMakesItAndRefusesOneOthersCanReach) {
  TempDir dir;
  std::string made = dir.path() + "/made";
  EXPECT_EQ(make_private_directory(made.c_str()), 0);
  struct stat st {};
  ASSERT_EQ(lstat(made.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(make_private_directory(made.c_str()), 0) << "it exists and is private";
  ASSERT_EQ(chmod(made.c_str(), 0755), 0);
  EXPECT_EQ(make_private_directory(made.c_str()), -1) << "others can read it";
  std::string link = dir.path() + "/link";
  ASSERT_EQ(symlink(made.c_str(), link.c_str()), 0);
  ASSERT_EQ(chmod(made.c_str(), 0700), 0);
  EXPECT_EQ(make_private_directory(link.c_str()), -1) << "a symbolic link is not the directory";
  EXPECT_EQ(make_private_directory((dir.path() + "/missing/below").c_str()), ENOENT);
}

}  // namespace
}  // namespace panicstop::sys
