// panicstop::MutexLock and panicstop::ReaderLock — scoped holds of a panicstop
// lock, annotated for clang's -Wthread-safety (abseil's MutexLock/ReaderMutexLock
// model).
//
// Why not std::lock_guard: libstdc++'s guards carry no thread-safety
// annotations, so clang cannot see that a std::lock_guard<panicstop::Mutex>
// holds the mutex and warns on every access to a PANICSTOP_GUARDED_BY member.
// These guards say what they hold, and the analysis follows them. The std
// guards keep working with every panicstop lock; they are just invisible to it.
//
//   panicstop::Mutex mu{"accounts"};
//   int balance PANICSTOP_GUARDED_BY(mu);
//   void deposit(int n) {
//     panicstop::MutexLock hold(mu);      // exclusive, until the end of scope
//     balance += n;
//   }
//   panicstop::RwLock table_lock{"table"};
//   int lookup(int k) {
//     panicstop::ReaderLock hold(table_lock);   // shared
//     ...
//   }
//
// Guarantees:
//   - MutexLock takes any panicstop lock exclusively (Mutex, SpinMutex, RwLock,
//     SxLock) in its constructor and releases it in its destructor; ReaderLock
//     does the same with a shared hold of an RwLock or SxLock.
//   - The construction's file:line is the acquisition site WITNESS reports
//     (taken with __builtin_FILE/__builtin_LINE as a default argument, so it
//     costs nothing when WITNESS is not built in).
//   - After a panic they behave as the lock does: lock never blocks the
//     panicking thread and never writes the word of a lock someone else owns.
//   - Neither copies nor moves: a hold lives exactly as long as its scope.
//
// PANICSTOP_SCOPED_LOCK(m) / PANICSTOP_SCOPED_SHARED_LOCK(m) declare an unnamed
// guard of these kinds, for code that has no use for the guard's name.
#pragma once

#include <type_traits>

#include "panicstop/thread_annotations.hpp"
#include "panicstop/witness.hpp"

namespace panicstop {

template <class Lock>
class PANICSTOP_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Lock& lock, LockSite site = LockSite{__builtin_FILE(), __builtin_LINE()}) noexcept
      PANICSTOP_ACQUIRE(lock)
      : lock_(lock) {
    lock_at(lock_, site);
  }
  ~MutexLock() PANICSTOP_RELEASE() { lock_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Lock& lock_;
};

template <class Lock>
class PANICSTOP_SCOPED_CAPABILITY ReaderLock {
 public:
  explicit ReaderLock(Lock& lock, LockSite site = LockSite{__builtin_FILE(), __builtin_LINE()}) noexcept
      PANICSTOP_ACQUIRE_SHARED(lock)
      : lock_(lock) {
    lock_shared_at(lock_, site);
  }
  ~ReaderLock() PANICSTOP_RELEASE() { lock_.unlock_shared(); }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;

 private:
  Lock& lock_;
};

// The names these guards had before they were public (witness.hpp, 0.1).
template <class Lock>
using ScopedLock = MutexLock<Lock>;
template <class Lock>
using ScopedSharedLock = ReaderLock<Lock>;

}  // namespace panicstop

#define PANICSTOP_GUARD_CAT2(a, b) a##b
#define PANICSTOP_GUARD_CAT(a, b) PANICSTOP_GUARD_CAT2(a, b)
// Holds m (exclusive / shared) until the end of the enclosing scope, recorded
// at this file:line: PANICSTOP_SCOPED_LOCK(cache_mutex);
#define PANICSTOP_SCOPED_LOCK(m)                                                                        \
  ::panicstop::MutexLock<std::remove_reference_t<decltype(m)>> PANICSTOP_GUARD_CAT(panicstop_scoped_lock_, \
                                                                                   __COUNTER__)((m), PANICSTOP_LOCK_SITE)
#define PANICSTOP_SCOPED_SHARED_LOCK(m)                                              \
  ::panicstop::ReaderLock<std::remove_reference_t<decltype(m)>> PANICSTOP_GUARD_CAT( \
      panicstop_scoped_shared_lock_, __COUNTER__)((m), PANICSTOP_LOCK_SITE)
