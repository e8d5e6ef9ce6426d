#include "panicstop/spin_mutex.hpp"

#include <gtest/gtest.h>

#include <pthread.h>

#include <atomic>
#include <csignal>
#include <mutex>
#include <thread>
#include <vector>

#include "support/child_process.hpp"
#include "thread/signal_sections.hpp"
#include "thread/slot.hpp"

namespace panicstop {
namespace {

using testing::run_in_child;

sigset_t current_mask() {
  sigset_t s;
  sigemptyset(&s);
  pthread_sigmask(SIG_BLOCK, nullptr, &s);
  return s;
}

bool same_mask(const sigset_t& a, const sigset_t& b) {
  for (int sig = 1; sig < NSIG; ++sig)
    if (sigismember(&a, sig) != sigismember(&b, sig)) return false;
  return true;
}

// Is every asynchronous signal blocked, and every one the panic still needs
// (faults, the hard stop) deliverable? (kBlockSignals sections)
void expect_spinlock_section_mask(const sigset_t& m) {
  for (int sig : {SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGCHLD, SIGPIPE, SIGHUP})
    EXPECT_TRUE(sigismember(&m, sig)) << "asynchronous signal " << sig << " not blocked";
  EXPECT_TRUE(sigismember(&m, detail::soft_stop_signal()));
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, detail::hard_stop_signal()})
    EXPECT_FALSE(sigismember(&m, sig)) << "signal " << sig << " must stay deliverable";
}

uintptr_t word_of(const SpinMutex& m) { return m.lock_object().word.load(); }

TEST(SpinMutex, ExclusionUnderStress) {
  SpinMutex m{"stress"};
  constexpr int kThreads = 4, kIters = 20000;
  long counter = 0;  // the lock is what protects it
  std::atomic<int> inside{0};
  std::atomic<bool> overlap{false}, go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      while (!go) std::this_thread::yield();
      for (int i = 0; i < kIters; ++i) {
        std::lock_guard<SpinMutex> g(m);
        if (inside.fetch_add(1) != 0) overlap = true;
        ++counter;
        inside.fetch_sub(1);
      }
    });
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_FALSE(overlap.load());
  EXPECT_EQ(counter, long(kThreads) * kIters);
  EXPECT_EQ(word_of(m), 0u);
}

TEST(SpinMutex, TryLockFailsWhileAnotherThreadHoldsItAndLeavesTheMaskAlone) {
  SpinMutex m{"try"};
  m.lock();
  bool got = true, mask_kept = false;
  std::thread([&] {
    sigset_t before = current_mask();
    got = m.try_lock();
    mask_kept = same_mask(before, current_mask()) && detail::spinlock_depth() == 0;
  }).join();
  EXPECT_FALSE(got);
  EXPECT_TRUE(mask_kept) << "a failed try_lock must leave no spinlock section behind";
  m.unlock();
  std::thread([&] {
    got = m.try_lock();
    if (got) m.unlock();
  }).join();
  EXPECT_TRUE(got);
}

TEST(SpinMutex, RecursiveLockNeedsOneUnlockPerLock) {
  SpinMutex m{"recursive", kRecursive};
  const sigset_t before = current_mask();
  m.lock();
  m.lock();
  EXPECT_TRUE(m.try_lock());
  m.unlock();
  m.unlock();
  EXPECT_TRUE(m.owned());
  EXPECT_EQ(detail::spinlock_depth(), 1u);
  EXPECT_TRUE(same_mask(before, current_mask())) << "a spinlock section makes no mask change";
  bool other = true;
  std::thread([&] { other = m.try_lock(); }).join();
  EXPECT_FALSE(other);
  m.unlock();
  EXPECT_FALSE(m.owned());
  EXPECT_EQ(word_of(m), 0u);
  EXPECT_TRUE(same_mask(before, current_mask()));
}

TEST(SpinMutex, TheSectionIsACountNotAMaskChange) {
  std::thread([] {
    const sigset_t before = current_mask();
    SpinMutex m{"count"};
    m.lock();
    EXPECT_EQ(detail::spinlock_depth(), 1u);
    EXPECT_EQ(detail::blocking_depth(), 0u);
    EXPECT_TRUE(same_mask(before, current_mask()));
    m.unlock();
    EXPECT_EQ(detail::spinlock_depth(), 0u);
  }).join();
}

