// The ABI a program gets from libpanicstop.so: every public header, every
// inline path of every lock kind, and every public function, linked against
// the shared library. A symbol the inline code needs that the library does not
// export (include/panicstop/export.hpp) fails the link; check-package.sh builds
// this once with the installed headers and once with WITNESS built into them,
// where the fast paths call the WITNESS hooks too.
//
// No call here may block for long or end the process: contention is made with a
// second thread and a lock it cannot get, timed waits use a millisecond, and the
// functions that would panic or stop threads are only referenced, not called.
#include <panicstop/condvar.hpp>
#include <panicstop/deadline.hpp>
#include <panicstop/export.hpp>
#include <panicstop/kdb.hpp>
#include <panicstop/lock_guard.hpp>
#include <panicstop/lock_object.hpp>
#include <panicstop/lockprof.hpp>
#include <panicstop/mutex.hpp>
#include <panicstop/panic.hpp>
#include <panicstop/panicstop.hpp>
#include <panicstop/rwlock.hpp>
#include <panicstop/spin_mutex.hpp>
#include <panicstop/sx_lock.hpp>
#include <panicstop/thread.hpp>
#include <panicstop/thread_annotations.hpp>
#include <panicstop/version.hpp>
#include <panicstop/witness.hpp>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <shared_mutex>
#include <thread>

namespace {

using namespace std::chrono_literals;

int failures = 0;

void expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "abi: %s\n", what);
    ++failures;
  }
}

panicstop::Mutex mu{"abi.mutex"};
panicstop::Mutex rec{"abi.recursive", panicstop::kRecursive};
panicstop::SpinMutex spin{"abi.spin"};
panicstop::SpinMutex spin_blocking{"abi.spin_blocking", panicstop::kBlockSignals};
panicstop::RwLock rw{"abi.rw"};
panicstop::SxLock sx{"abi.sx"};
panicstop::CondVar cv;
panicstop::CondVar named_cv{"abi.cv"};
int guarded PANICSTOP_GUARDED_BY(mu) = 0;

// Taken while another thread holds every lock: the hard paths of try-lock and
// of timed locking, which must give up.
void contend() PANICSTOP_NO_THREAD_SAFETY_ANALYSIS {
  expect(!mu.try_lock(), "Mutex::try_lock got a held lock");
  expect(!mu.try_lock_for(1ms), "Mutex::try_lock_for got a held lock");
  expect(!mu.try_lock_until(std::chrono::steady_clock::now() + 1ms), "Mutex::try_lock_until got a held lock");
  expect(!rw.try_lock(), "RwLock::try_lock got a held lock");
  expect(!rw.try_lock_shared(), "RwLock::try_lock_shared got a write-held lock");
  expect(!sx.try_lock_for(1ms), "SxLock::try_lock_for got a held lock");
  expect(!sx.try_lock_shared_for(1ms), "SxLock::try_lock_shared_for got a write-held lock");
  expect(!sx.try_lock_shared_until(std::chrono::system_clock::now() + 1ms), "SxLock::try_lock_shared_until");
}

void exclusive_paths() PANICSTOP_NO_THREAD_SAFETY_ANALYSIS {
  mu.lock();
  mu.assert_held();
  ++guarded;
  expect(mu.owned(), "Mutex::owned");
  mu.unlock();
  mu.assert_not_held();
  if (mu.try_lock()) mu.unlock();
  if (mu.try_lock_for(1ms)) mu.unlock();
  if (mu.try_lock_until(std::chrono::system_clock::now() + 1ms)) mu.unlock();

  rec.lock();
  rec.lock();  // the recursion is the hard path on lock and on unlock
  rec.unlock();
  rec.unlock();

  spin.lock();
  spin.assert_held();
  spin.unlock();
  spin.assert_not_held();
  if (spin.try_lock()) spin.unlock();
  spin_blocking.lock();
  spin_blocking.unlock();

  rw.lock();
  rw.assert_held();
  rw.downgrade();
  rw.assert_held_shared();
  expect(rw.try_upgrade(), "RwLock::try_upgrade of the only reader");
  rw.unlock();
  rw.lock_shared();
  rw.lock_shared();
  rw.unlock_shared();
  rw.unlock_shared();
  if (rw.try_lock()) rw.unlock();
  if (rw.try_lock_shared()) rw.unlock_shared();
  rw.assert_not_held();

  sx.lock();
  sx.unlock();
  if (sx.try_lock_until(std::chrono::steady_clock::now() + 1ms)) sx.unlock();
  if (sx.try_lock_shared_until(std::chrono::steady_clock::now() + 1ms)) sx.unlock_shared();
  if (sx.try_lock_shared_for(1ms)) sx.unlock_shared();

  // Held by this thread, tried by another.
  // (No SpinMutex among them: its holder may not block, and join blocks.)
  mu.lock();
  rw.lock();
  sx.lock();
  std::thread(contend).join();
  sx.unlock();
  rw.unlock();
  mu.unlock();
}

