// RwLock and SxLock share one mechanism, so every test here runs on both
// (typed tests); sx_lock_test.cpp adds what only SxLock has: timed waits.
#include "panicstop/rwlock.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <functional>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "panicstop/sx_lock.hpp"
#include "support/child_process.hpp"
#include "lock/park.hpp"
#include "thread/slot.hpp"

namespace panicstop {
namespace {

using testing::run_in_child;

template <class L>
const char* kind_name();
template <>
const char* kind_name<RwLock>() {
  return "rwlock";
}
template <>
const char* kind_name<SxLock>() {
  return "sx lock";
}

template <class L>
uintptr_t word_of(const L& l) {
  return l.lock_object().word.load();
}

// Blocks until `slot` is recorded as waiting on `lo` (the thread is in the
// hard path's wait loop: it announced itself and sleeps or is about to).
void await_waiter(const std::atomic<detail::ThreadSlot*>& slot, const detail::LockObject& lo) {
  while (slot.load() == nullptr || slot.load()->waiting_on.load() != &lo) std::this_thread::yield();
}

// Blocks until the word carries `flag` (a waiter announced itself in the word).
template <class L>
void await_flag(const L& l, uintptr_t flag) {
  while ((word_of(l) & flag) == 0) std::this_thread::yield();
}

// Runs `body` in a child with a deadline; it must exit 0 (a hang fails).
void expect_clean_exit_in_child(const std::function<void()>& body, std::chrono::seconds deadline) {
  testing::ChildOptions opts;
  opts.deadline = deadline;
  auto r = run_in_child(body, opts);
  EXPECT_FALSE(r.hung) << r.describe();
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
}

template <class L>
class SharedLockTest : public ::testing::Test {};
using LockTypes = ::testing::Types<RwLock, SxLock>;
TYPED_TEST_SUITE(SharedLockTest, LockTypes);

TYPED_TEST(SharedLockTest, ExclusiveAndSharedHoldsTrackOwnership) {
  TypeParam l{"basic"};
  EXPECT_STREQ(l.name(), "basic");
  EXPECT_EQ(l.lock_object().kind, std::string(kind_name<TypeParam>()) == "rwlock" ? detail::LockKind::kRwLock
                                                                                  : detail::LockKind::kSxLock);
  EXPECT_EQ(static_cast<const void*>(&l), static_cast<const void*>(&l.lock_object())) << "LockObject comes first";
  l.lock();
  EXPECT_TRUE(l.owned());
  l.assert_held();
  l.assert_held_shared();
  EXPECT_EQ(detail::shared_lock_owner(word_of(l)), reinterpret_cast<uintptr_t>(detail::current_slot()));
  l.unlock();
  EXPECT_FALSE(l.owned());
  l.assert_not_held();
  EXPECT_EQ(word_of(l), 0u);

  l.lock_shared();
  l.lock_shared();
  EXPECT_FALSE(l.owned());
  l.assert_held_shared();
  EXPECT_EQ(detail::shared_lock_readers(word_of(l)), 2u);
  EXPECT_EQ(detail::shared_lock_owner(word_of(l)), 0u);
  l.unlock_shared();
  l.unlock_shared();
  EXPECT_EQ(word_of(l), 0u);
  EXPECT_EQ(detail::tls_shared_holds, 0u);
}

TYPED_TEST(SharedLockTest, WorksWithStandardGuards) {
  TypeParam a{"a"}, b{"b"};
  {
    std::lock_guard<TypeParam> g(a);
    EXPECT_TRUE(a.owned());
  }
  {
    std::unique_lock<TypeParam> u(a, std::try_to_lock);
    EXPECT_TRUE(u.owns_lock());
  }
  {
    std::scoped_lock both(a, b);
    EXPECT_TRUE(a.owned() && b.owned());
  }
  {
    std::shared_lock<TypeParam> s(a);
    EXPECT_EQ(detail::shared_lock_readers(word_of(a)), 1u);
    std::shared_lock<TypeParam> s2(a, std::try_to_lock);
    EXPECT_TRUE(s2.owns_lock());
  }
  EXPECT_EQ(word_of(a), 0u);
  EXPECT_EQ(word_of(b), 0u);
}

TYPED_TEST(SharedLockTest, TryLockRespectsTheOtherThreadsHold) {
  TypeParam l{"try"};
  bool excl = true, shared = false;
  auto probe = [&] {
    std::thread([&] {
      excl = l.try_lock();
      if (excl) l.unlock();
      shared = l.try_lock_shared();
      if (shared) l.unlock_shared();
    }).join();
  };
  l.lock();
  probe();
  EXPECT_FALSE(excl);
  EXPECT_FALSE(shared);
  l.unlock();

  l.lock_shared();
  probe();
  EXPECT_FALSE(excl);
  EXPECT_TRUE(shared);
  l.unlock_shared();

  probe();
  EXPECT_TRUE(excl);
  EXPECT_TRUE(shared);
  EXPECT_EQ(word_of(l), 0u);
}

TYPED_TEST(SharedLockTest, RecursiveExclusiveNeedsOneUnlockPerLock) {
  TypeParam l{"recursive", kRecursive};
  l.lock();
  l.lock();
  EXPECT_TRUE(l.try_lock());
  l.unlock();
  l.unlock();
  EXPECT_TRUE(l.owned());
  bool other = true;
  std::thread([&] { other = l.try_lock_shared(); }).join();
  EXPECT_FALSE(other);
  l.unlock();
  EXPECT_EQ(word_of(l), 0u);
}

TYPED_TEST(SharedLockTest, ReadersNeverSeeAWriterInsideUnderStress) {
  TypeParam l{"stress"};
  // Written only under the exclusive lock, read under the shared lock: the
  // lock is what orders them (TSan checks that).
  long a = 0, b = 0;
  std::atomic<int> writers_inside{0};
  std::atomic<bool> violation{false};
  constexpr int kWriters = 3, kReaders = 5, kIters = 50000;
  std::atomic<bool> go{false};  // start together, or each thread runs alone
  std::vector<std::thread> threads;
  for (int t = 0; t < kWriters; ++t)
    threads.emplace_back([&] {
      while (!go) std::this_thread::yield();
      for (int i = 0; i < kIters; ++i) {
        std::lock_guard<TypeParam> g(l);
        if (writers_inside.fetch_add(1) != 0) violation = true;
        ++a;
        if ((a % 64) == 0) std::this_thread::yield();  // be preempted holding it: waiters must sleep
        ++b;
        writers_inside.fetch_sub(1);
      }
    });
  for (int t = 0; t < kReaders; ++t)
    threads.emplace_back([&, t] {
      while (!go) std::this_thread::yield();
      for (int i = 0; i < kIters; ++i) {
        bool nested = (i % 7) == 0;
        l.lock_shared();
        if (nested) l.lock_shared();  // a recursive reader must pass waiting writers
        if (writers_inside.load() != 0 || a != b) violation = true;
        if ((i % 256) == 0) std::this_thread::yield();
        if (nested) l.unlock_shared();
        l.unlock_shared();
        if (t == 0 && (i % 64) == 0 && l.try_lock_shared()) l.unlock_shared();
      }
    });
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_FALSE(violation.load());
  EXPECT_EQ(a, long(kWriters) * kIters);
  EXPECT_EQ(b, a);
  EXPECT_EQ(word_of(l), 0u);
}

TYPED_TEST(SharedLockTest, UpgradeAndDowngradeUnderStress) {
  TypeParam l{"updown"};
  long value = 0, upgrades = 0;
  std::atomic<bool> violation{false}, go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      while (!go) std::this_thread::yield();
      for (int i = 0; i < 20000; ++i) {
        l.lock_shared();
        if (l.try_upgrade()) {
          if (!l.owned()) violation = true;
          ++value;
          ++upgrades;
          l.downgrade();
        }
        long seen = value;  // read under the shared hold
        (void)seen;
        l.unlock_shared();
        l.lock();
        ++value;
        l.downgrade();
        l.unlock_shared();
      }
    });
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_FALSE(violation.load());
  EXPECT_EQ(value, 4 * 20000 + upgrades);
  EXPECT_EQ(word_of(l), 0u);
}

