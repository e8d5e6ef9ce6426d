// WITNESS: lock-order verification for panicstop locks (FreeBSD's witness(4)).
//
// Built in only when the library is configured with -DPANICSTOP_WITNESS=ON (the
// default for CMAKE_BUILD_TYPE=Debug); panicstop/config.hpp then defines
// PANICSTOP_WITNESS_BUILT_IN 1 and every lock fast path calls out to the checker.
// Otherwise the fast paths stay one compare-and-swap, nothing below costs
// anything, and the functions here are harmless no-ops.
//
// Classes. Locks are grouped into classes by name and kind, as WITNESS does: all
// Mutexes named "cache" are one class. A lock made with kOwnClass is a class of
// its own. Holding two locks of one class at once is reported unless the lock
// being taken has kDupOk. kNoWitness locks are not checked at all.
//
// What is reported (each at most once per class pair or class, so a loop does
// not flood stderr; the checker keeps running after every report):
//   - lock-order reversal: a lock taken while holding a lock that the order
//     graph already places after it, through any number of classes (a cycle);
//     printed as "lock order reversal: 1st A @ site, 2nd B @ site; established
//     order B -> ... -> A at site", then the stack of this acquisition and the
//     stack seen when the established order was first recorded;
//   - recursion on a non-recursive lock; two locks of one class (no kDupOk);
//   - unlocking a lock the thread does not hold (also a shared unlock);
//   - shared/exclusive mismatch (shared lock of a lock held exclusively, a
//     shared unlock of an exclusive hold, and the reverse);
//   - blocking (a Mutex hard path about to sleep, an SxLock or CondVar wait)
//     while holding a SpinMutex;
//   - destroying a lock the calling thread holds.
// An order edge is recorded only while both locks are held at once: "lock A,
// unlock A, lock B, lock A" records B -> A and nothing else. Try-locks never
// add edges (they cannot deadlock) but the lock they take is held from then on.
// Shared holds take part in the order like exclusive ones; two threads holding
// one RwLock shared at once is no conflict, and a thread may repeat a shared
// hold of an RwLock or SxLock.
//
// Sites. A lock taken through PANICSTOP_LOCK(m), PANICSTOP_LOCK_SHARED(m) or
// PANICSTOP_SCOPED_LOCK(m) / PANICSTOP_SCOPED_SHARED_LOCK(m) is reported with
// the macro's file:line. Any other lock() (std::lock_guard, std::unique_lock,
// std::scoped_lock, a direct call) is reported with the return address of the
// out-of-line check, which is in the function where lock() was inlined: exact in
// optimized builds, inside std::lock_guard's constructor at -O0 (use the macros
// there). Addresses print as "0xADDR (module+0xOFFSET)" for addr2line.
//
// Run time, when built in (read from the environment when the library loads,
// and settable below):
//   PANICSTOP_WITNESS         1 (default): every check; 0: held locks are
//                             tracked and misuse is reported, but no order
//                             graph; -1: off (fast paths make no call)
//   PANICSTOP_WITNESS_ACTION  warn (default): print the report on stderr and go
//                             on; panic: print it, then panicstop::panic()
//
// After a panic: every check (order, misuse, blocking) and every new order edge
// stop for every thread as soon as panicking() is true — keyed on the panic, as
// FreeBSD keys witness on KERNEL_PANICKED(), not on scheduler_stopped().
// Reasons: (1) panicking() is set at the election, before the scheduler is
// stopped, and also when PANICSTOP_STOP_ON_PANIC=0 (where scheduler_stopped()
// never becomes true), so the whole panic path is covered; (2) a report from the
// panicking thread would be about faked acquisitions, and one from a thread that
// failed to stop would interleave with the panic output or, with action=panic,
// start a nested panic. The held-list bookkeeping stops on the panicking thread
// once scheduler_stopped() is true (its acquisitions are faked from then on, so
// its list keeps what it really held when the panic stopped the scheduler);
// that test is one inline TLS read, so the per-lock path makes no extra call.
//
// Held locks. Each thread's held locks are kept in its thread slot
// (ThreadSlot::held, src/thread/slot.hpp), at most 32 deep, with the site of
// each acquisition; dumps list them per thread.
//
// Cost (bench/witness_bench.cpp, docs/BENCHMARKS.md): two out-of-line calls per
// lock/unlock pair; once the order from the newest held lock is known, the
// order check is one bit test, and a lock and a graph update happen only the
// first time a pair is seen. The steady state also relies on this: a lock the
// calling thread holds never has a zero lock word.
#pragma once

#include <cstdint>
#include <type_traits>

#include "panicstop/config.hpp"
#include "panicstop/lock_object.hpp"
#include "panicstop/thread_annotations.hpp"

