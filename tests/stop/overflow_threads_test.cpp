// A process with more live threads than the registry has slots (kMaxThreads):
// a thread-per-connection server reaches that. Threads beyond the table share
// one overflow slot, which holds no thread's registers. The crash path must
// still end within its deadline, and the dumps must not claim more than they
// hold: every thread the stop could not stop, and every thread it could not
// list or save, is counted as such.
#include <gtest/gtest.h>

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <regex>
#include <string>
#include <thread>

#include "panicstop/kdb.hpp"
#include "panicstop/mutex.hpp"
#include "panicstop/panic.hpp"
#include "snapshot/crash_dumps.hpp"
#include "support/child_process.hpp"
#include "support/hide_proc.hpp"
#include "support/reports.hpp"
#include "sys/syscall.hpp"
#include "thread/altstack.hpp"
#include "thread/slot.hpp"

namespace panicstop {
namespace {

constexpr int kExtraThreads = 116;  // beyond kMaxThreads: 16,500 in all with kMaxThreads = 16,384
constexpr int kWorkers = int(detail::kMaxThreads) + kExtraThreads;
constexpr size_t kWorkerStack = 64 * 1024;

std::atomic<uint32_t> g_release{0};
std::atomic<uint32_t> g_never_changes{0};
std::atomic<int> g_started{0};
std::atomic<int> g_finished{0};
// Workers claim their registry slot at start when this is set: those
// beyond the first kMaxThreads claims then share the overflow slot.
std::atomic<bool> g_claim_at_start{false};
std::atomic<int> g_overflow_tid{0};

std::atomic<uint32_t> g_panic_word{0};

__attribute__((noinline)) void panic_beyond_the_slots() {
  panic("thread %d, beyond the registry's slots", sys::gettid());
}

void* park_until_released(void*) {
  if (g_claim_at_start.load() && !detail::is_slot_address(detail::claim_current_slot())) {
    int self = sys::gettid();
    g_overflow_tid.store(self);
    g_started.fetch_add(1, std::memory_order_relaxed);
    // Told to panic: one thread that shares the overflow slot.
    for (;;) {
      uint32_t word = g_panic_word.load();
      if (word != 0 && g_overflow_tid.load() == self) panic_beyond_the_slots();
      sys::futex_wait(&g_panic_word, word);
    }
  }
  g_started.fetch_add(1, std::memory_order_relaxed);
  while (g_release.load(std::memory_order_acquire) == 0) sys::futex_wait(&g_release, 0);
  g_finished.fetch_add(1, std::memory_order_relaxed);
  return nullptr;
}

// Starts n threads on small stacks, each asleep on a futex until
// release_parked_threads(); returns how many started (pthread_create fails
// once the process runs out of mappings or tasks).
int start_parked_threads(int n) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kWorkerStack);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int made = 0;
  for (; made < n; ++made) {
    pthread_t t;
    int err = pthread_create(&t, &attr, park_until_released, nullptr);
    if (err != 0) {
      testing::say("pthread_create_error=" + std::to_string(err));
      break;
    }
  }
  pthread_attr_destroy(&attr);
  while (g_started.load(std::memory_order_relaxed) < made) sched_yield();
  testing::say("made=" + std::to_string(made));
  testing::say("no_altstack=" + std::to_string(detail::threads_without_altstack()));
  testing::say("pool_entries=" + std::to_string(detail::altstack_pool_entries()));
  return made;
}

// Why this machine cannot hold kWorkers more threads now, or "" if it can
// (or cannot tell). The tests are about panicstop in such a process, not
// about the machine's limits: where others use most of pid_max,
// kernel.threads-max or RLIMIT_NPROC, they skip and say so.
std::string lacking_room_for_threads() {
  auto number_in = [](const char* path) {
    long v = -1;
    std::ifstream(path) >> v;
    return v;
  };
  std::ifstream loadavg("/proc/loadavg");
  std::string field;
  for (int i = 0; i < 4 && loadavg >> field; ++i) {
  }
  const size_t slash = field.find('/');
  if (slash == std::string::npos) return "";
  const long tasks = std::atol(field.c_str() + slash + 1);
  long limit = std::min(number_in("/proc/sys/kernel/pid_max"), number_in("/proc/sys/kernel/threads-max"));
  rlimit nproc{};
  if (getuid() != 0 && getrlimit(RLIMIT_NPROC, &nproc) == 0 && nproc.rlim_cur != RLIM_INFINITY)
    limit = std::min(limit, long(nproc.rlim_cur));
  if (limit < 0) return "";
  const long room = limit - tasks;
  if (room >= kWorkers + 256) return "";
  return "room for " + std::to_string(room) + " more tasks on this machine (limit " + std::to_string(limit) + ", " +
         std::to_string(tasks) + " in use); the test needs " + std::to_string(kWorkers + 256);
}