TEST(SpinMutex, BlockSignalsOptionBlocksAsyncSignalsWhileHeldAndRestoresTheMask) {
  std::thread([] {
    // The thread's own mask, with one signal already blocked by the program:
    // it must come back exactly, not be emptied.
    sigset_t own;
    sigemptyset(&own);
    sigaddset(&own, SIGUSR2);
    pthread_sigmask(SIG_SETMASK, &own, nullptr);
    const sigset_t before = current_mask();
    SpinMutex m{"mask", kBlockSignals};
    m.lock();
    EXPECT_TRUE(m.owned());
    EXPECT_EQ(detail::spinlock_depth(), 1u);
    EXPECT_EQ(detail::blocking_depth(), 1u);
    expect_spinlock_section_mask(current_mask());
    m.unlock();
    EXPECT_EQ(detail::spinlock_depth(), 0u);
    EXPECT_EQ(detail::blocking_depth(), 0u);
    EXPECT_TRUE(same_mask(before, current_mask()));
    EXPECT_TRUE(sigismember(&before, SIGUSR2));
  }).join();
}

std::atomic<int> g_usr1_delivered{0};
std::atomic<int> g_usr1_depth{-1};
void on_usr1(int) {
  g_usr1_depth.store(int(detail::spinlock_depth()));
  g_usr1_delivered.fetch_add(1);
}

struct Usr1Handler {
  struct sigaction old {};
  Usr1Handler() {
    struct sigaction sa {};
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, &old);
    g_usr1_delivered = 0;
    g_usr1_depth = -1;
  }
  ~Usr1Handler() { sigaction(SIGUSR1, &old, nullptr); }
};

// The documented guarantee (spin_mutex.hpp): a plain SpinMutex does not hold
// the program's own handlers off. The signal is sent to the thread itself, so
// the kernel delivers it before pthread_kill returns.
TEST(SpinMutex, TheProgramsOwnHandlerMayRunInsideAPlainSection) {
  Usr1Handler h;
  std::thread([] {
    SpinMutex m{"plain"};
    m.lock();
    pthread_kill(pthread_self(), SIGUSR1);
    EXPECT_EQ(g_usr1_delivered.load(), 1) << "a plain section held the program's signal back";
    EXPECT_EQ(g_usr1_depth.load(), 1) << "the handler did not run inside the section";
    m.unlock();
  }).join();
}

SpinMutex* g_handler_lock = nullptr;
void lock_in_handler(int) {
  g_handler_lock->lock();
  g_handler_lock->unlock();
}

// What the header promises for a program handler that takes the lock its
// thread holds: no silent entry into the interrupted section, but a panic.
TEST(SpinMutexMisuse, AProgramHandlerTakingTheHeldLockPanicsAsRecursion) {
  auto r = run_in_child([] {
    static SpinMutex m{"taken-in-handler"};
    g_handler_lock = &m;
    struct sigaction sa {};
    sa.sa_handler = lock_in_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, nullptr);
    m.lock();
    pthread_kill(pthread_self(), SIGUSR1);
    m.unlock();
  });
  EXPECT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("spin mutex \"taken-in-handler\""), std::string::npos) << r.describe() << r.output;
  EXPECT_NE(r.output.find("recursed on a non-recursive lock"), std::string::npos) << r.describe() << r.output;
}

TEST(SpinMutex, WithBlockSignalsTheProgramsSignalArrivesAfterTheUnlock) {
  Usr1Handler h;
  std::thread([] {
    SpinMutex m{"deferred", kBlockSignals};
    m.lock();
    pthread_kill(pthread_self(), SIGUSR1);
    EXPECT_EQ(g_usr1_delivered.load(), 0) << "delivered inside the spinlock section";
    m.unlock();
    EXPECT_EQ(g_usr1_delivered.load(), 1) << "pending signal not delivered at the unlock";
    EXPECT_EQ(g_usr1_depth.load(), 0) << "delivered before the section ended";
  }).join();
}