TYPED_TEST(SharedLockTest, RecursiveReaderPassesAWaitingWriter) {
  TypeParam l{"recursive-reader"};
  l.lock_shared();
  std::atomic<bool> writer_done{false};
  std::thread writer([&] {
    l.lock();
    writer_done = true;
    l.unlock();
  });
  await_flag(l, detail::kRwWriteWaiters);

  // Writer preference: a thread with no shared hold does not get in...
  bool fresh_reader_got = true;
  std::thread([&] { fresh_reader_got = l.try_lock_shared(); }).join();
  EXPECT_FALSE(fresh_reader_got);
  // ...but this thread, already a reader, does (else it would deadlock).
  l.lock_shared();
  EXPECT_TRUE(l.try_lock_shared());
  EXPECT_EQ(detail::shared_lock_readers(word_of(l)), 3u);
  EXPECT_FALSE(writer_done.load());
  l.unlock_shared();
  l.unlock_shared();
  l.unlock_shared();
  writer.join();
  EXPECT_TRUE(writer_done.load());
  EXPECT_EQ(word_of(l), 0u);
}

TYPED_TEST(SharedLockTest, NewReaderWaitsBehindAWaitingWriter) {
  TypeParam l{"writer-preference"};
  l.lock_shared();
  std::atomic<bool> writer_done{false};
  std::thread writer([&] {
    l.lock();
    writer_done = true;
    l.unlock();
  });
  await_flag(l, detail::kRwWriteWaiters);
  std::atomic<detail::ThreadSlot*> reader_slot{nullptr};
  std::atomic<bool> writer_was_done_first{false};
  std::thread reader([&] {
    reader_slot = detail::current_slot();
    l.lock_shared();
    writer_was_done_first = writer_done.load();
    l.unlock_shared();
  });
  await_waiter(reader_slot, l.lock_object());
  EXPECT_EQ(reader_slot.load()->wait_mode.load(), detail::WaitMode::kShared);
  l.unlock_shared();
  writer.join();
  reader.join();
  EXPECT_TRUE(writer_was_done_first.load());
  EXPECT_EQ(word_of(l), 0u);
}