// Wakes every parked thread and waits until each has left its wait.
void release_parked_threads(int made) {
  g_release.store(1, std::memory_order_release);
  sys::futex_wake(&g_release, INT32_MAX);
  while (g_finished.load(std::memory_order_relaxed) < made) sched_yield();
}

struct Counts {
  long listed = -1, stopped = -1, not_stopped = -1;
  long left_out = 0;       // "incomplete: N threads left out"
  long unsaved = 0;        // "incomplete: N stopped threads saved no registers"
  long unsaved_blocks = 0; // thread blocks that say so
  long running_blocks = 0; // thread blocks labelled [running]
  long not_stopped_blocks = 0;
};

long count_of(const std::string& text, const std::regex& re) {
  return long(std::distance(std::sregex_iterator(text.begin(), text.end(), re), std::sregex_iterator()));
}

Counts report_counts(const std::string& report) {
  Counts c;
  std::smatch m;
  if (std::regex_search(report, m, std::regex(R"(\n(\d+) threads: (\d+) stopped, (\d+) not stopped\n)"))) {
    c.listed = std::stol(m[1]);
    c.stopped = std::stol(m[2]);
    c.not_stopped = std::stol(m[3]);
  }
  if (std::regex_search(report, m, std::regex(R"(\nincomplete: (\d+) threads left out)"))) c.left_out = std::stol(m[1]);
  if (std::regex_search(report, m, std::regex(R"(\nincomplete: (\d+) stopped threads saved no registers)")))
    c.unsaved = std::stol(m[1]);
  c.unsaved_blocks = count_of(report, std::regex(R"(\n  stopped, registers not saved \(no slot of its own\))"));
  c.running_blocks = count_of(report, std::regex(R"(\nthread \d+ \([^\n]*\) \[running\])"));
  c.not_stopped_blocks = count_of(report, std::regex(R"(\nthread \d+ \([^\n]*\) \[not_stopped\])"));
  return c;
}

std::string head(const std::string& report) { return report.substr(0, 1500); }

// The checks every dump of the parked process must pass: each thread is
// listed or counted as left out, and each listed thread but the dumping one
// is stopped (with or without its registers), none shown as running.
void expect_honest_counts(const std::string& report, long made) {
  Counts c = report_counts(report);
  ASSERT_GE(c.listed, 0) << head(report);
  EXPECT_EQ(c.listed + c.left_out, made + 1) << "threads neither listed nor counted as left out\n" << head(report);
  EXPECT_EQ(c.stopped, c.listed - 1) << head(report);
  EXPECT_EQ(c.not_stopped, 0) << head(report);
  EXPECT_EQ(c.running_blocks, 0) << "stopped threads shown as running\n" << head(report);
  EXPECT_EQ(c.not_stopped_blocks, 0) << head(report);
  EXPECT_EQ(c.unsaved, c.unsaved_blocks) << head(report);
  // More threads than slots: the threads beyond them stopped without a slot
  // of their own; each is listed as such or among those left out.
  long beyond = made + 1 - long(detail::kMaxThreads);
  if (beyond < 0) beyond = 0;
  EXPECT_LE(c.unsaved, beyond) << head(report);
  EXPECT_GE(c.unsaved + c.left_out, beyond) << head(report);
}

// "stopped in N us" from the panic's stderr line, or -1.
long stop_us(const std::string& output) {
  std::smatch m;
  if (!std::regex_search(output, m, std::regex(R"(other threads stopped in (\d+) us)"))) return -1;
  return std::stol(m[1]);
}

// A panic with every thread parked.
void panic_with_parked_threads() {
  int made = start_parked_threads(kWorkers);
  panic("with %d threads", made);
}

const std::vector<std::pair<std::string, std::string>> kEnv = {{"PANICSTOP_DUMP", "text"},
                                                               {"PANICSTOP_STOP_TIMEOUT_MS", "15000"}};

class OverflowThreads : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string lacking = lacking_room_for_threads();
    if (!lacking.empty()) GTEST_SKIP() << lacking;
  }
};

}  // namespace