// A plain section inside a blocking one, and the other way round: the mask
// stays until the blocking section ends, the count until the last one.
TEST(SpinMutex, PlainAndBlockingSectionsNest) {
  std::thread([] {
    SpinMutex plain{"plain"}, blocking{"blocking", kBlockSignals};
    const sigset_t before = current_mask();
    blocking.lock();
    plain.lock();
    EXPECT_EQ(detail::spinlock_depth(), 2u);
    plain.unlock();
    expect_spinlock_section_mask(current_mask());
    blocking.unlock();
    EXPECT_TRUE(same_mask(before, current_mask()));
    plain.lock();
    blocking.lock();
    blocking.unlock();
    EXPECT_TRUE(same_mask(before, current_mask()));
    EXPECT_EQ(detail::spinlock_depth(), 1u);
    plain.unlock();
    EXPECT_EQ(detail::spinlock_depth(), 0u);
    EXPECT_EQ(detail::blocking_depth(), 0u);
  }).join();
}

TEST(SpinMutex, TwoSpinMutexesNest) {
  std::thread([] {
    SpinMutex a{"outer"}, b{"inner"};
    a.lock();
    b.lock();
    EXPECT_EQ(detail::spinlock_depth(), 2u);
    b.unlock();
    EXPECT_EQ(detail::spinlock_depth(), 1u);  // still inside a's section
    a.unlock();
    EXPECT_EQ(detail::spinlock_depth(), 0u);
    // Released out of order too.
    a.lock();
    b.lock();
    a.unlock();
    EXPECT_EQ(detail::spinlock_depth(), 1u);
    b.unlock();
    EXPECT_EQ(detail::spinlock_depth(), 0u);
  }).join();
}

TEST(SpinMutexMisuse, UnlockWhileUnlockedPanicsWithItsName) {
  auto r = run_in_child([] {
    SpinMutex m{"never-locked-spin"};
    m.unlock();
  });
  EXPECT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("spin mutex \"never-locked-spin\""), std::string::npos) << r.describe();
  EXPECT_NE(r.output.find("unlocked while not locked"), std::string::npos) << r.describe();
}

TEST(SpinMutexMisuse, RecursionOnNonRecursiveLockPanics) {
  auto r = run_in_child([] {
    SpinMutex m{"not-recursive-spin"};
    m.lock();
    m.lock();
  });
  EXPECT_FALSE(r.hung) << r.describe();
  EXPECT_NE(r.output.find("recursed on a non-recursive lock"), std::string::npos) << r.describe();
}

// --- the stopped-scheduler bypass ------------------------------------------------

TEST(SpinMutexBypass, StoppedThreadPassesAHeldLockWithoutWritingIt) {
  SpinMutex m{"held-by-other"};
  std::atomic<bool> held{false}, release{false};
  std::thread owner([&] {
    m.lock();
    held = true;
    while (!release) std::this_thread::yield();
    m.unlock();
  });
  while (!held) std::this_thread::yield();
  const uintptr_t before = word_of(m);

  std::atomic<bool> done{false};
  std::thread panicking([&] {
    const sigset_t mask_before = current_mask();
    detail::set_scheduler_stopped(true);
    m.lock();  // would spin forever without the bypass
    EXPECT_TRUE(m.try_lock());
    m.unlock();
    m.unlock();
    detail::set_scheduler_stopped(false);
    // The faked acquisitions entered and left their spinlock sections.
    EXPECT_EQ(detail::spinlock_depth(), 0u);
    EXPECT_TRUE(same_mask(mask_before, current_mask()));
    done = true;
  });
  panicking.join();
  EXPECT_TRUE(done.load());
  EXPECT_EQ(word_of(m), before) << "a faked acquisition wrote the lock word";
  // Invariant 3: a thread without the flag still fails.
  bool got = true;
  std::thread([&] {
    got = m.try_lock();
    if (got) m.unlock();
  }).join();
  EXPECT_FALSE(got);
  release = true;
  owner.join();
  EXPECT_EQ(word_of(m), 0u);
}

TEST(SpinMutexBypass, WithoutTheFlagTheSameLockSpinsForever) {
  testing::ChildOptions opts;
  opts.deadline = std::chrono::milliseconds(500);
  auto r = run_in_child(
      [] {
        static SpinMutex m{"held-forever"};
        std::atomic<bool> held{false};
        std::thread([&] {
          m.lock();
          held = true;
          for (;;) pause();
        }).detach();
        while (!held) std::this_thread::yield();
        m.lock();
      },
      opts);
  EXPECT_TRUE(r.hung) << r.describe();
}

}  // namespace
}  // namespace panicstop