TYPED_TEST(SharedLockTest, TryUpgradeOnlyForTheSoleReader) {
  TypeParam l{"upgrade"};
  l.lock_shared();
  EXPECT_TRUE(l.try_upgrade());
  EXPECT_TRUE(l.owned());
  EXPECT_EQ(detail::tls_shared_holds, 0u);
  l.downgrade();
  EXPECT_FALSE(l.owned());
  EXPECT_EQ(detail::shared_lock_readers(word_of(l)), 1u);

  std::atomic<bool> second_in{false}, release{false};
  std::thread other([&] {
    l.lock_shared();
    second_in = true;
    while (!release) std::this_thread::yield();
    l.unlock_shared();
  });
  while (!second_in) std::this_thread::yield();
  EXPECT_FALSE(l.try_upgrade());
  EXPECT_EQ(detail::shared_lock_readers(word_of(l)), 2u) << "a failed upgrade keeps the shared hold";
  release = true;
  other.join();
  EXPECT_TRUE(l.try_upgrade());
  l.unlock();
  EXPECT_EQ(word_of(l), 0u);
}

TYPED_TEST(SharedLockTest, DowngradeLetsWaitingReadersIn) {
  TypeParam l{"downgrade"};
  l.lock();
  std::atomic<detail::ThreadSlot*> reader_slot{nullptr};
  std::atomic<bool> reader_in{false};
  std::thread reader([&] {
    reader_slot = detail::current_slot();
    l.lock_shared();
    reader_in = true;
    l.unlock_shared();
  });
  await_waiter(reader_slot, l.lock_object());
  l.downgrade();
  reader.join();  // would hang if the downgrade did not wake the reader
  EXPECT_TRUE(reader_in.load());
  bool writer_got = true;
  std::thread([&] { writer_got = l.try_lock(); }).join();
  EXPECT_FALSE(writer_got) << "still read-locked by this thread";
  l.unlock_shared();
  EXPECT_EQ(word_of(l), 0u);
}