// With /proc: the stop finds every thread; those beyond the registry's
// slots stop without saving registers, and the report must call them
// stopped (not running, not "did not stop") and count them.
TEST_F(OverflowThreads, PanicWithMoreThreadsThanSlotsReportsEveryThreadStopped) {
  testing::TempDir dir;
  testing::CrashDumps d = testing::crash_with_dumps(
      dir.path(),
      [] {
        install();
        panic_with_parked_threads();
      },
      kEnv, 60000);
  ASSERT_FALSE(d.child.hung) << d.child.output.substr(0, 3000);
  ASSERT_FALSE(d.report.empty()) << d.child.describe() << "\n" << d.child.output.substr(0, 3000);
  long made = testing::value_of(d.child.output, "made");
  ASSERT_GT(made, long(detail::kMaxThreads)) << d.child.output.substr(0, 3000);
  testing::say("panic with " + std::to_string(made) + " threads: stop " + std::to_string(stop_us(d.child.output)) +
               " us, child " + std::to_string(d.child.elapsed.count()) + " ms in all");
  expect_honest_counts(d.report, made);
  // Threads the alternate-stack pool could not serve are said in the report:
  // a stack overflow in one of them would leave no report to say it.
  const long without = testing::value_of(d.child.output, "no_altstack");
  std::smatch m;
  if (without > 0) {
    ASSERT_TRUE(std::regex_search(d.report, m,
                                  std::regex(R"(\nnote: (\d+) threads run without an alternate signal stack \(all (\d+) )")))
        << head(d.report);
    EXPECT_EQ(std::stol(m[1]), without) << head(d.report);
    EXPECT_EQ(std::stol(m[2]), testing::value_of(d.child.output, "pool_entries")) << head(d.report);
  } else {
    EXPECT_EQ(d.report.find("without an alternate signal stack"), std::string::npos) << head(d.report);
  }
}

// Without /proc the registry is the only list of threads: those beyond its
// slots must still be found (by tid), stopped and listed.
TEST_F(OverflowThreads, PanicWithoutProcStillStopsAndListsThreadsBeyondTheSlots) {
  if (!detail::thread_start_hook_active()) GTEST_SKIP() << "pthread_create is not interposed in this build";
  testing::TempDir dir;
  testing::CrashDumps d = testing::crash_with_dumps(
      dir.path(),
      [] {
        if (!testing::enter_private_mount_namespace() || !testing::cover_proc()) _exit(77);
        install();
        panic_with_parked_threads();
      },
      kEnv, 60000);
  if (d.child.exited && d.child.exit_code == 77) GTEST_SKIP() << "no mount namespace here";
  ASSERT_FALSE(d.child.hung) << d.child.output.substr(0, 3000);
  ASSERT_FALSE(d.report.empty()) << d.child.describe() << "\n" << d.child.output.substr(0, 3000);
  long made = testing::value_of(d.child.output, "made");
  ASSERT_GT(made, long(detail::kMaxThreads)) << d.child.output.substr(0, 3000);
  testing::say("panic without /proc with " + std::to_string(made) + " threads: stop " +
               std::to_string(stop_us(d.child.output)) + " us, child " + std::to_string(d.child.elapsed.count()) +
               " ms in all");
  EXPECT_NE(d.report.find("\nincomplete: /proc/self/task could not be read"), std::string::npos) << head(d.report);
  EXPECT_EQ(d.report.find("could not be named"), std::string::npos) << head(d.report);
  expect_honest_counts(d.report, made);
}

// The panicking thread itself may be one beyond the slots: its registers
// and its stack must still be in the report.
TEST_F(OverflowThreads, APanicInAThreadBeyondTheSlotsKeepsItsStack) {
  testing::TempDir dir;
  testing::CrashDumps d = testing::crash_with_dumps(
      dir.path(),
      [] {
        install();
        g_claim_at_start.store(true);
        detail::claim_current_slot();
        int made = start_parked_threads(kWorkers);
        testing::say("panicker=" + std::to_string(g_overflow_tid.load()));
        if (made <= int(detail::kMaxThreads) || g_overflow_tid.load() == 0) _exit(3);
        g_panic_word.store(1);
        sys::futex_wake(&g_panic_word, INT32_MAX);
        for (;;) sys::futex_wait(&g_never_changes, 0);
      },
      kEnv, 60000);
  ASSERT_FALSE(d.child.hung) << d.child.output.substr(0, 3000);
  ASSERT_FALSE(d.report.empty()) << d.child.describe() << "\n" << d.child.output.substr(0, 3000);
  long made = testing::value_of(d.child.output, "made");
  long panicker = testing::value_of(d.child.output, "panicker");
  ASSERT_GT(panicker, 0) << d.child.output.substr(0, 3000);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(d.report, m, std::regex(R"(\npanicking thread (\d+) )"))) << head(d.report);
  EXPECT_EQ(std::stol(m[1]), panicker) << head(d.report);
  std::string stack = testing::stack_of(d.report, int(panicker));
  EXPECT_NE(stack.find("panic_beyond_the_slots"), std::string::npos) << head(d.report);
  expect_honest_counts(d.report, made);
}