void guards_and_condvars() {
  {
    panicstop::MutexLock<panicstop::Mutex> hold(mu);
    ++guarded;
    expect(cv.wait_for(mu, 1ms) == std::cv_status::timeout, "CondVar::wait_for on a Mutex");
    expect(!cv.wait_for(mu, 1ms, [] { return false; }), "CondVar::wait_for with a predicate");
    expect(named_cv.wait_until(mu, std::chrono::steady_clock::now() + 1ms, [] { return true; }),
           "CondVar::wait_until with a true predicate");
  }
  {
    panicstop::ReaderLock<panicstop::RwLock> hold(rw);
  }
  {
    panicstop::MutexLock<panicstop::SpinMutex> hold(spin);
    cv.notify_one();
    cv.notify_all();
  }
  {
    PANICSTOP_SCOPED_LOCK(sx);
  }
  {
    PANICSTOP_SCOPED_SHARED_LOCK(sx);
  }
  PANICSTOP_LOCK(mu);
  mu.unlock();
  PANICSTOP_LOCK_SHARED(rw);
  rw.unlock_shared();
  {
    std::unique_lock<panicstop::Mutex> hold(mu);
    expect(cv.wait_until(hold, std::chrono::steady_clock::now() + 1ms) == std::cv_status::timeout,
           "CondVar::wait_until on a std::unique_lock");
  }
  {
    std::shared_lock<panicstop::RwLock> hold(rw);
  }
  {
    std::scoped_lock hold(mu, sx);
  }
}

void on_stage(void*) {}

void everything_else() {
  PANICSTOP_ASSERT(failures >= 0);
  PANICSTOP_ASSERT(failures >= 0, "failures=%d", failures);
  expect(!panicstop::panicking(), "panicking() outside a panic");
  expect(!panicstop::scheduler_stopped(), "scheduler_stopped() outside a panic");
  (void)panicstop::panic_message();
  (void)panicstop::on_panic(panicstop::Stage::PostDump, on_stage, nullptr);
  panicstop::set_thread_name("abi-main");
  expect(panicstop::current_tid() > 0, "current_tid");
  expect(!panicstop::kdb_active(), "kdb_active outside kdb");
  panicstop::lockprof_enable(true);
  expect(panicstop::lockprof_enabled(), "lockprof_enabled");
  panicstop::LockProfileRow rows[4];
  (void)panicstop::lockprof_report(rows, 4);
  (void)panicstop::lockprof_dropped();
  panicstop::lockprof_reset();
  panicstop::lockprof_enable(false);
  (void)panicstop::witness_mode();
  (void)panicstop::witness_action();
  (void)panicstop::witness_report_count();
  expect(panicstop::version_string()[0] != '\0', "version_string");

  // Linked, not called: they install handlers, stop threads, write dumps or
  // end the process.
  void (*volatile panic_fn)(const char*, ...) = panicstop::panic;
  void (*volatile vpanic_fn)(const char*, va_list) = panicstop::vpanic;
  bool (*volatile install_fn)() noexcept = panicstop::install;
  panicstop::KdbResult (*volatile kdb_fn)(const char*) noexcept = panicstop::kdb_enter;
  int (*volatile live_dump_fn)(const char*) noexcept = panicstop::live_dump;
  bool (*volatile lockprof_write_fn)(int) noexcept = panicstop::lockprof_write_report;
  bool (*volatile lockprof_signal_fn)(int, int) noexcept = panicstop::lockprof_report_on_signal;
  void (*volatile witness_write_fn)(int) noexcept = panicstop::witness_write_held_locks;
  void (*volatile witness_mode_fn)(panicstop::WitnessMode) noexcept = panicstop::witness_set_mode;
  void (*volatile witness_action_fn)(panicstop::WitnessAction) noexcept = panicstop::witness_set_action;
  expect(panic_fn && vpanic_fn && install_fn && kdb_fn && live_dump_fn && lockprof_write_fn && lockprof_signal_fn &&
             witness_write_fn && witness_mode_fn && witness_action_fn,
         "a public function resolved to null");
}

}  // namespace

int main() {
  exclusive_paths();
  guards_and_condvars();
  everything_else();
  if (failures != 0) return 1;
  std::printf("abi: every lock kind's inline paths ran against the library (witness in headers: %d)\n",
              int(panicstop::kWitnessBuiltIn));
  return 0;
}