TYPED_TEST(SharedLockTest, WaitersRecordWhatTheyWaitFor) {
  TypeParam l{"recorded"};
  l.lock();
  std::atomic<detail::ThreadSlot*> slot{nullptr};
  std::thread t([&] {
    slot = detail::current_slot();
    l.lock();
    l.unlock();
  });
  await_waiter(slot, l.lock_object());
  EXPECT_EQ(slot.load()->wait_mode.load(), detail::WaitMode::kExclusive);
  l.unlock();
  t.join();
  EXPECT_EQ(slot.load()->waiting_on.load(), nullptr);
  EXPECT_EQ(word_of(l), 0u);
}

// --- misuse: each ends in a panic naming the lock ------------------------------

template <class L>
void expect_misuse(void (*body)(), const char* lock_name, const char* what) {
  auto r = run_in_child([body] { body(); });
  EXPECT_FALSE(r.hung) << r.describe();
  EXPECT_FALSE(r.exited && r.exit_code == 0) << r.describe();
  std::string named = std::string(kind_name<L>()) + " \"" + lock_name + "\"";
  EXPECT_NE(r.output.find(named), std::string::npos) << named << "\n" << r.describe();
  EXPECT_NE(r.output.find(what), std::string::npos) << what << "\n" << r.describe();
}

TYPED_TEST(SharedLockTest, MisuseUnlockSharedWhileNotLocked) {
  expect_misuse<TypeParam>(
      [] {
        TypeParam l{"never-read"};
        l.unlock_shared();
      },
      "never-read", "unlock_shared while not locked");
}

TYPED_TEST(SharedLockTest, MisuseUnlockSharedOfAWriteLock) {
  expect_misuse<TypeParam>(
      [] {
        static TypeParam l{"write-held"};
        l.lock();
        l.unlock_shared();
      },
      "write-held", "unlock_shared while write-locked");
}

TYPED_TEST(SharedLockTest, MisuseUnlockSharedByANonReader) {
  expect_misuse<TypeParam>(
      [] {
        static TypeParam l{"others-read"};
        std::thread([] { l.lock_shared(); }).join();
        l.unlock_shared();
      },
      "others-read", "holds no shared lock");
}

TYPED_TEST(SharedLockTest, MisuseUnlockWhileNotLocked) {
  expect_misuse<TypeParam>(
      [] {
        TypeParam l{"never-locked"};
        l.unlock();
      },
      "never-locked", "unlocked while not locked");
}

TYPED_TEST(SharedLockTest, MisuseUnlockOfASharedHold) {
  expect_misuse<TypeParam>(
      [] {
        static TypeParam l{"read-then-unlock"};
        l.lock_shared();
        l.unlock();
      },
      "read-then-unlock", "needs unlock_shared");
}

TYPED_TEST(SharedLockTest, MisuseUnlockByNonOwner) {
  expect_misuse<TypeParam>(
      [] {
        static TypeParam l{"someone-elses"};
        std::thread([] { l.lock(); }).join();
        l.unlock();
      },
      "someone-elses", "unlocked by a thread that does not own it");
}

TYPED_TEST(SharedLockTest, MisuseRecursionOnNonRecursiveLock) {
  expect_misuse<TypeParam>(
      [] {
        static TypeParam l{"not-recursive"};
        l.lock();
        l.lock();
      },
      "not-recursive", "recursed on a non-recursive lock");
}

