// WITNESS: planted reversals are reported once each with their sites, known
// false positives of other checkers stay silent, misuse is reported. Every
// check runs in a child process: the order graph is per process and grows for
// good, and several cases end in a panic.
#include "panicstop/lock_guard.hpp"
#include "panicstop/witness.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <cstdio>
#include <unistd.h>

#include "panicstop/mutex.hpp"
#include "panicstop/panic.hpp"
#include "panicstop/spin_mutex.hpp"
#include "support/child_process.hpp"
#include "thread/slot.hpp"
#include "sys/format.hpp"
#include "witness/report.hpp"
#include "witness/witness_setup.hpp"

#include "panicstop/condvar.hpp"
#include "panicstop/rwlock.hpp"
#include "panicstop/sx_lock.hpp"

namespace panicstop {
namespace {

using testing::ChildOptions;
using testing::ChildResult;
using testing::run_in_child;

#define REQUIRE_WITNESS()                                                                          \
  do {                                                                                             \
    if (!kWitnessBuiltIn) GTEST_SKIP() << "witness not built in: configure with -DPANICSTOP_WITNESS=ON"; \
  } while (0)

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

// Runs body in a child with witness on and action warn, then prints the
// number of reports as "reports=N" so the parent can check it. A sanitizer
// report in the child fails the test whatever the test then checks: the child
// ends with _exit(0), which skips the sanitizer's own exit status, and a test
// that expects a panic does not look for the final line.
ChildResult run_witnessed(const std::function<void()>& body, ChildOptions opts = {}) {
  ChildResult r = run_in_child(
      [&] {
        detail::witness_read_environment();
        body();
        char line[64];
        int n = snprintf(line, sizeof line, "reports=%llu\n", static_cast<unsigned long long>(witness_report_count()));
        fflush(stdout);
        (void)!write(2, line, size_t(n));
      },
      opts);
  EXPECT_EQ(r.output.find("Sanitizer"), std::string::npos) << r.output;
  return r;
}

LockSite at(int line) { return LockSite{"app.cpp", line}; }

TEST(Witness, TwoLockReversalIsReportedOnceWithBothSites) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    Mutex cache{"cache"}, log{"log"};
    for (int i = 0; i < 3; ++i) {  // establish log -> cache
      lock_at(log, at(10));
      lock_at(cache, at(11));
      cache.unlock();
      log.unlock();
    }
    for (int i = 0; i < 3; ++i) {  // reverse it, three times
      lock_at(cache, at(20));
      lock_at(log, at(21));
      log.unlock();
      cache.unlock();
    }
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  EXPECT_EQ(count(r.output, "lock order reversal:"), 1u) << r.output;
  EXPECT_NE(r.output.find("lock order reversal: 1st cache @ app.cpp:20, 2nd log @ app.cpp:21; "
                          "established order log -> cache at app.cpp:11\n"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("stack of the 2nd acquisition"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("established log @ app.cpp:10 -> cache @ app.cpp:11, stack when first seen"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("reports=1\n"), std::string::npos) << r.output;
}

TEST(Witness, ThreeLockCycleIsReportedOnceWithThePath) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    Mutex a{"a3"}, b{"b3"}, c{"c3"};
    for (int i = 0; i < 2; ++i) {
      lock_at(a, at(30));
      lock_at(b, at(31));
      b.unlock();
      a.unlock();
      lock_at(b, at(32));
      lock_at(c, at(33));
      c.unlock();
      b.unlock();
      lock_at(c, at(40));  // c -> a closes the cycle a -> b -> c -> a
      lock_at(a, at(41));
      a.unlock();
      c.unlock();
    }
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_EQ(count(r.output, "lock order reversal:"), 1u) << r.output;
  EXPECT_NE(r.output.find("lock order reversal: 1st c3 @ app.cpp:40, 2nd a3 @ app.cpp:41; "
                          "established order a3 -> b3 -> c3 at app.cpp:31, app.cpp:33\n"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("reports=1\n"), std::string::npos) << r.output;
}

TEST(Witness, ReversalFromStdGuardsNamesReturnAddressesInTheProgram) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    Mutex x{"guard_x"}, y{"guard_y"};
    {
      std::lock_guard<Mutex> gx(x);
      std::lock_guard<Mutex> gy(y);
    }
    {
      std::unique_lock<Mutex> uy(y);
      std::lock_guard<Mutex> gx(x);
    }
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_EQ(count(r.output, "lock order reversal:"), 1u) << r.output;
  // Sites are return addresses inside this test binary, printed for addr2line.
  EXPECT_NE(r.output.find("1st guard_y @ 0x"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(witness_witness_test+0x"), std::string::npos) << r.output;
}

TEST(Witness, MacrosRecordFileAndLine) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    Mutex p{"macro_p"}, q{"macro_q"};
    {
      PANICSTOP_SCOPED_LOCK(p);
      PANICSTOP_SCOPED_LOCK(q);
    }
    PANICSTOP_LOCK(q);
    PANICSTOP_LOCK(p);
    p.unlock();
    q.unlock();
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("1st macro_q @ "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("witness_test.cpp:"), std::string::npos) << r.output;
}

// --- known false positives of other checkers ---------------------------------

TEST(Witness, OneOrderInOneThreadIsNoReversal) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    Mutex a{"fp_a"}, b{"fp_b"}, c{"fp_c"};
    for (int i = 0; i < 100; ++i) {
      std::scoped_lock<Mutex> ga(a);
      std::scoped_lock<Mutex> gb(b);
      std::scoped_lock<Mutex> gc(c);
    }
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("reports=0\n"), std::string::npos) << r.output;
}

TEST(Witness, AnUnlockBetweenTwoAcquisitionsRecordsNoEdge) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    Mutex a{"ub_a"}, b{"ub_b"};
    // a; unlock a; b: never held together, so no a -> b.
    a.lock();
    a.unlock();
    b.lock();
    b.unlock();
    // a; unlock a; b; a: records b -> a only.
    a.lock();
    a.unlock();
    b.lock();
    a.lock();
    a.unlock();
    b.unlock();
    // b; a again: the same order, no reversal.
    b.lock();
    a.lock();
    a.unlock();
    b.unlock();
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("reports=0\n"), std::string::npos) << r.output;
}

TEST(Witness, TryLocksAndStdScopedLockOfTwoAddNoEdge) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    Mutex a{"try_a"}, b{"try_b"};
    a.lock();
    if (b.try_lock()) b.unlock();
    a.unlock();
    { std::scoped_lock both(a, b); }
    { std::scoped_lock both(b, a); }
    b.lock();
    a.lock();  // the first blocking b -> a: no reversal, a -> b was never recorded
    a.unlock();
    b.unlock();
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("reports=0\n"), std::string::npos) << r.output;
}

