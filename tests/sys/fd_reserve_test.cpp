// The descriptor reserves (src/sys/fd_reserve.hpp), the crash path's and
// the live dump's: held from install, given back by the panic, lent to a live
// dump and taken back, and never a descriptor the program owns.
#include "sys/fd_reserve.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "support/child_process.hpp"

namespace panicstop::sys {
namespace {

using testing::run_in_child;
using testing::say;

bool is_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

std::vector<int> open_fds() {
  std::vector<int> fds;
  for (int fd = 0; fd < 1024; ++fd)
    if (is_open(fd)) fds.push_back(fd);
  return fds;
}

// The descriptors reserve_fds() opened: those open now that were not before.
std::vector<int> reserve_and_list(size_t* held) {
  std::vector<int> before = open_fds();
  *held = reserve_fds();
  std::vector<int> added;
  for (int fd : open_fds())
    if (std::find(before.begin(), before.end(), fd) == before.end()) added.push_back(fd);
  return added;
}

TEST(FdReserve, HeldAtReserveAndGivenBackAtRelease) {
  auto r = run_in_child([] {
    size_t held = 0;
    std::vector<int> fds = reserve_and_list(&held);
    bool cloexec = true;
    for (int fd : fds) cloexec = cloexec && (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
    size_t again = reserve_fds();  // once per process
    size_t freed = release_fd_reserve();
    bool closed = true;
    for (int fd : fds) closed = closed && !is_open(fd);
    say("held=" + std::to_string(held) + " opened=" + std::to_string(fds.size()) + " cloexec=" +
        std::to_string(cloexec) + " again=" + std::to_string(again) + " freed=" + std::to_string(freed) +
        " closed=" + std::to_string(closed) + " released again=" + std::to_string(release_fd_reserve()));
    _exit(0);
  });
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  std::string n = std::to_string(kReservedFds), both = std::to_string(kReservedFds + kLiveReservedFds);
  EXPECT_NE(r.output.find("held=" + n + " opened=" + both + " cloexec=1 again=" + n + " freed=" + both +
                          " closed=1 released again=0"),
            std::string::npos)
      << r.output;
}

// A live dump borrows its reserve and gives it back; a number the program
// took meanwhile stays the program's, and after the panic nothing is taken.
TEST(FdReserve, TheLiveDumpsReserveIsLentAndTakenBack) {
  auto r = run_in_child([] {
    size_t held = 0;
    std::vector<int> fds = reserve_and_list(&held);
    std::vector<int> before = open_fds();
    size_t lent = release_live_fds(2);
    size_t open_while_lent = open_fds().size();
    retake_live_fds();
    bool same = open_fds() == before;
    release_live_fds(kLiveReservedFds);
    int mine = open("/dev/null", O_RDONLY);  // the lowest number the loan freed
    retake_live_fds();
    struct stat st {};
    bool mine_kept = fstat(mine, &st) == 0 && S_ISCHR(st.st_mode);  // /dev/null, not the reserve's pipe, not the reserve's pipe
    size_t total = open_fds().size();
    size_t freed = release_fd_reserve();
    retake_live_fds();
    say("lent=" + std::to_string(lent) + " fewer=" + std::to_string(before.size() - open_while_lent) +
        " same=" + std::to_string(same) + " mine kept=" + std::to_string(mine_kept) + " one more=" +
        std::to_string(total - before.size()) + " freed=" + std::to_string(freed) + " after panic=" +
        std::to_string(open_fds().size() == before.size() + 1 - freed));
    _exit(0);
  });
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  EXPECT_NE(r.output.find("lent=2 fewer=2 same=1 mine kept=1 one more=1 freed=" +
                          std::to_string(kReservedFds + kLiveReservedFds) + " after panic=1"),
            std::string::npos)
      << r.output;
}

// A daemon closes what it did not open (closefrom(3)) and opens its own
// files, which take the reserve's numbers: those stay the program's.
TEST(FdReserve, ANumberTheProgramClosedAndReusedIsNotClosed) {
  auto r = run_in_child([] {
    size_t held = 0;
    std::vector<int> fds = reserve_and_list(&held);
    if (fds.size() < 2) _exit(3);
    close(fds[1]);
    int mine = dup2(open("/dev/null", O_RDONLY), fds[1]);
    size_t freed = release_fd_reserve();
    say("mine=" + std::to_string(mine == fds[1]) + " freed=" + std::to_string(freed) +
        " mine open=" + std::to_string(is_open(mine)));
    _exit(0);
  });
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  EXPECT_NE(r.output.find("mine=1 freed=" + std::to_string(kReservedFds + kLiveReservedFds - 1) + " mine open=1"),
            std::string::npos)
      << r.output;
}

// At the descriptor limit the reserve is whatever was left, the crash's first.
TEST(FdReserve, AtTheLimitItHoldsWhatIsLeft) {
  auto r = run_in_child([] {
    std::vector<int> fds = open_fds();
    int limit = fds.back() + 1;
    for (int fd = 0; fd < limit; ++fd)
      if (!is_open(fd)) dup2(0, fd);  // no holes below the limit
    rlimit lim{rlim_t(limit + 3), rlim_t(limit + 3)};  // three numbers free
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) _exit(3);
    size_t held = reserve_fds();
    say("held=" + std::to_string(held) + " freed=" + std::to_string(release_fd_reserve()));
    _exit(0);
  });
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  EXPECT_NE(r.output.find("held=3 freed=3"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace panicstop::sys