TYPED_TEST(SharedLockTest, MisuseSharedLockByTheExclusiveOwner) {
  expect_misuse<TypeParam>(
      [] {
        static TypeParam l{"self-deadlock"};
        l.lock();
        l.lock_shared();
      },
      "self-deadlock", "lock_shared by the thread that holds it exclusively");
}

TYPED_TEST(SharedLockTest, MisuseDowngradeWithoutExclusiveHold) {
  expect_misuse<TypeParam>(
      [] {
        static TypeParam l{"no-downgrade"};
        l.lock_shared();
        l.downgrade();
      },
      "no-downgrade", "downgrade by a thread that does not hold it exclusively");
}

TYPED_TEST(SharedLockTest, MisuseTryUpgradeWithoutSharedHold) {
  expect_misuse<TypeParam>(
      [] {
        static TypeParam l{"no-upgrade"};
        l.try_upgrade();
      },
      "no-upgrade", "try_upgrade while not read-locked");
}

TYPED_TEST(SharedLockTest, MisuseDestroyingAHeldLock) {
  expect_misuse<TypeParam>(
      [] {
        auto* l = new TypeParam{"doomed"};
        l->lock_shared();
        delete l;
      },
      "doomed", "destroyed while held");
}

TYPED_TEST(SharedLockTest, MisuseAssertHeld) {
  expect_misuse<TypeParam>(
      [] {
        TypeParam l{"asserted"};
        l.assert_held();
      },
      "asserted", "assert_held failed");
}

// --- the stopped-scheduler bypass (docs/DESIGN.md, section 4, invariants 2 and 3) -----------

// A thread that takes `l` in the given mode and keeps it until released.
template <class L>
class Holder {
 public:
  Holder(L& l, bool exclusive) : l_(l) {
    t_ = std::thread([this, exclusive] {
      if (exclusive)
        l_.lock();
      else
        l_.lock_shared();
      held_ = true;
      while (!release_) std::this_thread::yield();
      if (exclusive)
        l_.unlock();
      else
        l_.unlock_shared();
    });
    while (!held_) std::this_thread::yield();
  }
  ~Holder() {
    release_ = true;
    t_.join();
  }

 private:
  L& l_;
  std::atomic<bool> held_{false}, release_{false};
  std::thread t_;
};

// Runs `body` on a thread that behaves as the panicking one.
template <class F>
void as_panicking_thread(F body) {
  std::atomic<bool> done{false};
  std::thread([&] {
    detail::set_scheduler_stopped(true);
    body();
    detail::set_scheduler_stopped(false);
    done = true;
  }).join();
  EXPECT_TRUE(done.load());
}

TYPED_TEST(SharedLockTest, BypassOverAWriteOwnerWritesNothing) {
  TypeParam l{"write-owned"};
  Holder<TypeParam> owner(l, /*exclusive=*/true);
  const uintptr_t before = word_of(l);
  as_panicking_thread([&] {
    l.lock();  // would block forever without the bypass
    EXPECT_EQ(word_of(l), before);
    EXPECT_TRUE(l.try_lock());
    l.unlock();
    l.unlock();
    l.lock_shared();
    EXPECT_EQ(word_of(l), before);
    EXPECT_TRUE(l.try_lock_shared());
    l.unlock_shared();
    l.unlock_shared();
    EXPECT_EQ(detail::tls_shared_holds, 0u) << "a faked shared hold is not counted";
    l.lock();
    l.downgrade();
    l.unlock_shared();
    l.assert_held();
    l.assert_held_shared();
  });
  EXPECT_EQ(word_of(l), before) << "a faked acquisition wrote the lock word";
  // Invariant 3: a thread without the flag still blocks.
  EXPECT_FALSE(l.try_lock());
  EXPECT_FALSE(l.try_lock_shared());
}

