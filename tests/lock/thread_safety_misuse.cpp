// Must NOT compile under clang++ -Wthread-safety -Werror: every function below
// breaks a lock's annotated contract. thread_safety_test.cpp checks that clang
// rejects it for these reasons (and that thread_safety_clean.cpp passes).
#include "panicstop/mutex.hpp"
#include "panicstop/rwlock.hpp"
#include "panicstop/sx_lock.hpp"

namespace {

struct Account {
  panicstop::Mutex mu{"account"};
  panicstop::RwLock rw{"ledger"};
  panicstop::SxLock sx{"history"};
  long balance PANICSTOP_GUARDED_BY(mu) = 0;
  long entries PANICSTOP_GUARDED_BY(rw) = 0;
  long versions PANICSTOP_GUARDED_BY(sx) = 0;
};

// expect: writing variable 'balance' requires holding mutex 'a.mu' exclusively
void write_without_the_lock(Account& a) { a.balance = 1; }

// expect: writing variable 'entries' requires holding rwlock 'a.rw' exclusively
void write_under_a_shared_hold(Account& a) {
  a.rw.lock_shared();
  a.entries = 2;
  a.rw.unlock_shared();
}

// expect: reading variable 'versions' requires holding sx lock 'a.sx'
long read_without_the_lock(Account& a) { return a.versions; }

// expect: mutex 'a.sx' is still held at the end of function
void forget_to_unlock(Account& a) { a.sx.lock(); }

}  // namespace

int main() {
  Account a;
  write_without_the_lock(a);
  write_under_a_shared_hold(a);
  forget_to_unlock(a);
  return int(read_without_the_lock(a));
}