TEST(Witness, LocksTakenInOtherThreadsInOneOrderAreNoReversal) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    Mutex a{"mt_a"}, b{"mt_b"};
    auto worker = [&] {
      for (int i = 0; i < 1000; ++i) {
        std::lock_guard<Mutex> ga(a);
        std::lock_guard<Mutex> gb(b);
      }
    };
    std::thread t1(worker), t2(worker);
    t1.join();
    t2.join();
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("reports=0\n"), std::string::npos) << r.output;
}

TEST(Witness, ManyThreadsBuildingTheGraphAtOnceSeeNoFalseReversal) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    static const char* kNames[12] = {"g00", "g01", "g02", "g03", "g04", "g05",
                                     "g06", "g07", "g08", "g09", "g10", "g11"};
    std::vector<std::unique_ptr<Mutex>> locks;
    for (const char* n : kNames) locks.push_back(std::make_unique<Mutex>(n));
    auto worker = [&](unsigned seed) {
      for (int iter = 0; iter < 3000; ++iter) {
        seed = seed * 1103515245u + 12345u;
        unsigned mask = (seed >> 8) & 0xfff;
        // Any subset, always in index order: one global order, no reversal.
        for (int i = 0; i < 12; ++i)
          if (mask & (1u << i)) locks[size_t(i)]->lock();
        for (int i = 12; i-- > 0;)
          if (mask & (1u << i)) locks[size_t(i)]->unlock();
      }
    };
    std::thread t1(worker, 1u), t2(worker, 2u), t3(worker, 3u);
    t1.join();
    t2.join();
    t3.join();
    fprintf(stderr, "before=%llu\n", static_cast<unsigned long long>(witness_report_count()));
    locks[11]->lock();  // the one planted reversal: g11 before g00
    locks[0]->lock();
    locks[0]->unlock();
    locks[11]->unlock();
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("before=0\n"), std::string::npos) << r.output;
  EXPECT_EQ(count(r.output, "lock order reversal:"), 1u) << r.output;
  EXPECT_NE(r.output.find("lock order reversal: 1st g11 @ "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("reports=1\n"), std::string::npos) << r.output;
}