namespace panicstop {

inline constexpr bool kWitnessBuiltIn = PANICSTOP_WITNESS_BUILT_IN != 0;

enum class WitnessMode : int { kOff = -1, kNoOrderChecks = 0, kOn = 1 };
enum class WitnessAction : int { kWarn = 0, kPanic = 1 };

// Sets what the checker does from now on. Switching from kOff to another mode
// while locks are held makes their later unlocks look like "unlock of a lock not
// held": switch before taking locks (e.g. first thing in main). No effect when
// witness is not built in.
PANICSTOP_EXPORT void witness_set_mode(WitnessMode mode) noexcept;
PANICSTOP_EXPORT WitnessMode witness_mode() noexcept;  // kOff when not built in
PANICSTOP_EXPORT void witness_set_action(WitnessAction action) noexcept;
PANICSTOP_EXPORT WitnessAction witness_action() noexcept;

// Number of reports printed so far (every kind), for tests and monitoring.
PANICSTOP_EXPORT uint64_t witness_report_count() noexcept;

// Writes the locks the calling thread holds, one per line with its site, to fd
// (FreeBSD's "show locks"). Async-signal-safe; writes nothing when witness is
// not built in or off.
PANICSTOP_EXPORT void witness_write_held_locks(int fd) noexcept;

// An acquisition site for the macros below.
struct LockSite {
  const char* file;
  int line;
};

namespace detail {

// Flags of the hooks below.
inline constexpr unsigned kWitnessShared = 1u << 0;

#if PANICSTOP_WITNESS_BUILT_IN
// The mode, read inline so that kOff costs the fast paths one load and branch.
PANICSTOP_EXPORT extern int g_witness_mode;
inline bool witness_active() noexcept { return __atomic_load_n(&g_witness_mode, __ATOMIC_RELAXED) >= 0; }
// Site handed from a PANICSTOP_ lock macro to the next hook on this thread.
PANICSTOP_EXPORT extern __thread const char* tls_witness_site_file __attribute__((tls_model("initial-exec")));
PANICSTOP_EXPORT extern __thread int tls_witness_site_line __attribute__((tls_model("initial-exec")));
inline void witness_note_site(LockSite site) noexcept {
  tls_witness_site_file = site.file;
  tls_witness_site_line = site.line;
}
inline void witness_clear_site() noexcept { tls_witness_site_file = nullptr; }
#else
inline bool witness_active() noexcept { return false; }
inline void witness_note_site(LockSite) noexcept {}
inline void witness_clear_site() noexcept {}
#endif

// Hooks called by the locks (only when built in and witness_active()). Each
// takes the site from a pending macro site or its own return address.
// Before a blocking acquisition: order, recursion and mismatch checks, then the
// lock becomes the newest held entry.
PANICSTOP_EXPORT void witness_lock(const LockObject* lo, unsigned flags) noexcept;
// After a successful try-lock (no order check, no edge). The _from form is for
// out-of-line try-locks, which pass their own return address as the site.
PANICSTOP_EXPORT void witness_trylock(const LockObject* lo, unsigned flags) noexcept;
void witness_trylock_from(const LockObject* lo, unsigned flags, const void* return_address) noexcept;
// Undoes witness_lock when a timed acquisition gave up.
PANICSTOP_EXPORT void witness_lock_failed(const LockObject* lo) noexcept;
// Before a release: the lock must be held in the mode given.
PANICSTOP_EXPORT void witness_unlock(const LockObject* lo, unsigned flags) noexcept;
// After try_upgrade succeeded / before downgrade: the held entry changes mode.
PANICSTOP_EXPORT void witness_upgrade(const LockObject* lo) noexcept;
PANICSTOP_EXPORT void witness_downgrade(const LockObject* lo) noexcept;
// Before the calling thread blocks on `on` (what: "sleep on mutex", "wait on
// condvar", ...): reports if it holds a SpinMutex.
void witness_sleep(const LockObject* on, const char* what) noexcept;
// From a lock's destructor: reports if the calling thread holds it.
void witness_destroy(const LockObject* lo) noexcept;

}  // namespace detail

// Calls a hook above from a lock's code when witness is built in and on;
// nothing at all when it is not built in. Usage: PANICSTOP_WITNESS_HOOK(witness_unlock(&lo_, 0)).
#if PANICSTOP_WITNESS_BUILT_IN
#define PANICSTOP_WITNESS_HOOK(call)                                      \
  do {                                                                    \
    if (::panicstop::detail::witness_active()) ::panicstop::detail::call; \
  } while (0)
#else
#define PANICSTOP_WITNESS_HOOK(call) \
  do {                               \
  } while (0)
#endif

// Put on a lock's inline fast-path functions: with witness built in they must
// be inlined into their caller so that the hook's return address is the
// caller's code (compilers otherwise keep a bigger lock() out of line).
#if PANICSTOP_WITNESS_BUILT_IN
#define PANICSTOP_WITNESS_INLINE __attribute__((always_inline))
#else
#define PANICSTOP_WITNESS_INLINE
#endif

// Lock with a file:line site (any lock with lock()/lock_shared()).
template <class Lock>
inline void lock_at(Lock& lock, LockSite site) noexcept PANICSTOP_ACQUIRE(lock) {
  detail::witness_note_site(site);
  lock.lock();
  detail::witness_clear_site();
}
template <class Lock>
inline void lock_shared_at(Lock& lock, LockSite site) noexcept PANICSTOP_ACQUIRE_SHARED(lock) {
  detail::witness_note_site(site);
  lock.lock_shared();
  detail::witness_clear_site();
}

}  // namespace panicstop

#define PANICSTOP_LOCK_SITE (::panicstop::LockSite{__FILE__, __LINE__})
// m.lock() / m.lock_shared() recorded at this file:line.
#define PANICSTOP_LOCK(m) ::panicstop::lock_at((m), PANICSTOP_LOCK_SITE)
#define PANICSTOP_LOCK_SHARED(m) ::panicstop::lock_shared_at((m), PANICSTOP_LOCK_SITE)
// Scoped holds with a site: PANICSTOP_SCOPED_LOCK and MutexLock, in lock_guard.hpp.