TYPED_TEST(SharedLockTest, BypassOverReadersWithAWaitingWriter) {
  TypeParam l{"read-owned"};
  std::optional<Holder<TypeParam>> reader;
  reader.emplace(l, /*exclusive=*/false);
  std::atomic<bool> writer_done{false};
  std::thread writer([&] {
    l.lock();
    writer_done = true;
    l.unlock();
  });
  await_flag(l, detail::kRwWriteWaiters);
  const uintptr_t before = word_of(l);
  as_panicking_thread([&] {
    // A real shared hold that ignores writer preference: its fast-path release
    // is then correct by construction.
    l.lock_shared();
    EXPECT_EQ(detail::shared_lock_readers(word_of(l)), 2u);
    l.unlock_shared();
    EXPECT_EQ(word_of(l), before);
    // Exclusive over readers: faked.
    l.lock();
    EXPECT_TRUE(l.try_lock());
    EXPECT_EQ(word_of(l), before);
    l.unlock();
    l.unlock();
  });
  EXPECT_EQ(word_of(l), before);
  EXPECT_FALSE(writer_done.load());
  // Invariant 3: a fresh reader without the flag still waits behind the writer.
  bool got = true;
  std::thread([&] { got = l.try_lock_shared(); }).join();
  EXPECT_FALSE(got);
  EXPECT_FALSE(l.try_lock());
  reader.reset();  // the last reader leaves; the writer gets in
  writer.join();
  EXPECT_TRUE(writer_done.load());
  EXPECT_EQ(word_of(l), 0u);
}

TYPED_TEST(SharedLockTest, BypassedSharedReleaseNeverTouchesLaterReaders) {
  // The faked shared hold outlives its write owner and readers take the lock:
  // its release must still write nothing (the panicking thread holds no real
  // shared lock, so the fast path refuses and the hard path sees the fake).
  TypeParam l{"owner-left"};
  std::optional<Holder<TypeParam>> writer;
  writer.emplace(l, /*exclusive=*/true);
  std::atomic<int> step{0};
  std::thread panicking([&] {
    detail::set_scheduler_stopped(true);
    l.lock_shared();  // faked over the writer
    step = 1;
    while (step != 2) std::this_thread::yield();
    l.unlock_shared();
    detail::set_scheduler_stopped(false);
    step = 3;
  });
  while (step != 1) std::this_thread::yield();
  writer.reset();
  std::optional<Holder<TypeParam>> reader;
  reader.emplace(l, /*exclusive=*/false);
  const uintptr_t before = word_of(l);
  EXPECT_EQ(detail::shared_lock_readers(before), 1u);
  step = 2;
  panicking.join();
  EXPECT_EQ(word_of(l), before) << "the faked hold's release took the other reader's hold";
  reader.reset();
  EXPECT_EQ(word_of(l), 0u);
}

TYPED_TEST(SharedLockTest, OverlappingReadersCannotStarveAWriter) {
  TypeParam l{"starvation"};
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t)
    readers.emplace_back([&] {
      // Every reader re-enters at once: without writer preference the lock
      // would never be free of readers.
      while (!stop) {
        l.lock_shared();
        std::this_thread::yield();
        l.unlock_shared();
      }
    });
  for (int i = 0; i < 200; ++i) {
    l.lock();
    l.unlock();
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(word_of(l), 0u);
}

// Lost wake-ups. A release wakes only whom it must: one writer while writers
// wait (each taker keeps the waiter flags, so the next release wakes the
// next one), all readers once none waits. Each round piles writers, readers
// and readers that already hold a shared lock (of another lock) up asleep
// behind a holder, then lets the holder go in one of three ways; every one of
// them must get through. A stranded sleeper hangs the child past its deadline.
enum class Release { kUnlock, kLastReader, kDowngradeThenLastReader };