// Many threads at once: classes assigned, edges added and reversals reported
// concurrently. Pair p (locks "par<p>_a", "par<p>_b") gets its order a -> b
// from thread p, all at the same time; then every thread takes its pair the
// other way round, two threads per pair, all released together. Each pair's
// reversal is reported exactly once, whole (the report's own lines name that
// pair), however the reports interleave in time.
TEST(Witness, ReportsFromManyThreadsAtOnceAreEachWholeAndPrintedOnce) {
  REQUIRE_WITNESS();
  constexpr int kPairs = 4;
  ChildResult r = run_witnessed([] {
    static const char* kA[kPairs] = {"par0_a", "par1_a", "par2_a", "par3_a"};
    static const char* kB[kPairs] = {"par0_b", "par1_b", "par2_b", "par3_b"};
    std::vector<std::unique_ptr<Mutex>> a, b;
    for (int p = 0; p < kPairs; ++p) {
      a.push_back(std::make_unique<Mutex>(kA[p]));
      b.push_back(std::make_unique<Mutex>(kB[p]));
    }
    std::atomic<int> established{0}, ready{0};
    auto wait_for = [](std::atomic<int>& n, int target) {
      while (n.load() < target) std::this_thread::yield();
    };
    auto worker = [&](int t) {
      int p = t % kPairs;
      ready.fetch_add(1);
      wait_for(ready, 2 * kPairs);
      if (t < kPairs) {
        a[size_t(p)]->lock();
        b[size_t(p)]->lock();
        b[size_t(p)]->unlock();
        a[size_t(p)]->unlock();
        established.fetch_add(1);
        return;
      }
      wait_for(established, kPairs);
      for (int i = 0; i < 20; ++i) {
        b[size_t(p)]->lock();
        a[size_t(p)]->lock();
        a[size_t(p)]->unlock();
        b[size_t(p)]->unlock();
      }
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < 2 * kPairs; ++t) threads.emplace_back(worker, t);
    for (auto& t : threads) t.join();
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_EQ(count(r.output, "lock order reversal:"), size_t(kPairs)) << r.output;
  for (int p = 0; p < kPairs; ++p) {
    std::string n = "par" + std::to_string(p);
    size_t at = r.output.find("lock order reversal: 1st " + n + "_b @ ");
    ASSERT_NE(at, std::string::npos) << n << "\n" << r.output;
    size_t end = r.output.find("lock order reversal:", at + 1);
    std::string report = r.output.substr(at, end == std::string::npos ? std::string::npos : end - at);
    EXPECT_NE(report.find(", 2nd " + n + "_a @ "), std::string::npos) << report;
    EXPECT_NE(report.find("; established order " + n + "_a -> " + n + "_b at "), std::string::npos) << report;
    EXPECT_NE(report.find("\n 1st \"" + n + "_b\" (mutex, 0x"), std::string::npos) << report;
    EXPECT_NE(report.find("\n 2nd \"" + n + "_a\" (mutex, 0x"), std::string::npos) << report;
    EXPECT_NE(report.find("\n established " + n + "_a @ "), std::string::npos) << report;
  }
  EXPECT_NE(r.output.find("reports=" + std::to_string(kPairs) + "\n"), std::string::npos) << r.output;
}

TEST(Witness, LocksOfOneClassNeedDupOk) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    Mutex n1{"node"}, n2{"node"};
    lock_at(n1, at(60));
    lock_at(n2, at(61));
    n2.unlock();
    n1.unlock();
    Mutex d1{"dup", kDupOk}, d2{"dup", kDupOk};
    d1.lock();
    d2.lock();
    d2.unlock();
    d1.unlock();
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("acquiring a second lock of one class: \"node\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("reports=1\n"), std::string::npos) << r.output;
}

TEST(Witness, OwnClassLocksAreNotGroupedByName) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    Mutex n1{"own", kOwnClass}, n2{"own", kOwnClass};
    n1.lock();
    n2.lock();
    n2.unlock();
    n1.unlock();
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("reports=0\n"), std::string::npos) << r.output;
}

