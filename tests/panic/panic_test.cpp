// The panic path end to end, each crash in a child process with a deadline.
#include "panicstop/panic.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#include "panic/panic_state.hpp"
#include "panic_test_util.hpp"
#include "panicstop/mutex.hpp"
#include "panicstop/spin_mutex.hpp"
#include "panicstop/thread.hpp"
#include "support/child_process.hpp"
#include "support/io_uring_worker.hpp"
#include "thread/slot.hpp"
#if __has_include("panicstop/rwlock.hpp")
#include "panicstop/rwlock.hpp"
#define HAVE_RWLOCK 1
#endif

namespace panicstop {
namespace {

using detail::panic_state;
using testing::ChildOptions;
using testing::count_of;
using testing::park;
using testing::run_in_child;
using testing::say;
using testing::thread_count;
using testing::wait_for_threads;
using testing::with_env;


void expect_sigabrt(const testing::ChildResult& r) {
  EXPECT_FALSE(r.hung) << r.describe() << "\n" << r.output;
  EXPECT_TRUE(r.signaled && r.term_signal == SIGABRT) << r.describe() << "\n" << r.output;
}

TEST(Panic, FromMainDiesOfSigabrtWithTheMessage) {
  auto r = run_in_child([] {
    install();
    panic("boom %d", 42);
  });
  expect_sigabrt(r);
  EXPECT_EQ(r.output.rfind("panic: boom 42\n", 0), 0u) << r.output;
  EXPECT_EQ(count_of(r.output, "panic: "), 1u) << r.output;
}

TEST(Panic, FromAWorkerNamesTheThread) {
  auto r = run_in_child([] {
    install();
    std::thread([] {
      set_thread_name("worker-3");
      panic("worker gave up");
    }).join();
  });
  expect_sigabrt(r);
  EXPECT_EQ(r.output.rfind("panic: worker gave up\n", 0), 0u) << r.output;
  EXPECT_NE(r.output.find("(worker-3) panicked"), std::string::npos) << r.output;
}

TEST(Panic, AssertNamesConditionAndPlace) {
  auto r = run_in_child([] {
    install();
    int answer = 41;
    PANICSTOP_ASSERT(answer == 42, "answer was %d", answer);
  });
  expect_sigabrt(r);
  EXPECT_NE(r.output.find("panic: assertion failed: answer == 42 ("), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("): answer was 41"), std::string::npos) << r.output;
}

volatile uintptr_t g_bad_address = 8;

TEST(Panic, FaultDiesOfTheOriginalSignal) {
  auto r = run_in_child([] {
    install();
    *reinterpret_cast<volatile int*>(g_bad_address + 8) = 1;
  });
  EXPECT_FALSE(r.hung) << r.describe();
  EXPECT_TRUE(r.signaled && r.term_signal == SIGSEGV) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("panic: fatal signal SIGSEGV (SEGV_MAPERR) at 0x10 in thread "), std::string::npos)
      << r.output;
}

TEST(Panic, UncaughtExceptionGivesTypeAndWhat) {
  auto r = run_in_child([] {
    install();
    std::thread([] { throw std::runtime_error("kaput"); }).join();
  });
  expect_sigabrt(r);
  EXPECT_NE(r.output.find("panic: uncaught exception of type std::runtime_error: kaput"), std::string::npos)
      << r.output;
}

int abort_in_comparator(const void*, const void*) { abort(); }

TEST(Panic, AbortFromInsideALibraryIsCaught) {
  auto r = run_in_child([] {
    install();
    int values[4] = {4, 3, 2, 1};
    qsort(values, 4, sizeof(int), abort_in_comparator);  // abort() with libc frames below us
  });
  expect_sigabrt(r);
  EXPECT_NE(r.output.find("panic: fatal signal SIGABRT (SI_TKILL) in thread "), std::string::npos) << r.output;
}

// The floating-point state came with the context: x86_64 copies the XSAVE
// area out of the signal frame (fpstate_size); aarch64 keeps its FP/SIMD
// record inside the ucontext, as the first record of __reserved.
bool fp_state_saved(const detail::SavedContext& c) {
#if defined(__aarch64__)
  uint32_t magic;
  __builtin_memcpy(&magic, c.ucontext.uc_mcontext.__reserved, sizeof magic);
  return magic == 0x46508001u;  // FPSIMD_MAGIC
#else
  return c.fpstate_size >= 512;
#endif
}

// Idle threads blocked on a futex, a spinning one, one blocked in read() on a
// pipe, one created before install(): the PreDump hook counts what /proc shows
// against what the stop recorded and checks each thread's saved context.
void count_stopped_threads(void*) {
  int tasks = thread_count();
  int self = sys::gettid();
  int valid = 0;
  detail::ThreadSlot* slots = detail::slot_array();
  for (size_t i = 0; i < detail::slot_count(); ++i) {
    detail::ThreadSlot& s = slots[i];
    if (s.in_use.load() == 0 || s.tid.load() == self) continue;
    if (s.stop_state.load() == detail::StopState::kStopped && s.context.valid && s.context.stack_pointer != 0 &&
        fp_state_saved(s.context))
      ++valid;
  }
  say("tasks=%d stopped=%u valid=%d not_stopped=%u\n", tasks, panic_state().stop.stopped, valid,
      panic_state().stop.not_stopped);
}

TEST(Panic, EveryOtherThreadIsStoppedWithItsContext) {
  auto r = run_in_child([] {
    std::atomic<uint32_t> never{0};
    std::thread early([&] { sys::futex_wait(&never, 0); });  // before install, never uses the library
    install();
    on_panic(Stage::PreDump, count_stopped_threads, nullptr);
    std::vector<std::thread> threads;
    for (int i = 0; i < 6; ++i) threads.emplace_back([] { park(); });
    threads.emplace_back([] {
      for (uint64_t n = 0;; ++n) __asm__ volatile("" : "+r"(n));
    });
    int fds[2];
    if (pipe(fds) != 0) return;
    threads.emplace_back([&] {
      char c;
      (void)!read(fds[0], &c, 1);
    });
    wait_for_threads(10);
    panic("stop them all");
  });
  expect_sigabrt(r);
  EXPECT_NE(r.output.find("tasks=10 stopped=9 valid=9 not_stopped=0"), std::string::npos) << r.output;
}

// A server at its descriptor limit (EMFILE) is where error paths run and
// crashes happen. The panic still lists every thread in /proc and stops it,
// reads the maps, and writes its report, with the descriptors install() held
// back. Without them: "1 threads: 0 stopped", no modules, no report file.
TEST(Panic, AtTheDescriptorLimitEveryThreadIsStoppedAndTheReportWritten) {
  testing::TempDir dir;
  auto r = run_in_child(
      [] {
        std::atomic<uint32_t> never{0};
        std::thread early([&] { sys::futex_wait(&never, 0); });  // before install, never uses the library
        install();
        std::vector<std::thread> threads;
        for (int i = 0; i < 2; ++i) threads.emplace_back([] { park(); });
        wait_for_threads(4);
        rlimit lim{128, 128};
        if (setrlimit(RLIMIT_NOFILE, &lim) != 0) _exit(3);
        int more = 0;
        while (open("/dev/null", O_RDONLY) >= 0) ++more;
        say("EMFILE after %d more\n", more);
        panic("at the descriptor limit");
      },
      with_env({{"PANICSTOP_DUMP", "text"}, {"PANICSTOP_DUMP_DIR", dir.path()}}));
  expect_sigabrt(r);
  EXPECT_NE(r.output.find("EMFILE after "), std::string::npos) << r.output;
  std::string path = dir.file_ending(".txt");
  ASSERT_FALSE(path.empty()) << r.output;
  std::string report = testing::read_file(path);
  EXPECT_NE(report.find("\n4 threads: 3 stopped, 0 not stopped"), std::string::npos) << report;
  EXPECT_EQ(report.find("incomplete:"), std::string::npos) << report;
  EXPECT_NE(report.find("\nmodules:\n  0x"), std::string::npos) << report;
}

// The kernel's own thread in the process (io_uring's iou-wrk-PID) is named
// for what it is in the report, not listed as a thread that did not stop.
TEST(Panic, AKernelWorkerIsReportedAsOne) {
  testing::TempDir dir;
  auto r = run_in_child(
      [] {
        install();
        std::thread(park).detach();
        if (int err = testing::start_io_uring_read(); err != 0) {
          say("no io_uring: %s\n", strerror(-err));
          _exit(77);
        }
        int worker = testing::io_uring_worker_tid(std::chrono::seconds(5));
        if (worker == 0) _exit(78);
        say("worker=%d\n", worker);
        panic("with a kernel worker");
      },
      with_env({{"PANICSTOP_DUMP", "text"}, {"PANICSTOP_DUMP_DIR", dir.path()}, {"PANICSTOP_STOP_TIMEOUT_MS", "10000"}},
               30000));
  if (r.exited && r.exit_code == 77) GTEST_SKIP() << r.output;
  expect_sigabrt(r);
  EXPECT_NE(r.output.find("1 other threads stopped in"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("; 1 kernel workers (io_uring, vhost) left as they are"), std::string::npos) << r.output;
  long long worker = testing::value_of(r.output, "worker");
  std::string report = testing::read_file(dir.file_ending(".txt"));
  EXPECT_NE(report.find("\n3 threads: 1 stopped, 0 not stopped\n1 kernel workers: "), std::string::npos) << report;
  EXPECT_NE(report.find("\nthread " + std::to_string(worker) + " (iou-wrk-"), std::string::npos) << report;
  EXPECT_NE(report.find(") [kernel_worker] "), std::string::npos) << report;
}

// Stopped threads hold a Mutex, a SpinMutex (and an RwLock for writing); the
// PreDump hook takes and releases each one. With the stop, the panicking thread
// bypasses them and the words stay as the owners left them.
struct HeldLocks {
  Mutex mutex{"held-mutex"};
  SpinMutex spin{"held-spin"};
#ifdef HAVE_RWLOCK
  RwLock rw{"held-rw"};
#endif
};
HeldLocks* g_held;

uintptr_t word_of(const detail::LockObject& lo) { return lo.word.load(); }

void take_held_locks(void*) {
  HeldLocks& h = *g_held;
  uintptr_t before[3] = {word_of(h.mutex.lock_object()), word_of(h.spin.lock_object()), 0};
#ifdef HAVE_RWLOCK
  before[2] = word_of(h.rw.lock_object());
#endif
  h.mutex.lock();
  h.mutex.unlock();
  h.spin.lock();
  h.spin.unlock();
  bool tried = h.mutex.try_lock();
  if (tried) h.mutex.unlock();
#ifdef HAVE_RWLOCK
  h.rw.lock();
  h.rw.unlock();
#endif
  uintptr_t after[3] = {word_of(h.mutex.lock_object()), word_of(h.spin.lock_object()), 0};
#ifdef HAVE_RWLOCK
  after[2] = word_of(h.rw.lock_object());
#endif
  bool same = before[0] == after[0] && before[1] == after[1] && before[2] == after[2] && before[0] != 0 &&
              before[1] != 0;
  say("hook-locks-ok words-%s\n", same ? "unchanged" : "changed");
}

void panic_with_held_locks() {
  install();
  static HeldLocks held;
  g_held = &held;
  on_panic(Stage::PreDump, take_held_locks, nullptr);
  static std::atomic<int> ready{0};
  int owners = 0;
  std::thread([] {
    g_held->mutex.lock();
    ready.fetch_add(1);
    park();
  }).detach();
  ++owners;
  std::thread([] {
    g_held->spin.lock();
    ready.fetch_add(1);
    park();
  }).detach();
  ++owners;
#ifdef HAVE_RWLOCK
  std::thread([] {
    g_held->rw.lock();
    ready.fetch_add(1);
    park();
  }).detach();
  ++owners;
#endif
  while (ready.load() < owners) sched_yield();
  panic("locks are held");
}

TEST(Panic, HookTakesLocksHeldByStoppedThreads) {
  auto r = run_in_child(panic_with_held_locks);
  expect_sigabrt(r);
  EXPECT_NE(r.output.find("hook-locks-ok words-unchanged"), std::string::npos) << r.output;
}

// The pre-2011 world: nothing stops, nothing is bypassed, the hook blocks on
// the first lock until the test's deadline. This is what the test above guards.
TEST(Panic, WithoutStopTheSameHookHangs) {
  auto r = run_in_child(panic_with_held_locks, with_env({{"PANICSTOP_STOP_ON_PANIC", "0"}}, 2000));
  EXPECT_TRUE(r.hung) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("panic: locks are held"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("hook-locks-ok"), std::string::npos) << r.output;
}

void report_losers(void*) {
  say("nested=%u same-thread=%d stopped=%u\n", panic_state().nested_count.load(),
      int(panic_state().nested[0].same_thread), panic_state().stop.stopped);
}

TEST(Panic, SixtyFourThreadsPanicAtOnceGiveOnePanicPath) {
  auto r = run_in_child([] {
    install();
    on_panic(Stage::Final, report_losers, nullptr);
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int i = 0; i < 64; ++i)
      threads.emplace_back([&go, i] {
        while (!go.load()) sched_yield();
        panic("thread %d panics", i);
      });
    wait_for_threads(65);
    go.store(true);
    park();
  });
  expect_sigabrt(r);
  EXPECT_EQ(count_of(r.output, "panic: "), 1u) << r.output;
  // Each of the 63 others either lost the election (and parked, recorded as a
  // nested panic of another thread) or was stopped before it could panic.
  auto pos = r.output.find("nested=");
  ASSERT_NE(pos, std::string::npos) << r.output;
  unsigned nested = 0, stopped = 0;
  int same = 1;
  ASSERT_EQ(sscanf(r.output.c_str() + pos, "nested=%u same-thread=%d stopped=%u", &nested, &same, &stopped), 3);
  EXPECT_EQ(stopped, 64u) << r.output;  // 63 workers and main
  EXPECT_LE(nested, 63u) << r.output;
  EXPECT_EQ(same, 0) << r.output;
}

// A second thread that panics or faults while the panic path runs loses the
// election: it parks with its own message, signal and context kept. Without the
// stop (so the second thread is still running), a PreDump hook lets it go.
std::atomic<uint32_t> g_second_go{0};
void release_second_thread(void*) {
  g_second_go.store(1);
  sys::futex_wake(&g_second_go, 1);
  int64_t deadline = sys::monotonic_ns() + 5'000'000'000;
  const detail::NestedPanic& n = panic_state().nested[0];
  while (!n.ready.load() && sys::monotonic_ns() < deadline) sys::sched_yield();
  detail::ThreadSlot* slot = detail::find_slot_by_tid(n.tid);
  say("loser signo=%d same=%d msg=[%s] slot-msg=[%s] slot-signal=%d context=%d\n", n.signo, int(n.same_thread),
      n.message, slot ? slot->panic_message : "", slot ? slot->panic_signal : -1,
      slot ? int(slot->context.valid) : -1);
}

void second_thread_then_panic(bool fault) {
  install();
  on_panic(Stage::PreDump, release_second_thread, nullptr);
  std::thread([fault] {
    set_thread_name("second");
    while (g_second_go.load() == 0) sys::futex_wait(&g_second_go, 0);
    if (fault) *reinterpret_cast<volatile int*>(g_bad_address) = 1;
    panic("second thread panics too");
  }).detach();
  wait_for_threads(2);
  panic("first thread panics");
}

TEST(Panic, ASecondThreadThatPanicsParksWithItsMessage) {
  auto r = run_in_child([] { second_thread_then_panic(false); }, with_env({{"PANICSTOP_STOP_ON_PANIC", "0"}}));
  expect_sigabrt(r);
  EXPECT_EQ(count_of(r.output, "panic: "), 1u) << r.output;
  EXPECT_NE(r.output.find("loser signo=0 same=0 msg=[second thread panics too] slot-msg=[second thread panics "
                          "too] slot-signal=0 context=0"),
            std::string::npos)
      << r.output;
}

TEST(Panic, ASecondThreadThatFaultsParksWithItsSignalAndContext) {
  auto r = run_in_child([] { second_thread_then_panic(true); }, with_env({{"PANICSTOP_STOP_ON_PANIC", "0"}}));
  expect_sigabrt(r);  // the first panic's signal decides
  EXPECT_EQ(count_of(r.output, "panic: "), 1u) << r.output;
  EXPECT_NE(r.output.find("loser signo=11 same=0 msg=[fatal signal SIGSEGV (SEGV_MAPERR) at 0x8 in thread "),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("(second)] slot-msg=[fatal signal SIGSEGV"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("slot-signal=11 context=1"), std::string::npos) << r.output;
}

void faulting_hook(void*) { *reinterpret_cast<volatile int*>(g_bad_address) = 1; }
void panicking_hook(void*) { panic("panic inside a hook"); }
void hanging_hook(void*) { park(); }
void next_hook(void*) { say("next-hook-ran\n"); }
void final_hook(void*) {
  const auto& st = panic_state();
  uint32_t n = st.nested_count.load();
  say("final-ran nested=%u", n);
  for (uint32_t i = 0; i < n && i < detail::kMaxNestedPanics; ++i)
    say(" [%s signo=%d same=%d: %s]", detail::panic_step_name(detail::PanicStep(st.nested[i].step)),
        st.nested[i].signo, int(st.nested[i].same_thread), st.nested[i].message);
  say("\n");
}

TEST(Panic, FaultInsideAHookIsANestedPanicAndFinalHooksStillRun) {
  auto r = run_in_child([] {
    install();
    on_panic(Stage::PreDump, faulting_hook, nullptr);
    on_panic(Stage::PreDump, next_hook, nullptr);
    on_panic(Stage::PostDump, panicking_hook, nullptr);
    on_panic(Stage::Final, final_hook, nullptr);
    panic("first");
  });
  expect_sigabrt(r);  // the original panic's signal, not the hook's SIGSEGV
  EXPECT_NE(r.output.find("next-hook-ran"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("final-ran nested=2 [pre-dump hooks signo=11 same=1: fatal signal SIGSEGV"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("[post-dump hooks signo=0 same=1: panic inside a hook]"), std::string::npos) << r.output;
  EXPECT_EQ(count_of(r.output, "panic: "), 1u) << r.output;
}

TEST(Panic, AHookThatHangsIsCutByItsDeadline) {
  auto r = run_in_child([] {
    install();
    on_panic(Stage::PreDump, hanging_hook, nullptr);
    on_panic(Stage::Final, final_hook, nullptr);
    panic("slow hook");
  }, with_env({{"PANICSTOP_STEP_TIMEOUT_MS", "200"}}));
  expect_sigabrt(r);
  EXPECT_NE(r.output.find("final-ran nested=1 [pre-dump hooks signo=0 same=1: step pre-dump hooks overran"),
            std::string::npos)
      << r.output;
}

// A hook asleep where only a fatal signal reaches it, standing in for a write
// to a hung NFS or FUSE mount: the parent of a vfork() waits for its child's
// exec or exit in a killable sleep, so the watchdog's signal stays pending.
// The child reads a pipe nobody writes and dies with its parent
// (PR_SET_PDEATHSIG); it runs on a stack of its own and makes raw system
// calls only, as it shares the parent's memory.
alignas(64) char g_vfork_child_stack[16 * 1024];
int g_never_written = -1;
int read_forever(void*) {
  sys::raw_syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  char c;
  sys::raw_syscall(SYS_read, g_never_written, &c, 1);
  sys::raw_syscall(SYS_exit, 0);
  return 0;
}
void vfork_hook(void*) {
  say("vfork-hook-started\n");
  clone(read_forever, g_vfork_child_stack + sizeof g_vfork_child_stack, CLONE_VM | CLONE_VFORK | SIGCHLD, nullptr);
  say("vfork-hook-returned\n");
}

// Without the kill timer the panic waits here for good (the test's deadline
// reports it hung); with it the process ends by SIGKILL about a second after
// the hook's deadline, and nothing after the hook runs.
TEST(Panic, AStepNoSignalCanInterruptEndsTheProcessBySigkill) {
  auto r = run_in_child([] {
    int fds[2];
    if (pipe(fds) != 0) _exit(3);
    g_never_written = fds[0];  // fds[1] stays open: the read never ends
    install();
    on_panic(Stage::PostDump, vfork_hook, nullptr);
    on_panic(Stage::Final, final_hook, nullptr);
    panic("a hook stuck in the kernel");
  }, with_env({{"PANICSTOP_STEP_TIMEOUT_MS", "200"}, {"PANICSTOP_DUMP", "none"}}, 15000));
  EXPECT_FALSE(r.hung) << r.describe() << "\n" << r.output;
  EXPECT_TRUE(r.signaled && r.term_signal == SIGKILL) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("panic: a hook stuck in the kernel"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("vfork-hook-started"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("vfork-hook-returned"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("final-ran"), std::string::npos) << r.output;
}

// timer_create fails (EAGAIN) while the user's signal queue is full
// (RLIMIT_SIGPENDING), so the watchdog cannot be made at the panic. The kill
// timer, made at install, still ends a hook that hangs; without it the panic
// waited for good.
TEST(Panic, WithTheSignalQueueFullAHangingHookStillEndsTheProcess) {
  auto r = run_in_child([] {
    install();
    on_panic(Stage::PreDump, hanging_hook, nullptr);
    rlimit none{0, 0};
    if (setrlimit(RLIMIT_SIGPENDING, &none) != 0) _exit(3);
    panic("no room for a timer");
  }, with_env({{"PANICSTOP_STEP_TIMEOUT_MS", "200"}, {"PANICSTOP_STOP_TIMEOUT_MS", "100"}, {"PANICSTOP_DUMP", "none"}},
              15000));
  EXPECT_FALSE(r.hung) << r.describe() << "\n" << r.output;
  EXPECT_TRUE(r.signaled && r.term_signal == SIGKILL) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("panicstop: no step watchdog (timer_create: errno 11); a step that hangs ends the process "
                          "by SIGKILL"),
            std::string::npos)
      << r.output;
}

// The FP state is in a context the kernel made (a signal frame), never in
// one made in place.
bool has_fp_state(const detail::SavedContext& c) {
#if defined(__x86_64__)
  return c.fpstate_size != 0;
#elif defined(__aarch64__)
  uint32_t magic = 0;
  memcpy(&magic, c.ucontext.uc_mcontext.__reserved, sizeof magic);
  return magic == 0x46508001u;  // FPSIMD_MAGIC: the first record of the frame
#endif
}

void report_own_context(void*) {
  const detail::ThreadSlot* slot = panic_state().panicking_slot;
  say("own-context fp-state=%d\n", detail::is_slot_address(slot) && has_fp_state(slot->context) ? 1 : 0);
}

// panic() reads the panicking thread's registers by signalling itself, which
// the kernel refused (EAGAIN) with the signal queue full; a context made in
// place then kept only three registers and no FP state. A thread may still
// send itself an unqueued SI_USER signal, and the kernel's full context
// (FP state included) is back.
TEST(Panic, WithTheSignalQueueFullPanicStillTakesItsRegistersFromTheKernel) {
  auto r = run_in_child([] {
    install();
    on_panic(Stage::PreDump, report_own_context, nullptr);
    rlimit none{0, 0};
    if (setrlimit(RLIMIT_SIGPENDING, &none) != 0) _exit(3);
    panic("registers with the queue full");
  }, with_env({{"PANICSTOP_DUMP", "none"}, {"PANICSTOP_STOP_TIMEOUT_MS", "100"}}));
  expect_sigabrt(r);
  EXPECT_NE(r.output.find("own-context fp-state=1\n"), std::string::npos) << r.output;
}

// A fork()'s child inherits no timers: it makes its own kill timer, or a
// hanging step in a child (a prefork server's worker) waited for good.
TEST(Panic, AForkedChildHasItsOwnKillTimer) {
  auto r = run_in_child([] {
    install();
    on_panic(Stage::PreDump, hanging_hook, nullptr);
    int status = testing::run_in_fork_child([] {
      rlimit none{0, 0};
      if (setrlimit(RLIMIT_SIGPENDING, &none) != 0) _exit(3);
      panic("a child with no room for a timer");
    });
    say("child-status=%d\n", status);
    _exit(status == 128 + SIGKILL ? 0 : 1);
  }, with_env({{"PANICSTOP_STEP_TIMEOUT_MS", "200"}, {"PANICSTOP_STOP_TIMEOUT_MS", "100"}, {"PANICSTOP_DUMP", "none"}},
              15000));
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
}

void print_not_stopped(void*) {
  say("not-stopped=%u first=%d\n", panic_state().stop.not_stopped, (panic_state().stop.not_stopped_tids != nullptr ? panic_state().stop.not_stopped_tids[0] : 0));
}

TEST(Panic, AThreadBlockingEverySignalIsReportedNotStopped) {
  auto r = run_in_child([] {
    install();
    on_panic(Stage::PreDump, print_not_stopped, nullptr);
    std::atomic<int> tid{0};
    std::thread blocker([&] {
      sigset_t all;
      sigfillset(&all);
      testing::raw_sigmask(SIG_BLOCK, &all);  // past the interposer, as a raw system call would
      tid.store(sys::gettid());
      park();
    });
    while (tid.load() == 0) sched_yield();
    say("blocker=%d\n", tid.load());
    panic("one will not stop");
  }, with_env({{"PANICSTOP_STOP_TIMEOUT_MS", "200"}}));
  expect_sigabrt(r);
  auto pos = r.output.find("blocker=");
  ASSERT_NE(pos, std::string::npos) << r.output;
  std::string tid = r.output.substr(pos + 8, r.output.find('\n', pos) - pos - 8);
  EXPECT_NE(r.output.find("not-stopped=1 first=" + tid), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1 did not stop: " + tid), std::string::npos) << r.output;
}

TEST(Panic, ThreadsCreatedAndExitingDuringTheStop) {
  auto r = run_in_child([] {
    install();
    on_panic(Stage::PreDump, count_stopped_threads, nullptr);
    std::atomic<bool> go{true};
    std::vector<std::thread> spawners;
    for (int i = 0; i < 4; ++i)
      spawners.emplace_back([&] {
        while (go.load()) std::thread([] {}).join();
      });
    wait_for_threads(5);
    panic("churn");
  });
  expect_sigabrt(r);
  // Every thread /proc shows, except the panicking one, is stopped with a context.
  auto pos = r.output.find("tasks=");
  ASSERT_NE(pos, std::string::npos) << r.output;
  int tasks = 0, stopped = 0, valid = 0;
  ASSERT_EQ(sscanf(r.output.c_str() + pos, "tasks=%d stopped=%d valid=%d", &tasks, &stopped, &valid), 3);
  EXPECT_EQ(tasks, stopped + 1) << r.output;
  EXPECT_EQ(valid, stopped) << r.output;
}

int g_depth_limit = 1 << 30;
int overflow(int depth) {
  volatile char frame[1024];
  frame[0] = char(depth);
  if (depth > g_depth_limit) return frame[0];
  return overflow(depth + 1) + frame[0];
}

TEST(Panic, StackOverflowInAWorkerThatUsesTheLibrary) {
  auto r = run_in_child([] {
    install();
    std::thread([] {
      set_thread_name("deep");  // first use of the library: the thread gets its alternate stack
      say("%d\n", overflow(0));
    }).join();
  });
  EXPECT_FALSE(r.hung) << r.describe();
  EXPECT_TRUE(r.signaled && r.term_signal == SIGSEGV) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("panic: fatal signal SIGSEGV (SEGV_"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(deep)"), std::string::npos) << r.output;
}

TEST(Panic, StackOverflowInAThreadCreatedBeforeInstall) {
  auto r = run_in_child([] {
    std::atomic<uint32_t> go{0};
    std::thread early([&] {
      while (go.load() == 0) sys::futex_wait(&go, 0);
      say("%d\n", overflow(0));  // never touched the library: the altstack came from install()
    });
    install();
    go.store(1);
    sys::futex_wake(&go, 1);
    early.join();
  });
  EXPECT_FALSE(r.hung) << r.describe();
  EXPECT_TRUE(r.signaled && r.term_signal == SIGSEGV) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("panic: fatal signal SIGSEGV (SEGV_"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace panicstop
