// Thread slots under thread churn: a process that starts and ends threads
// without end (a thread per connection, a pool that shrinks and grows) must
// touch about as many slots as it ever has threads at once, not one per
// thread it ever made; a released slot still waits for many other claims
// before it is handed out again (its address may sit in a lock word that its
// thread never unlocked); and no slot is ever live for two threads at once.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "panicstop/panicstop.hpp"
#include "support/child_process.hpp"
#include "support/sanitizer.hpp"
#include "sys/syscall.hpp"
#include "thread/slot.hpp"

namespace panicstop {
namespace {

using testing::run_in_child;
using testing::say;
using testing::value_of;
using testing::TempDir;
using testing::with_env;

TEST(SlotChurn, ThreadsMadeOneAfterAnotherReuseAFewSlots) {
  auto r = run_in_child(
      [] {
        size_t before = detail::slot_count();
        size_t live_before = detail::live_slot_count();
        for (int i = 0; i < 20000; ++i) {
          std::thread t([] { detail::claim_current_slot(); });
          t.join();
        }
        say("grown=" + std::to_string(detail::slot_count() - before));
        say("live_delta=" + std::to_string(detail::live_slot_count() - live_before));
      },
      with_env({}, 120000));
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  long grown = value_of(r.output, "grown");
  ASSERT_GE(grown, 0) << r.output;
  // One thread at a time: the pool stops growing at a few dozen slots.
  EXPECT_LT(grown, 100) << r.output;
  EXPECT_EQ(value_of(r.output, "live_delta"), 0) << r.output;
}

// A thread that claims a slot, reports it, and ends when told to.
struct Worker {
  std::promise<detail::ThreadSlot*> claimed;
  std::promise<void> finish;
  std::thread thread;