// A thread beyond the slots takes panicstop locks without claiming a slot on
// each operation: a failed claim scans all kMaxThreads slots, and it used to
// run on every current_slot() of such a thread (two per lock and unlock).
TEST_F(OverflowThreads, AThreadBeyondTheSlotsLocksWithoutAClaimEachTime) {
  testing::ChildResult child = testing::run_in_child(
      [] {
        install();
        g_claim_at_start.store(true);
        detail::claim_current_slot();
        int made = start_parked_threads(kWorkers);
        if (made <= int(detail::kMaxThreads) || g_overflow_tid.load() == 0) _exit(3);
        // The overflow thread itself is parked; lock from another thread
        // beyond the slots, started now, when every slot is taken.
        std::atomic<long> claims{-1}, ns_per_pair{-1};
        std::thread beyond([&] {
          static Mutex mu("overflow.test");
          if (detail::is_slot_address(detail::current_slot())) return;
          constexpr int kPairs = 2000;
          const uint64_t before = detail::slot_claims();
          const int64_t t0 = sys::monotonic_ns();
          for (int i = 0; i < kPairs; ++i) {
            mu.lock();
            mu.unlock();
          }
          ns_per_pair.store((sys::monotonic_ns() - t0) / kPairs);
          claims.store(long(detail::slot_claims() - before));
        });
        beyond.join();
        testing::say("claims=" + std::to_string(claims.load()));
        testing::say("ns_per_pair=" + std::to_string(ns_per_pair.load()));
        _exit(0);  // the overflow workers wait to be told to panic, not to leave
      },
      testing::with_env(kEnv, 60000));
  ASSERT_FALSE(child.hung) << child.output.substr(0, 3000);
  ASSERT_TRUE(child.exited && child.exit_code == 0) << child.describe() << "\n" << child.output.substr(0, 3000);
  const long claims = testing::value_of(child.output, "claims");
  ASSERT_GE(claims, 0) << "the locking thread got a slot of its own\n" << child.output.substr(0, 3000);
  // Other threads may claim meanwhile (none should here); 4,000 current_slot()
  // calls must not each be one.
  EXPECT_LT(claims, 100) << child.output.substr(0, 3000);
  testing::say("lock and unlock beyond the slots: " + std::to_string(testing::value_of(child.output, "ns_per_pair")) +
               " ns a pair, " + std::to_string(claims) + " claims");
}

// A live dump stops every thread, those beyond the slots included, and lets
// them all run again afterwards.
TEST_F(OverflowThreads, LiveDumpStopsListsAndResumesThreadsBeyondTheSlots) {
  testing::TempDir dir;
  std::string where = dir.path();
  testing::ChildResult child = testing::run_in_child(
      [where] {
        install();
        int made = start_parked_threads(kWorkers);
        int64_t t0 = sys::monotonic_ns();
        int files = live_dump(where.c_str());
        testing::say("dump_ms=" + std::to_string((sys::monotonic_ns() - t0) / 1000000));
        testing::say("files=" + std::to_string(files));
        release_parked_threads(made);
        testing::say("resumed=" + std::to_string(g_finished.load()));
      },
      testing::with_env(kEnv, 60000));
  ASSERT_FALSE(child.hung) << child.output.substr(0, 3000);
  ASSERT_TRUE(child.exited && child.exit_code == 0) << child.describe() << "\n" << child.output.substr(0, 3000);
  long made = testing::value_of(child.output, "made");
  ASSERT_GT(made, long(detail::kMaxThreads)) << child.output.substr(0, 3000);
  EXPECT_EQ(testing::value_of(child.output, "resumed"), made);
  // The alternate-stack pool leaves most of vm.max_map_count to the threads'
  // own stacks (that is why all 16,500 could be made), and every thread it
  // could not serve is counted: the main thread and made - 1 workers hold
  // pool stacks as long as entries last.
  long entries = testing::value_of(child.output, "pool_entries");
  long map_limit = std::stol(testing::read_file("/proc/sys/vm/max_map_count"));
  EXPECT_LE(entries, map_limit / 8) << child.output.substr(0, 3000);
  if (made + 1 > entries) {
    EXPECT_EQ(testing::value_of(child.output, "no_altstack"), made + 1 - entries) << child.output.substr(0, 3000);
  }
  testing::say("live dump with " + std::to_string(made) + " threads: " +
               std::to_string(testing::value_of(child.output, "dump_ms")) + " ms");
  ASSERT_GE(testing::value_of(child.output, "files"), 1) << child.output.substr(0, 3000);
  std::string report_path = dir.file_ending(".txt");
  ASSERT_FALSE(report_path.empty()) << child.output.substr(0, 3000);
  expect_honest_counts(testing::read_file(report_path), made);
}

}  // namespace panicstop