TEST(Witness, TwoSharedHoldersOfOneRwLockAreNoInversion) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    RwLock rw{"shared_rw"};
    Mutex m{"after_rw"};
    std::atomic<int> holding{0};
    auto reader = [&] {
      rw.lock_shared();
      holding.fetch_add(1);
      while (holding.load() < 2) detail::cpu_relax();  // both hold it shared at once
      m.lock();
      m.unlock();
      rw.lock_shared();  // a repeated shared hold is allowed
      rw.unlock_shared();
      rw.unlock_shared();
    };
    std::thread t1(reader), t2(reader);
    t1.join();
    t2.join();
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("reports=0\n"), std::string::npos) << r.output;
}

TEST(Witness, SharedHoldsTakePartInTheOrder) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    RwLock rw{"order_rw"};
    SxLock sx{"order_sx"};
    PANICSTOP_LOCK_SHARED(rw);
    lock_at(sx, at(100));
    sx.unlock();
    rw.unlock_shared();
    lock_at(sx, at(110));
    {
      PANICSTOP_SCOPED_SHARED_LOCK(rw);
    }
    sx.unlock();
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("lock order reversal: 1st order_sx @ app.cpp:110, 2nd order_rw @ "), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("reports=1\n"), std::string::npos) << r.output;
}

TEST(Witness, ATimedOutSxLockIsNotHeld) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    SxLock sx{"timed_sx"};
    Mutex m{"timed_m"};
    std::atomic<int> step{0};
    std::thread owner([&] {
      sx.lock();
      step.store(1);
      while (step.load() != 2) detail::cpu_relax();
      sx.unlock();
    });
    while (step.load() != 1) detail::cpu_relax();
    m.lock();
    bool got = sx.try_lock_for(std::chrono::milliseconds(1));
    bool got_shared = sx.try_lock_shared_for(std::chrono::milliseconds(1));
    witness_write_held_locks(2);  // only timed_m
    m.unlock();
    step.store(2);
    owner.join();
    fprintf(stderr, "got=%d got_shared=%d\n", got ? 1 : 0, got_shared ? 1 : 0);
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("got=0 got_shared=0\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(" exclusive \"timed_m\""), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("\"timed_sx\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("reports=0\n"), std::string::npos) << r.output;
}

TEST(Witness, HeldLocksOfAThreadAreWrittenFromItsSlot) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    Mutex a{"slot_a"};
    RwLock rw{"slot_rw"};
    lock_at(a, at(140));
    lock_shared_at(rw, at(141));
    char buf[2048];
    sys::FixedWriter w(buf, sizeof buf);
    size_t n = detail::write_held_locks(w, *detail::current_slot(), "  ");
    fprintf(stderr, "n=%zu\n%s", n, w.data());
    rw.unlock_shared();
    a.unlock();
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("n=2\n  exclusive \"slot_a\" (mutex, 0x"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(") @ app.cpp:140\n  shared \"slot_rw\" (rwlock, 0x"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(") @ app.cpp:141\n"), std::string::npos) << r.output;
}

// --- misuse ------------------------------------------------------------------

TEST(Witness, RecursionOnANonRecursiveLockIsReportedWithBothSites) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    Mutex m{"rec"};
    lock_at(m, at(70));
    lock_at(m, at(71));  // the lock itself panics after the report
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("witness: recursed on a non-recursive lock: \"rec\" (mutex"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("@ app.cpp:71\n held since (exclusive) @ app.cpp:70"), std::string::npos) << r.output;
}