  Worker() {
    std::future<void> told = finish.get_future();
    thread = std::thread([this, told = std::move(told)]() mutable {
      claimed.set_value(detail::claim_current_slot());
      told.wait();
    });
  }
  detail::ThreadSlot* slot() { return claimed.get_future().get(); }
  // Returns once the thread has ended, and so has released its slot.
  void end() {
    finish.set_value();
    thread.join();
  }
};

// Slots taken round-robin alone would hand a slot out again at once when the
// thread holding the very next slot ends just after the round reached it:
// long-lived workers sit among short-lived threads, and each time a
// short-lived thread gets the slot just below a worker's, that worker ends
// and a new one starts at once.
TEST(SlotChurn, AReleasedSlotWaitsForManyClaimsWhateverOrderThreadsEndIn) {
  auto r = run_in_child(
      [] {
        constexpr size_t kWorkers = 8;
        constexpr int kRounds = 3000;
        std::vector<std::unique_ptr<Worker>> workers;
        std::vector<detail::ThreadSlot*> slots;
        for (size_t i = 0; i < kWorkers; ++i) {
          workers.push_back(std::make_unique<Worker>());
          slots.push_back(workers.back()->slot());
        }
        // Every claim in order, and for each release the number of claims
        // made before it.
        std::vector<detail::ThreadSlot*> claims;
        std::vector<std::pair<detail::ThreadSlot*, size_t>> releases;
        size_t next_to_worker = 0;
        for (int round = 0; round < kRounds; ++round) {
          Worker brief;
          detail::ThreadSlot* got = brief.slot();
          brief.end();
          claims.push_back(got);
          releases.emplace_back(got, claims.size());
          // The round wraps from the last slot handed out to the first.
          size_t next = static_cast<size_t>(got - detail::slot_array()) + 1;
          if (next == detail::slot_count()) next = 0;
          for (size_t v = 0; v < kWorkers; ++v) {
            if (slots[v] != detail::slot_array() + next) continue;
            ++next_to_worker;
            workers[v]->end();
            releases.emplace_back(slots[v], claims.size());
            workers[v] = std::make_unique<Worker>();
            slots[v] = workers[v]->slot();
            claims.push_back(slots[v]);
            break;
          }
        }
        for (auto& w : workers) w->end();
        // At most kWorkers + 1 threads hold a slot at a claim; a slot must
        // not come back within that many claims of its release.
        size_t soon = 0, reused = 0;
        for (auto [slot, at] : releases) {
          for (size_t k = at; k < claims.size(); ++k) {
            if (claims[k] != slot) continue;
            ++reused;
            if (k - at < kWorkers + 1) ++soon;
            break;
          }
        }
        say("next_to_worker=" + std::to_string(next_to_worker));
        say("reused=" + std::to_string(reused));
        say("soon=" + std::to_string(soon));
      },
      with_env({}, 120000));
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  // The case that matters did happen, slots do come back (the pool is
  // bounded), but never soon.
  EXPECT_GT(value_of(r.output, "next_to_worker"), 0) << r.output;
  EXPECT_GT(value_of(r.output, "reused"), 0) << r.output;
  EXPECT_EQ(value_of(r.output, "soon"), 0) << r.output;
}

// The child of a fork() retires the slots of the parent's other threads for
// good (a lock word may still name them): its live count restarts at its own
// slot, its threads never get a retired slot, and its pool stays bounded.
TEST(SlotChurn, AForkedChildNeverReusesRetiredSlotsAndCountsItsOwn) {
  // A sanitizer's runtime does not support threads started in the child of a
  // multithreaded fork.
  if (testing::kSanitizerBuild) GTEST_SKIP() << "threads after a multithreaded fork";
  auto r = run_in_child(
      [] {
        install();
        detail::claim_current_slot();
        constexpr size_t kWorkers = 40;
        std::vector<std::unique_ptr<Worker>> workers;
        std::vector<detail::ThreadSlot*> parents;
        for (size_t i = 0; i < kWorkers; ++i) {
          workers.push_back(std::make_unique<Worker>());
          parents.push_back(workers.back()->slot());
        }
        pid_t pid = fork();
        if (pid == 0) {
          size_t live_after_fork = detail::live_slot_count();
          size_t before = detail::slot_count();
          size_t got_retired = 0;
          for (int i = 0; i < 3000; ++i) {
            detail::ThreadSlot* got = nullptr;
            std::thread t([&got] { got = detail::claim_current_slot(); });
            t.join();
            for (detail::ThreadSlot* p : parents)
              if (p == got) ++got_retired;
          }
          size_t still_retired = 0;
          for (detail::ThreadSlot* p : parents)
            if (p->in_use.load() == detail::kSlotRetired) ++still_retired;
          say("live_after_fork=" + std::to_string(live_after_fork));
          say("live_after_churn=" + std::to_string(detail::live_slot_count()));
          say("got_retired=" + std::to_string(got_retired));
          say("still_retired=" + std::to_string(still_retired));
          say("grown=" + std::to_string(detail::slot_count() - before));
          _exit(0);
        }
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) _exit(3);
        for (auto& w : workers) w->end();
      },
      with_env({}, 60000));
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  EXPECT_EQ(value_of(r.output, "live_after_fork"), 1) << r.output;
  EXPECT_EQ(value_of(r.output, "live_after_churn"), 1) << r.output;
  EXPECT_EQ(value_of(r.output, "got_retired"), 0) << r.output;
  EXPECT_EQ(value_of(r.output, "still_retired"), 40) << r.output;
  // Room for the retired slots and twice the parent's peak (41), not more.
  long grown = value_of(r.output, "grown");
  EXPECT_GE(grown, 0) << r.output;
  EXPECT_LT(grown, 200) << r.output;
}

TEST(SlotChurn, ConcurrentClaimsNeverShareASlotAndTheCountReturns) {
  TempDir dumps;
  auto r = run_in_child(
      [&] {
        install();
        detail::claim_current_slot();  // main's, which live_dump() would claim and keep
        size_t before = detail::slot_count();
        size_t live_before = detail::live_slot_count();
        // owner[i]: the tid that holds slot i in this test's view.
        static std::atomic<int> owner[detail::kMaxThreads];
        static std::atomic<int> shared{0};
        auto hold = [](detail::ThreadSlot* s) {
          int tid = static_cast<int>(sys::gettid());
          size_t i = static_cast<size_t>(s - detail::slot_array());
          if (s->tid.load() != tid) shared.fetch_add(1);
          int was = owner[i].exchange(tid);
          if (was != 0) shared.fetch_add(1);
          std::this_thread::yield();
          if (owner[i].exchange(0) != tid) shared.fetch_add(1);
        };
        constexpr int kChurners = 6;
        std::atomic<int> running{kChurners};
        std::vector<std::thread> churners;
        for (int c = 0; c < kChurners; ++c)
          churners.emplace_back([&] {
            for (int i = 0; i < 600; ++i) {
              std::thread t([&] { hold(detail::claim_current_slot()); });
              // Claims and releases without a thread's start and end. (Not
              // claim_slot_in_signal_handler(): a live dump's stop handler
              // would take such a slot for its own and release it on resume.)
              for (int k = 0; k < 5; ++k) {
                hold(detail::claim_current_slot());
                detail::release_current_slot();
              }
              t.join();
            }
            running.fetch_sub(1);
          });
        // Live dumps stop every thread mid-churn; the handler claims a slot
        // for each thread that has none and releases it on resume. (Not under
        // a sanitizer, whose shadow memory no dump can hold.)
        int dumps_written = 0;
        while (!testing::kSanitizerBuild && running.load() > 0 && dumps_written < 3)
          if (live_dump(dumps.path().c_str()) > 0) ++dumps_written;
        for (auto& t : churners) t.join();
        say("shared=" + std::to_string(shared.load()));
        say("dumps=" + std::to_string(dumps_written));
        say("grown=" + std::to_string(detail::slot_count() - before));
        say("live_delta=" + std::to_string(detail::live_slot_count() - live_before));
      },
      with_env({{"PANICSTOP_DUMP", "text"}}, 120000));
  ASSERT_FALSE(r.hung) << r.describe() << r.output;
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << r.output;
  EXPECT_EQ(value_of(r.output, "shared"), 0) << r.output;
  if (!testing::kSanitizerBuild) {
    EXPECT_GE(value_of(r.output, "dumps"), 1) << r.output;
  }
  // At most 2 * 6 churn threads live at once, plus main (and the dump's
  // temporary claims): the pool stays far below kMaxThreads.
  long grown = value_of(r.output, "grown");
  EXPECT_GE(grown, 0) << r.output;
  EXPECT_LT(grown, 200) << r.output;
  EXPECT_EQ(value_of(r.output, "live_delta"), 0) << r.output;
}

}  // namespace
}  // namespace panicstop
