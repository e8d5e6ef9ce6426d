// Must compile cleanly under clang++ -Wthread-safety -Werror: correct uses of
// every lock's annotations (the counterpart of thread_safety_misuse.cpp).
#include <chrono>

#include "panicstop/condvar.hpp"
#include "panicstop/mutex.hpp"
#include "panicstop/rwlock.hpp"
#include "panicstop/spin_mutex.hpp"
#include "panicstop/sx_lock.hpp"

namespace {

struct Account {
  panicstop::Mutex mu{"account"};
  panicstop::SpinMutex spin{"fast"};
  panicstop::RwLock rw{"ledger"};
  panicstop::SxLock sx{"history"};
  panicstop::CondVar changed{"changed"};
  long balance PANICSTOP_GUARDED_BY(mu) = 0;
  long hits PANICSTOP_GUARDED_BY(spin) = 0;
  long entries PANICSTOP_GUARDED_BY(rw) = 0;
  long versions PANICSTOP_GUARDED_BY(sx) = 0;

  void deposit(long v) PANICSTOP_REQUIRES(mu) { balance += v; }
  long read_entries() PANICSTOP_REQUIRES_SHARED(rw) { return entries; }
  // try_upgrade has no annotation (see rwlock.hpp): the upgrading code opts out.
  void bump_if_sole_reader(long seen) PANICSTOP_REQUIRES_SHARED(rw) PANICSTOP_NO_THREAD_SAFETY_ANALYSIS {
    if (rw.try_upgrade()) {
      entries = seen + 1;
      rw.downgrade();
    }
  }
};

void use_everything(Account& a) {
  a.mu.lock();
  a.deposit(1);
  while (a.balance == 0) a.changed.wait(a.mu);
  a.changed.notify_all();
  a.mu.unlock();

  if (a.mu.try_lock()) {
    a.balance = 2;
    a.mu.unlock();
  }

  a.spin.lock();
  ++a.hits;
  a.spin.unlock();

  a.rw.lock_shared();
  long seen = a.read_entries();
  a.bump_if_sole_reader(seen);
  a.rw.unlock_shared();

  a.rw.lock();
  a.entries = 0;
  a.rw.downgrade();
  seen = a.entries;
  a.rw.unlock_shared();

  if (a.sx.try_lock_for(std::chrono::milliseconds(1))) {
    a.versions = seen;
    a.sx.unlock();
  }
  if (a.sx.try_lock_shared_until(std::chrono::steady_clock::now())) {
    seen = a.versions;
    a.sx.unlock_shared();
  }
  a.sx.assert_held();
  a.versions = 3;
}

}  // namespace

int main() {
  Account a;
  use_everything(a);
}
