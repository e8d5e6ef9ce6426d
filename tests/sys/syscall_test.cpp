// The helpers of src/sys/syscall.hpp that do more than pass a system call on.
#include "sys/syscall.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace panicstop::sys {
namespace {

// The read end of a pipe that holds `text`.
int pipe_holding(const std::string& text) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  const bool written = ::write(fds[1], text.data(), text.size()) == ssize_t(text.size());
  ::close(fds[1]);
  if (!written) {
    ::close(fds[0]);
    return -1;
  }
  return fds[0];
}

bool is_closed(int fd) { return ::fcntl(fd, F_GETFD) == -1 && errno == EBADF; }

TEST(ReadDecimalAndClose, ReadsTheNumberAProcSysFileHolds) {
  const int fd = pipe_holding("65530\n");
  ASSERT_GE(fd, 0);
  EXPECT_EQ(read_decimal_and_close(fd), 65530u);
  EXPECT_TRUE(is_closed(fd));
}

TEST(ReadDecimalAndClose, ReadsTheLeadingDigitsOnly) {
  EXPECT_EQ(read_decimal_and_close(pipe_holding("4194304 and more")), 4194304u);
  EXPECT_EQ(read_decimal_and_close(pipe_holding("18446744073709551615")), UINT64_MAX);
}

TEST(ReadDecimalAndClose, NoNumberGivesZeroAndStillCloses) {
  for (const char* text : {"", "\n", "-1\n", "max\n", "18446744073709551616"}) {
    const int fd = pipe_holding(text);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(read_decimal_and_close(fd), 0u) << "'" << text << "'";
    EXPECT_TRUE(is_closed(fd)) << "'" << text << "'";
  }
}

TEST(ReadDecimalAndClose, AFailedOpenGivesZero) { EXPECT_EQ(read_decimal_and_close(-2), 0u); }

TEST(ReadDecimalAndClose, ReadsTheKernelsMaxMapCount) {
  const long fd = openat(AT_FDCWD, "/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
  if (fd < 0) GTEST_SKIP() << "no /proc/sys/vm/max_map_count here";
  EXPECT_GT(read_decimal_and_close(fd), 0u);
}

}  // namespace
}  // namespace panicstop::sys