// The per-lock hook's shortcut tests only the newest held lock's order to
// the one being taken; after a reported reversal that order can be known
// while the lock is already held further down, and then only the lock word
// (naming this thread) shows the recursion.
TEST(Witness, RecursionBelowALockTakenInReversalIsStillReported) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    Mutex upper{"rr_upper"}, lower{"rr_lower"};
    for (int i = 0; i < 2; ++i) {  // establish rr_upper -> rr_lower
      upper.lock();
      lower.lock();
      lower.unlock();
      upper.unlock();
    }
    lock_at(lower, at(80));
    lock_at(upper, at(81));  // reversal: reported, the edge is refused
    lower.lock();  // no macro site, so the hook's steady path; the lock panics after the report
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_EQ(count(r.output, "lock order reversal: 1st rr_lower @ app.cpp:80, 2nd rr_upper @ app.cpp:81"), 1u)
      << r.output;
  EXPECT_NE(r.output.find("witness: recursed on a non-recursive lock: \"rr_lower\" (mutex"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find(")\n held since (exclusive) @ app.cpp:80"), std::string::npos) << r.output;
}

TEST(Witness, RecursiveLockMayRecurse) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    Mutex m{"rec_ok", kRecursive}, other{"rec_other"};
    m.lock();
    m.lock();
    other.lock();
    other.unlock();
    m.unlock();
    m.unlock();
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("reports=0\n"), std::string::npos) << r.output;
}

TEST(Witness, UnlockOfALockNotHeldIsReported) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    Mutex m{"not_held"};
    m.unlock();
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("witness: unlock of a lock not held: \"not_held\""), std::string::npos) << r.output;
}

TEST(Witness, SharedExclusiveMismatchIsReported) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    // The hooks as an RwLock calls them: held shared, released exclusive.
    detail::LockObject lo("mismatch", detail::LockKind::kRwLock, 0);
    detail::witness_lock(&lo, detail::kWitnessShared);
    detail::witness_unlock(&lo, 0);
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("witness: exclusive unlock of a lock held shared: \"mismatch\""), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("reports=1\n"), std::string::npos) << r.output;
}

TEST(Witness, RwLockSharedHoldReleasedExclusivelyIsReported) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    RwLock rw{"rw_mismatch"};
    rw.lock_shared();
    rw.unlock();  // the lock itself may panic after the report
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("witness: exclusive unlock of a lock held shared: \"rw_mismatch\" (rwlock"),
            std::string::npos)
      << r.output;
}

TEST(Witness, CondVarWaitWhileHoldingASpinMutexIsReported) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    SpinMutex spin{"cv_spin"};
    Mutex m{"cv_mutex"};
    CondVar cv{"cv"};
    lock_at(spin, at(120));
    {
      std::unique_lock<Mutex> lk(m);
      cv.wait_for(lk, std::chrono::milliseconds(1));
    }
    spin.unlock();
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("witness: blocking (condvar wait) on "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("with spin mutex \"cv_spin\" (spin mutex"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("held @ app.cpp:120"), std::string::npos) << r.output;
}

TEST(Witness, SxLockSleepWhileHoldingASpinMutexIsReported) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    SxLock sx{"sx_contested"};
    SpinMutex spin{"sx_spin"};
    std::atomic<bool> held{false};
    std::thread owner([&] {
      sx.lock();
      held.store(true);
      while (witness_report_count() == 0) detail::cpu_relax();
      sx.unlock();
    });
    while (!held.load()) detail::cpu_relax();
    lock_at(spin, at(130));
    sx.lock_shared();
    sx.unlock_shared();
    spin.unlock();
    owner.join();
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("witness: blocking (sx lock wait) on \"sx_contested\" (sx lock"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("held @ app.cpp:130"), std::string::npos) << r.output;
}