template <class L>
void pile_up_and_release(L& l, L& other, Release how, int writers, int readers, int held_readers) {
  const int total = writers + readers + held_readers;
  std::vector<std::atomic<detail::ThreadSlot*>> slots(total);
  std::vector<std::atomic<bool>> done(total);
  long inside = 0;  // written under the exclusive hold only
  if (how == Release::kLastReader)
    l.lock_shared();
  else
    l.lock();
  std::vector<std::thread> threads;
  for (int i = 0; i < total; ++i)
    threads.emplace_back([&, i] {
      slots[i] = detail::current_slot();
      if (i < writers) {
        l.lock();
        ++inside;
        std::this_thread::yield();  // others meet a held word: woken ones must sleep again
        l.unlock();
      } else if (i < writers + readers) {
        l.lock_shared();
        l.unlock_shared();
      } else {
        other.lock_shared();  // now it may pass waiting writers on l
        l.lock_shared();
        l.unlock_shared();
        other.unlock_shared();
      }
      done[i] = true;
    });
  // Until each thread is done or sleeps on l (parked marks the futex wait).
  for (;;) {
    int settled = 0;
    for (int i = 0; i < total; ++i) {
      detail::ThreadSlot* s = slots[i].load();
      if (done[i].load() || (s != nullptr && s->parked.load() && s->waiting_on.load() == &l.lock_object()))
        ++settled;
    }
    if (settled == total) break;
    std::this_thread::yield();
  }
  if (how == Release::kUnlock) {
    l.unlock();
  } else {
    if (how == Release::kDowngradeThenLastReader) l.downgrade();
    l.unlock_shared();
  }
  for (auto& t : threads) t.join();
  if (inside != writers) _exit(3);
  if (word_of(l) != 0) _exit(4);
}

TYPED_TEST(SharedLockTest, NoWakeUpIsLostWhenManyWritersAndReadersSleep) {
  testing::ChildOptions opts;
  opts.deadline = std::chrono::seconds(20);
  auto r = run_in_child(
      [] {
        static TypeParam l{"pile-up"}, other{"other-read"};
        for (int round = 0; round < 60; ++round) {
          const Release how = round % 3 == 0   ? Release::kUnlock
                              : round % 3 == 1 ? Release::kLastReader
                                               : Release::kDowngradeThenLastReader;
          pile_up_and_release(l, other, how, /*writers=*/2 + round % 7, /*readers=*/3, /*held_readers=*/round % 2);
        }
      },
      opts);
  EXPECT_FALSE(r.hung) << r.describe();
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
}

// The one case where a woken writer finds the lock held WITHOUT the
// writer-waiters flag: the last waiting writer gave up (SxLock's deadline),
// cleared the flag and woke everyone, while this writer had just counted
// itself and gone to sleep. The test does to the word what that writer does;
// the woken writer must set the flag again before it sleeps, or the holder's
// unlock takes the fast path, wakes nobody, and strands it.
TYPED_TEST(SharedLockTest, AWokenWriterThatMustWaitAgainSetsItsFlagAgain) {
  expect_clean_exit_in_child(
      [] {
        static TypeParam l{"flag-again"};
        l.lock();
        std::atomic<detail::ThreadSlot*> slot{nullptr};
        std::thread writer([&] {
          slot = detail::current_slot();
          l.lock();
          l.unlock();
        });
        await_waiter(slot, l.lock_object());
        await_flag(l, detail::kRwWriteWaiters);
        while (!slot.load()->parked.load()) std::this_thread::yield();
        auto& word = const_cast<std::atomic<uintptr_t>&>(l.lock_object().word);
        word.fetch_and(~detail::kRwWriteWaiters);
        detail::unpark(&word, INT_MAX);  // every sleeper wakes
        await_flag(l, detail::kRwWriteWaiters);  // hangs if the writer sleeps without it
        l.unlock();
        writer.join();
        if (word_of(l) != 0) _exit(4);
      },
      std::chrono::seconds(10));
}

