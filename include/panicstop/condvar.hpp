// panicstop::CondVar — a condition variable (FreeBSD's condvar(9)) for every
// panicstop lock.
//
// wait() takes the lock the caller holds: a Mutex, SpinMutex, RwLock or SxLock
// held exclusively, or any std::unique_lock / std::shared_lock of one (a
// std::shared_lock waits with the shared hold released and retaken). It
// releases the lock, sleeps, and takes the lock again before returning, like
// std::condition_variable_any. Spurious wake-ups are possible: wait in a loop
// on the condition, or use the predicate overloads.
//
// No lost wake-ups: the condvar's word (lo_.word, whose low 32 bits are the
// futex) is a sequence number bumped by every notify. A waiter reads it before
// releasing the lock and sleeps only while it is unchanged, so a notify issued
// after the waiter released the lock always either changes the number it
// compares or wakes it. Notifying costs one atomic add and, only when someone
// waits, one futex wake. Notify with the lock held or after changing the
// condition under it, as with any condition variable.
//
// While a thread waits, its slot records the condvar (WaitMode::kCondVar), so
// a dump says which condvar it sleeps on. The condvar's LockObject has kind
// kCondVar and its word is the sequence, never an owner.
//
// After a panic (scheduler_stopped() on the calling thread) every wait returns
// at once without releasing the lock: wait_for / wait_until report
// std::cv_status::no_timeout, and the predicate overloads evaluate the
// predicate once and return its value instead of looping (a loop could spin
// for ever, as no other thread runs).
#pragma once

#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstdint>

#include "panicstop/deadline.hpp"
#include "panicstop/lock_object.hpp"
#include "panicstop/thread.hpp"
#include "panicstop/thread_annotations.hpp"

namespace panicstop {

namespace detail {
// A panicstop lock itself (as opposed to a std::unique_lock wrapping one).
template <class L>
concept PanicstopLock = requires(L& l) {
  { l.lock_object() } -> std::same_as<const LockObject&>;
  l.lock();
  l.unlock();
};
}  // namespace detail

class PANICSTOP_EXPORT CondVar {
 public:
  // `name` must outlive the condvar (normally a string literal). It is
  // optional, as with std::condition_variable: a lock needs its name for its
  // WITNESS class, a condvar has no class, and a dump tells unnamed condvars
  // apart by address. Without one the name is "condvar".
  constexpr CondVar() noexcept : CondVar("condvar") {}
  explicit constexpr CondVar(const char* name) noexcept : lo_(name, detail::LockKind::kCondVar, kNoWitness) {}
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Releases `lock`, sleeps until notified (or spuriously woken), retakes it.
  template <detail::PanicstopLock L>
  void wait(L& lock) noexcept PANICSTOP_REQUIRES(lock) PANICSTOP_NO_THREAD_SAFETY_ANALYSIS {
    wait_until_ns(lock, detail::kNoDeadline);
  }
  template <class Lock>
    requires(!detail::PanicstopLock<Lock>)
  void wait(Lock& lock) noexcept {
    wait_until_ns(lock, detail::kNoDeadline);
  }
  // Waits until pred() is true; pred is evaluated with the lock held.
  template <class Lock, class Pred>
  void wait(Lock& lock, Pred pred) PANICSTOP_NO_THREAD_SAFETY_ANALYSIS {
    if (__builtin_expect(scheduler_stopped(), 0)) {
      (void)pred();
      return;
    }
    while (!pred()) wait_until_ns(lock, detail::kNoDeadline);
  }

  // Like wait(), but returns std::cv_status::timeout once the deadline passed
  // without a notify (the lock is retaken either way).
  template <class Lock, class Clock, class Duration>
  std::cv_status wait_until(Lock& lock, const std::chrono::time_point<Clock, Duration>& deadline)
      PANICSTOP_NO_THREAD_SAFETY_ANALYSIS {
    return wait_until_ns(lock, detail::deadline_at(deadline));
  }
  template <class Lock, class Rep, class Period>
  std::cv_status wait_for(Lock& lock, const std::chrono::duration<Rep, Period>& timeout)
      PANICSTOP_NO_THREAD_SAFETY_ANALYSIS {
    return wait_until_ns(lock, detail::deadline_after(timeout));
  }
  // Wait until pred() is true or the deadline passes; return pred()'s last value.
  template <class Lock, class Clock, class Duration, class Pred>
  bool wait_until(Lock& lock, const std::chrono::time_point<Clock, Duration>& deadline, Pred pred)
      PANICSTOP_NO_THREAD_SAFETY_ANALYSIS {
    return wait_pred_until_ns(lock, detail::deadline_at(deadline), pred);
  }
  template <class Lock, class Rep, class Period, class Pred>
  bool wait_for(Lock& lock, const std::chrono::duration<Rep, Period>& timeout, Pred pred)
      PANICSTOP_NO_THREAD_SAFETY_ANALYSIS {
    return wait_pred_until_ns(lock, detail::deadline_after(timeout), pred);
  }

  // Wakes one waiter (if any).
  void notify_one() noexcept {
    lo_.word.fetch_add(1, std::memory_order_seq_cst);
    if (waiters_.load(std::memory_order_seq_cst) != 0) wake(1);
  }
  // Wakes every waiter.
  void notify_all() noexcept {
    lo_.word.fetch_add(1, std::memory_order_seq_cst);
    if (waiters_.load(std::memory_order_seq_cst) != 0) wake(-1);
  }

  const char* name() const noexcept { return lo_.name; }
  const detail::LockObject& lock_object() const noexcept { return lo_; }

 private:
  // The one waiting sequence behind every overload. deadline_ns is absolute
  // CLOCK_MONOTONIC or kNoDeadline.
  template <class Lock>
  std::cv_status wait_until_ns(Lock& lock, int64_t deadline_ns) PANICSTOP_NO_THREAD_SAFETY_ANALYSIS {
    if (__builtin_expect(scheduler_stopped(), 0)) return std::cv_status::no_timeout;
    uint32_t seq = begin_wait();
    lock.unlock();
    bool timed_out = sleep(seq, deadline_ns);
    lock.lock();
    return timed_out ? std::cv_status::timeout : std::cv_status::no_timeout;
  }
  template <class Lock, class Pred>
  bool wait_pred_until_ns(Lock& lock, int64_t deadline_ns, Pred& pred) PANICSTOP_NO_THREAD_SAFETY_ANALYSIS {
    if (__builtin_expect(scheduler_stopped(), 0)) return pred();
    while (!pred())
      if (wait_until_ns(lock, deadline_ns) == std::cv_status::timeout) return pred();
    return true;
  }

  // Counts the caller as a waiter and returns the sequence it must sleep on.
  uint32_t begin_wait() noexcept {
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    return uint32_t(lo_.word.load(std::memory_order_seq_cst));
  }
  // Sleeps while the sequence is `seq` (recording the wait for dumps), then
  // stops counting the caller as a waiter. True if the deadline passed.
  bool sleep(uint32_t seq, int64_t deadline_ns) noexcept;
  void wake(int count) noexcept;  // count < 0: all

  detail::LockObject lo_;
  std::atomic<uint32_t> waiters_{0};
};

}  // namespace panicstop