TEST(Witness, BlockingWhileHoldingASpinMutexIsReported) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    Mutex contested{"contested"};
    SpinMutex spin{"spin"};
    std::atomic<bool> held{false};
    std::thread owner([&] {
      contested.lock();
      held.store(true);
      while (witness_report_count() == 0) detail::cpu_relax();  // until the waiter reported
      contested.unlock();
    });
    while (!held.load()) detail::cpu_relax();
    lock_at(spin, at(80));
    contested.lock();  // spins, then sleeps: reported before it sleeps
    contested.unlock();
    spin.unlock();
    owner.join();
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("witness: blocking (sleep on a contested mutex) on \"contested\" (mutex"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("with spin mutex \"spin\" (spin mutex"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("held @ app.cpp:80"), std::string::npos) << r.output;
}

TEST(Witness, DestroyingAHeldLockIsReported) {
  REQUIRE_WITNESS();
  ChildResult r = run_witnessed([] {
    auto m = std::make_unique<Mutex>("doomed");
    lock_at(*m, at(90));
    m.reset();  // the lock panics after the report
  });
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("witness: destroying a lock held by this thread: \"doomed\""), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("held since (exclusive) @ app.cpp:90"), std::string::npos) << r.output;
}

// --- settings ----------------------------------------------------------------

TEST(Witness, ActionPanicPanicsAfterTheReport) {
  REQUIRE_WITNESS();
  ChildOptions opts;
  opts.set_env = {{"PANICSTOP_WITNESS_ACTION", "panic"}, {"PANICSTOP_DUMP", "none"}};
  ChildResult r = run_witnessed(
      [] {
        install();
        Mutex a{"pa"}, b{"pb"};
        a.lock(), b.lock(), b.unlock(), a.unlock();
        b.lock(), a.lock(), a.unlock(), b.unlock();
      },
      opts);
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("lock order reversal: 1st pb"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("panic: witness: lock order reversal: 1st pb, 2nd pa"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("reports="), std::string::npos) << r.output;
}

TEST(Witness, ModeZeroSkipsOrderChecksButStillTracksMisuse) {
  REQUIRE_WITNESS();
  ChildOptions opts;
  opts.set_env = {{"PANICSTOP_WITNESS", "0"}};
  ChildResult r = run_witnessed(
      [] {
        Mutex a{"m0a"}, b{"m0b"};
        a.lock(), b.lock(), b.unlock(), a.unlock();
        b.lock(), a.lock(), a.unlock(), b.unlock();
        witness_write_held_locks(2);
        lock_at(a, at(95));
        witness_write_held_locks(2);
        a.unlock();
      },
      opts);
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("reports=0\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(" exclusive \"m0a\" (mutex, 0x"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(") @ app.cpp:95\n"), std::string::npos) << r.output;
}

TEST(Witness, ModeMinusOneTurnsEverythingOff) {
  REQUIRE_WITNESS();
  ChildOptions opts;
  opts.set_env = {{"PANICSTOP_WITNESS", "-1"}};
  ChildResult r = run_witnessed(
      [] {
        Mutex a{"off_a"}, b{"off_b"};
        a.lock(), b.lock(), b.unlock(), a.unlock();
        b.lock(), a.lock(), a.unlock(), b.unlock();
      },
      opts);
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("reports=0\n"), std::string::npos) << r.output;
}

// After a panic nothing is checked: a PreDump hook that takes locks in the
// reverse order gets no report.
void reversal_in_hook(void*) {
  static Mutex a{"hook_a"}, b{"hook_b"};
  b.lock();
  a.lock();
  a.unlock();
  b.unlock();
  char line[64];
  int n = snprintf(line, sizeof line, "hook reports=%llu\n", static_cast<unsigned long long>(witness_report_count()));
  (void)!write(2, line, size_t(n));
}

TEST(Witness, NothingIsCheckedAfterAPanic) {
  REQUIRE_WITNESS();
  ChildOptions opts;
  opts.set_env = {{"PANICSTOP_DUMP", "none"}};
  ChildResult r = run_witnessed(
      [] {
        install();
        on_panic(Stage::PreDump, reversal_in_hook, nullptr);
        Mutex a{"hook_a"}, b{"hook_b"};
        a.lock(), b.lock(), b.unlock(), a.unlock();
        panic("planted");
      },
      opts);
  ASSERT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("hook reports=0\n"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("lock order reversal"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace panicstop