// True once the thread is asleep in the kernel (state S in /proc): for a
// thread parked in a lock's wait loop, that is the futex wait itself.
bool asleep_in_kernel(int32_t tid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", int(tid));
  FILE* f = fopen(path, "r");
  if (f == nullptr) return false;
  char buf[512] = {};
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  const char* close = strrchr(buf, ')');  // the state follows the command name
  return n > 0 && close != nullptr && close[1] == ' ' && close[2] == 'S';
}

// With writers asleep and a woken writer on its way (the parking layer's
// designated-wake mark), a writer that takes the lock without having slept
// holds it with no flag, so its unlock is the one-CAS fast path; the woken
// writer, taking the lock, flags it again for the writers still asleep. The
// test plays the woken writer's part: it marks the lock as if one were on its
// way (so its own unlock wakes nobody), takes the lock barging, releases it, and then wakes
// one sleeper by hand. Fails if the barging hold kept the flags (exit 7), or
// if the woken writer took the lock unflagged and stranded the other one
// (hang).
TYPED_TEST(SharedLockTest, ABargingWriterHoldsWithoutFlagsAndTheWokenOneFlagsAgain) {
  expect_clean_exit_in_child(
      [] {
        static TypeParam l{"barging"};
        l.lock();
        std::atomic<detail::ThreadSlot*> slots[2] = {nullptr, nullptr};
        std::vector<std::thread> writers;
        for (auto& slot : slots)
          writers.emplace_back([&slot] {
            slot = detail::current_slot();
            l.lock();
            std::this_thread::yield();  // the other one may look at a held word
            l.unlock();
          });
        for (auto& slot : slots) {
          await_waiter(slot, l.lock_object());
          while (!slot.load()->parked.load() || !asleep_in_kernel(slot.load()->tid.load()))
            std::this_thread::yield();
        }
        auto& word = const_cast<std::atomic<uintptr_t>&>(l.lock_object().word);
        const uintptr_t self = reinterpret_cast<uintptr_t>(detail::current_slot());
        if (word.load() != (self | detail::kRwWriteWaiters)) _exit(5);
        if (!detail::mark_designated_wake(&word)) _exit(5);  // "a woken writer is on its way"
        l.unlock();  // reserved for the writers; wakes nobody
        if (word.load() != detail::kRwWriteWaiters || detail::parked_count(&word) != 2) _exit(6);
        if (!l.try_lock()) _exit(6);
        if (word.load() != self) _exit(7);  // no flag: the unlock below is the fast path
        l.unlock();
        if (word.load() != 0) _exit(8);
        // The woken writer's part begins: one sleeper wakes, takes the free
        // lock and must flag it for the other.
        detail::unpark(&word, 1);
        for (auto& t : writers) t.join();
        if (word_of(l) != 0) _exit(4);
      },
      std::chrono::seconds(10));
}

template <class L>
void hang_on_held_lock(bool exclusive_owner, bool exclusive_waiter) {
  testing::ChildOptions opts;
  opts.deadline = std::chrono::milliseconds(500);
  auto r = run_in_child(
      [exclusive_owner, exclusive_waiter] {
        static L l{"held-forever"};
        std::atomic<bool> held{false};
        std::thread([&] {
          if (exclusive_owner)
            l.lock();
          else
            l.lock_shared();
          held = true;
          for (;;) pause();
        }).detach();
        while (!held) std::this_thread::yield();
        if (exclusive_waiter)
          l.lock();
        else
          l.lock_shared();
      },
      opts);
  EXPECT_TRUE(r.hung) << r.describe();
}

// The controls: the same acquisitions without the flag block.
TYPED_TEST(SharedLockTest, WithoutTheFlagExclusiveBlocks) { hang_on_held_lock<TypeParam>(false, true); }
TYPED_TEST(SharedLockTest, WithoutTheFlagSharedBlocks) { hang_on_held_lock<TypeParam>(true, false); }

}  // namespace
}  // namespace panicstop
