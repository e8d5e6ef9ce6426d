// Lock profiling: a planted hot lock ranks first, the report reaches an fd and
// a user-chosen signal, nothing is collected while it is off. Each case runs in
// a child: the statistics are per process.
#include "panicstop/lockprof.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <unistd.h>

#include "panicstop/mutex.hpp"
#include "panicstop/spin_mutex.hpp"
#include "panicstop/witness.hpp"
#include "lockprof/stuck_report.hpp"
#include "support/child_process.hpp"
#include "thread/slot.hpp"

namespace panicstop {
namespace {

using testing::ChildResult;
using testing::run_in_child;

// The owner holds `hot` until the waiter is asleep on it, `rounds` times, so
// every round is one contested acquisition with a real wait. `cold` is taken
// often and never contested.
void plant_hot_lock(Mutex& hot, Mutex& cold, int rounds) {
  std::atomic<detail::ThreadSlot*> waiter_slot{nullptr};
  std::atomic<int> go{0}, done{0};
  std::thread waiter([&] {
    waiter_slot.store(detail::current_slot());
    for (int i = 0; i < rounds; ++i) {
      while (go.load() <= i) detail::cpu_relax();
      lock_at(hot, LockSite{"hot_site.cpp", 7});
      hot.unlock();
      done.store(i + 1);
    }
  });
  while (waiter_slot.load() == nullptr) detail::cpu_relax();
  for (int i = 0; i < rounds; ++i) {
    hot.lock();
    go.store(i + 1);
    // Release only once the waiter is blocked on this lock.
    while (waiter_slot.load()->waiting_on.load() != &hot.lock_object()) detail::cpu_relax();
    hot.unlock();
    while (done.load() <= i) detail::cpu_relax();
  }
  waiter.join();
  for (int i = 0; i < 1000; ++i) {
    cold.lock();
    cold.unlock();
  }
}

void print_line(const char* fmt, unsigned long long a, unsigned long long b = 0) {
  char line[256];
  int n = snprintf(line, sizeof line, fmt, a, b);
  (void)!write(2, line, size_t(n));
}

TEST(LockProf, PlantedHotLockRanksFirst) {
  ChildResult r = run_in_child([] {
    lockprof_enable(true);
    Mutex hot{"hot"}, cold{"cold"};
    plant_hot_lock(hot, cold, 20);
    LockProfileRow rows[16];
    size_t n = lockprof_report(rows, 16);
    char line[512];
    int len = snprintf(line, sizeof line, "rows=%zu first=%s file=%s line=%u contested=%llu wait=%llu hold=%llu\n", n,
                       n > 0 ? rows[0].name : "-", n > 0 && rows[0].file ? rows[0].file : "-",
                       n > 0 ? rows[0].line : 0, n > 0 ? (unsigned long long)rows[0].contested : 0ull,
                       n > 0 ? (unsigned long long)rows[0].wait_total_ns : 0ull,
                       n > 0 ? (unsigned long long)rows[0].hold_total_ns : 0ull);
    (void)!write(2, line, size_t(len));
    for (size_t i = 1; i < n; ++i)
      if (rows[i].wait_total_ns > rows[0].wait_total_ns) print_line("not sorted at %llu\n", i);
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  EXPECT_NE(r.output.find("first=hot "), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("not sorted"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("contested=0 "), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("wait=0 "), std::string::npos) << r.output;
  if (kWitnessBuiltIn) {
    // Witness gives the macro's site and hold times.
    EXPECT_NE(r.output.find("file=hot_site.cpp line=7 "), std::string::npos) << r.output;
  }
}

TEST(LockProf, WritesATableToAnFdAndOnAUserChosenSignal) {
  testing::TempDir dir;
  std::string path = dir.path() + "/report.txt";
  ChildResult r = run_in_child([&] {
    lockprof_enable(true);
    Mutex hot{"sig_hot"}, cold{"sig_cold"};
    plant_hot_lock(hot, cold, 5);
    lockprof_write_report(2);
    FILE* f = fopen(path.c_str(), "w");
    lockprof_report_on_signal(SIGUSR2, fileno(f));
    raise(SIGUSR2);
    fclose(f);
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  EXPECT_NE(r.output.find("lock profile: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("wait_total"), std::string::npos) << r.output;
  size_t hot_at = r.output.find("sig_hot @ ");
  EXPECT_NE(hot_at, std::string::npos) << r.output;
  size_t cold_at = r.output.find("sig_cold @ ");
  if (cold_at != std::string::npos) {
    EXPECT_LT(hot_at, cold_at) << r.output;
  }
  std::string from_signal = testing::read_file(path);
  EXPECT_NE(from_signal.find("sig_hot @ "), std::string::npos) << from_signal;
}

// The table is read without a lock. Reports taken in a loop while four
// threads (one lock each, all of one class) add sites and count on them only
// ever show whole rows (a row is published once its site is written), and the
// last report has every acquisition.
bool whole_row(const LockProfileRow& row) {
  if (kWitnessBuiltIn)
    return row.file != nullptr && std::strncmp(row.file, "site", 4) == 0 && row.line >= 1 && row.line <= 500;
  return row.file == nullptr && row.return_address != 0;  // no macro sites without witness
}

TEST(LockProf, ReportsWhileThreadsCountAndAddSites) {
  ChildResult r = run_in_child([] {
    lockprof_enable(true);
    static const char* kFiles[4] = {"site0.cpp", "site1.cpp", "site2.cpp", "site3.cpp"};
    // One lock per thread: a shared one would serialize the counting.
    Mutex locks[4] = {Mutex{"busy_hot"}, Mutex{"busy_hot"}, Mutex{"busy_hot"}, Mutex{"busy_hot"}};
    std::atomic<bool> stop{false};
    auto worker = [&](int t) {
      for (int i = 0; i < 2000; ++i) {
        lock_at(locks[t], LockSite{kFiles[t], i / 4 + 1});  // a new site every 4 rounds
        locks[t].unlock();
      }
    };
    std::thread reader([&] {
      static LockProfileRow rows[4096];
      while (!stop.load()) {
        size_t n = lockprof_report(rows, 4096);
        for (size_t i = 0; i < n; ++i)
          if (std::strcmp(rows[i].name, "busy_hot") == 0 && !whole_row(rows[i])) print_line("torn row %llu\n", i);
      }
    });
    std::thread t0(worker, 0), t1(worker, 1), t2(worker, 2), t3(worker, 3);
    t0.join(), t1.join(), t2.join(), t3.join();
    stop.store(true);
    reader.join();
    static LockProfileRow rows[4096];
    size_t n = lockprof_report(rows, 4096);
    unsigned long long sites = 0, acquisitions = 0;
    for (size_t i = 0; i < n; ++i) {
      if (std::strcmp(rows[i].name, "busy_hot") != 0) continue;
      ++sites;
      acquisitions += rows[i].acquisitions;
      if (!whole_row(rows[i])) print_line("torn row %llu\n", i);
    }
    print_line("sites=%llu acquisitions=%llu\n", sites, acquisitions);
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  EXPECT_EQ(r.output.find("Sanitizer"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("torn row"), std::string::npos) << r.output;
  // Witness counts every acquisition, under its macro site: 4 files x 500 lines, 4 times each.
  if (kWitnessBuiltIn) {
    EXPECT_NE(r.output.find("sites=2000 acquisitions=8000\n"), std::string::npos) << r.output;
  }
}

TEST(LockProf, EnabledFromTheEnvironment) {
  testing::ChildOptions opts;
  opts.set_env = {{"PANICSTOP_LOCKPROF", "1"}};
  ChildResult r = testing::run_command({"/proc/self/exe", "--gtest_filter=LockProf.ReportsWhetherEnabled"}, opts);
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("lockprof enabled=1"), std::string::npos) << r.output;
}

TEST(LockProf, ReportsWhetherEnabled) {
  // Helper for EnabledFromTheEnvironment (run in a fresh process there).
  print_line("lockprof enabled=%llu\n", lockprof_enabled() ? 1 : 0);
}

TEST(LockProf, CollectsNothingWhileOff) {
  ChildResult r = run_in_child([] {
    lockprof_enable(false);
    Mutex hot{"off_hot"}, cold{"off_cold"};
    plant_hot_lock(hot, cold, 5);
    LockProfileRow rows[4];
    print_line("rows=%llu\n", lockprof_report(rows, 4));
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("rows=0\n"), std::string::npos) << r.output;
}

TEST(LockProf, SpinMutexContentionIsCounted) {
  ChildResult r = run_in_child([] {
    lockprof_enable(true);
    SpinMutex spin{"prof_spin"};
    std::atomic<bool> waiting{false};
    spin.lock();
    std::thread t([&] {
      waiting.store(true);
      spin.lock();
      spin.unlock();
    });
    while (!waiting.load()) detail::cpu_relax();
    for (int i = 0; i < 100000; ++i) detail::cpu_relax();  // let it reach the spin loop (not a sync point)
    spin.unlock();
    t.join();
    LockProfileRow rows[4];
    size_t n = lockprof_report(rows, 4);
    print_line("rows=%llu contested=%llu\n", n, n > 0 ? rows[0].contested : 0);
  });
  ASSERT_FALSE(r.hung) << r.describe();
  // The waiter may win the race and never contend; when it did, it is counted.
  EXPECT_TRUE(r.output.find("contested=1\n") != std::string::npos || r.output.find("rows=0") != std::string::npos)
      << r.output;
}

// A thread of the parent was inside a report at the fork, holding the
// table's lock (its output pipe was full). The child does not have that
// thread: its own reports must not wait for it.
TEST(LockProf, AChildForkedDuringAStuckReportStillReports) {
  ChildResult r = run_in_child(
      [] {
        lockprof_enable(true);
        testing::StuckReport stuck;
        int status = testing::run_in_fork_child([] {
          LockProfileRow rows[4];
          lockprof_report(rows, 4);
          if (!lockprof_write_report(2)) _exit(3);
        });
        print_line("child status=%llu\n", static_cast<unsigned long long>(status));
      },
      testing::ChildOptions{std::chrono::seconds(10), {}, {}, ""});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  EXPECT_NE(r.output.find("child status=0\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("lock profile: "), std::string::npos) << r.output;
}

}  // namespace
}  // namespace panicstop
