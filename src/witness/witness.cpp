// WITNESS hooks: the per-thread held list, the checks run on every lock and
// unlock when witness is built in, and the reports. Order follows FreeBSD's
// subr_witness.c: the order check runs before a blocking acquisition (so a
// real deadlock is reported before the thread blocks), the lock becomes held
// right away, and an edge is recorded from every lock held at that moment.
#include "panicstop/witness.hpp"

#include <cstddef>

#include "lockclass/hold_hooks.hpp"
#include "panicstop/lockprof.hpp"
#include "panicstop/panic.hpp"
#include "panicstop/thread.hpp"
#include "sys/syscall.hpp"
#include "thread/slot.hpp"
#include "lockclass/lock_class.hpp"
#include "witness/order_graph.hpp"
#include "witness/report.hpp"
#include "witness/witness_setup.hpp"

namespace panicstop {

namespace detail {

// Exported in every build, though only the witness build's headers declare
// them (their inline fast paths read them): the library's ABI is then the same
// with WITNESS built in or not.
PANICSTOP_EXPORT int g_witness_mode = PANICSTOP_WITNESS_BUILT_IN ? 1 : -1;
int g_witness_action = 0;
PANICSTOP_EXPORT __thread const char* tls_witness_site_file __attribute__((tls_model("initial-exec"))) = nullptr;
PANICSTOP_EXPORT __thread int tls_witness_site_line __attribute__((tls_model("initial-exec"))) = 0;

namespace {

// 0: the slot's held list has not been reset for this thread yet; 1: valid;
// 2: this thread shares the overflow slot, so it keeps no list.
__thread uint8_t tls_held_state __attribute__((tls_model("initial-exec"))) = 0;

enum ReportKind : uint8_t {
  kReportReversal = 1,
  kReportDuplicate,
  kReportRecursion,
  kReportUnlockNotHeld,
  kReportMismatch,
  kReportSleepUnderSpin,
  kReportDestroyHeld,
};

inline int mode() noexcept { return __atomic_load_n(&g_witness_mode, __ATOMIC_RELAXED); }

// The hooks' bookkeeping stops on the thread that runs the panic path (its
// acquisitions are faked from then on); every report and every new edge stops
// for all threads once panicking() is true (see the header). The bookkeeping
// test is the inline one: panicking() is a call, kept off the per-lock path.
inline bool skip(const LockObject* lo) noexcept {
  return mode() < 0 || (lo->options & kNoWitness) != 0 || scheduler_stopped();
}

inline Site take_site(const void* return_address) noexcept {
  Site s;
  s.file = tls_witness_site_file;
  if (s.file != nullptr) {
    s.line = uint32_t(tls_witness_site_line);
    tls_witness_site_file = nullptr;
  }
  s.return_address = reinterpret_cast<uintptr_t>(return_address);
  return s;
}

inline Site site_of(const HeldLock& h) noexcept { return Site{h.file, h.line, h.return_address}; }

// The first witness call of a thread: its slot may hold a list left by the
// slot's previous thread.
__attribute__((noinline)) ThreadSlot* first_held_slot(ThreadSlot* s) noexcept {
  if (!is_slot_address(s)) {
    tls_held_state = 2;
    return nullptr;
  }
  s->held_count = 0;
  s->held_dropped = 0;
  s->held_tid = s->tid.load(std::memory_order_relaxed);
  tls_held_state = 1;
  return s;
}

__attribute__((always_inline)) inline ThreadSlot* held_slot() noexcept {
  ThreadSlot* s = current_slot();
  if (__builtin_expect(tls_held_state == 1, 1)) return s;
  if (tls_held_state == 2) return nullptr;
  return first_held_slot(s);
}

__attribute__((always_inline)) inline HeldLock* find_held(ThreadSlot* s, const LockObject* lo) noexcept {
  for (uint32_t i = s->held_count; i-- > 0;)
    if (s->held[i].lock == lo) return &s->held[i];
  return nullptr;
}

// Before an acquisition: could this thread hold lo already? The lock word
// answers for exclusive holds (it names the owner's slot); a read-locked
// RwLock/SxLock word does not say who reads, so then the list is searched.
// Spares the common case a walk over every held lock.
inline HeldLock* find_if_held(ThreadSlot* s, const LockObject* lo) noexcept {
  uintptr_t w = lo->word.load(std::memory_order_relaxed);
  bool maybe = (w & ~kLockFlagMask) == reinterpret_cast<uintptr_t>(s) ||
               ((lo->kind == LockKind::kRwLock || lo->kind == LockKind::kSxLock) && (w & 1) != 0);
  return maybe ? find_held(s, lo) : nullptr;
}

// Writes entry n of s's held list and makes it the newest. The order of the
// stores matters for a reader on this thread (a signal handler that locks
// while this runs) or on another (a dump of a stopped thread): the entry is
// claimed with a null lock first (every reader skips a null entry), filled,
// and published by storing the lock last, so it is never seen half-written.
// The entry cannot be reused by a handler meanwhile: once held_count covers
// it, a nested push takes the next one. line, recursion and class_index are
// one 8-byte store (see the static_assert): this runs on every lock.
static_assert(offsetof(HeldLock, recursion) == offsetof(HeldLock, line) + 4 &&
                  offsetof(HeldLock, class_index) == offsetof(HeldLock, line) + 6,
              "fill_held writes line, recursion and class_index as one word");
__attribute__((always_inline)) inline void fill_held(ThreadSlot* s, uint32_t n, const LockObject* lo, uint16_t c,
                                                   const char* file, uint32_t line, uintptr_t return_address,
                                                   int64_t ticks, unsigned shared) noexcept {
  HeldLock& h = s->held[n];
  h.lock = nullptr;
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  s->held_count = n + 1;
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  h.file = file;
  h.return_address = return_address;
  h.acquired_ticks = ticks;
  uint64_t line_recursion_class = uint64_t(line) | (uint64_t(c) << 48);  // recursion 0
  __builtin_memcpy(&h.line, &line_recursion_class, sizeof line_recursion_class);
  h.shared = uint8_t(shared);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  h.lock = lo;
}

inline void push_held(ThreadSlot* s, const LockObject* lo, uint16_t c, const Site& site, bool shared) noexcept {
  uint32_t n = s->held_count;
  if (n >= kMaxHeldLocks) {
    ++s->held_dropped;
    return;
  }
  int64_t ticks = lockprof_active() && (lo->options & kNoProfile) == 0 ? lockprof_ticks() : 0;
  fill_held(s, n, lo, c, site.file, site.line, site.return_address, ticks, shared ? 1 : 0);
}

__attribute__((always_inline)) inline void remove_held(ThreadSlot* s, HeldLock* h) noexcept {
  uint32_t n = s->held_count;
  for (HeldLock* p = h; p + 1 < s->held + n; ++p) *p = p[1];
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  s->held_count = n - 1;
}

const char* kind_of(const LockObject* lo) noexcept { return lock_kind_name(lo->kind); }

void write_lock(sys::FixedWriter& w, const LockObject* lo) noexcept {
  w.ch('"').str(lo->name != nullptr ? lo->name : "?").str("\" (").str(kind_of(lo)).format(", %p)", lo);
}

// Reports with one lock, a site and the current stack: recursion, unlock of a
// lock not held, mismatch, destroy while held, duplicate class.
__attribute__((noinline)) void report_misuse(ReportKind kind, const char* what, const LockObject* lo,
                                             const Site& site, const HeldLock* earlier) noexcept {
  if (panicking()) return;
  uint16_t c = lock_class_of(lo);
  if (!first_report(kind, c, c)) return;
  Stack stack;
  capture_stack(&stack, 1);
  Report r;
  if (!r.ok()) return;
  char headline[256];
  sys::format(headline, sizeof headline, "%s: \"%s\"", what, lo->name != nullptr ? lo->name : "?");
  auto& w = r.w();
  w.str("witness: ").str(what).str(": ");
  write_lock(w, lo);
  w.str(" @ ");
  write_site(w, site);
  w.ch('\n');
  if (earlier != nullptr) {
    w.str(" held since ");
    if (earlier->lock != lo) write_lock(w, earlier->lock), w.ch(' ');
    w.str(earlier->shared ? "(shared) @ " : "(exclusive) @ ");
    write_site(w, site_of(*earlier));
    w.ch('\n');
  }
  w.format(" stack (thread %d):\n", stack.tid);
  write_stack(w, stack);
  r.finish(headline);
}

__attribute__((noinline)) void report_reversal(const HeldLock& first, uint16_t first_class, const LockObject* second,
                                               uint16_t second_class, const Site& second_site,
                                               const Stack& stack) noexcept {
  uint16_t lo_pair = first_class < second_class ? first_class : second_class;
  uint16_t hi_pair = first_class < second_class ? second_class : first_class;
  if (!first_report(kReportReversal, lo_pair, hi_pair)) return;
  uint16_t path[16];
  size_t len = order_path(second_class, first_class, path, 16);
  Report r;
  if (!r.ok()) return;
  const char* n1 = lock_class_name(first_class);
  const char* n2 = lock_class_name(second_class);
  char headline[256];
  sys::format(headline, sizeof headline, "lock order reversal: 1st %s, 2nd %s", n1, n2);
  auto& w = r.w();
  w.str("lock order reversal: 1st ").str(n1).str(" @ ");
  write_site(w, site_of(first));
  w.str(", 2nd ").str(n2).str(" @ ");
  write_site(w, second_site);
  w.str("; established order ");
  for (size_t i = 0; i < len; ++i) w.str(i > 0 ? " -> " : "").str(lock_class_name(path[i]));
  w.str(" at ");
  for (size_t i = 0; i + 1 < len; ++i) {
    const EdgeRecord* e = order_edge(path[i], path[i + 1]);
    if (i > 0) w.str(", ");
    if (e != nullptr)
      write_site(w, e->to_site);
    else
      w.str("(unrecorded)");
  }
  w.ch('\n');
  w.str(" 1st ");
  write_lock(w, first.lock);
  w.str(" @ ");
  write_site(w, site_of(first));
  w.str("\n 2nd ");
  write_lock(w, second);
  w.str(" @ ");
  write_site(w, second_site);
  w.format("\n stack of the 2nd acquisition (thread %d):\n", stack.tid);
  write_stack(w, stack);
  for (size_t i = 0; i + 1 < len; ++i) {
    const EdgeRecord* e = order_edge(path[i], path[i + 1]);
    if (e == nullptr) continue;
    w.str(" established ").str(lock_class_name(e->from)).str(" @ ");
    write_site(w, e->from_site);
    w.str(" -> ").str(lock_class_name(e->to)).str(" @ ");
    write_site(w, e->to_site);
    w.format(", stack when first seen (thread %d):\n", e->stack.tid);
    write_stack(w, e->stack);
  }
  r.finish(headline);
}

// Called with lo (class c) not yet held by this thread.
__attribute__((noinline)) void check_order_slow(ThreadSlot* s, const LockObject* lo, uint16_t c,
                                                const Site& site) noexcept {
  if (panicking()) return;  // no new edges and no reports once a panic began
  Stack stack;
  bool have_stack = false;
  for (uint32_t i = 0; i < s->held_count; ++i) {
    const HeldLock& h = s->held[i];
    if (h.lock == nullptr) continue;
    uint16_t hc = h.class_index;
    if (hc == kUntrackedClass) continue;
    if (hc == c) {
      if ((lo->options & kDupOk) == 0) report_misuse(kReportDuplicate, "acquiring a second lock of one class", lo, site, &h);
      continue;
    }
    if (__builtin_expect(order_known(hc, c), 1)) continue;
    if (!have_stack) {
      capture_stack(&stack, 2);  // check_order_slow and witness_lock
      have_stack = true;
    }
    if (order_add(hc, c, site_of(h), site, stack) == AddResult::kReversal)
      report_reversal(h, hc, lo, c, site, stack);
  }
}

// FreeBSD's shortcut (witness_lock_order_check): if the order from the most
// recently acquired lock to this one is known, every older held lock is
// known to come before this one too (each was before the newest one when that
// was taken, and the graph is transitive), so only the newest is tested. A
// cycle through older locks was reported when its last edge was refused.
inline void check_order(ThreadSlot* s, const LockObject* lo, uint16_t c, const Site& site) noexcept {
  if (c == kUntrackedClass) return;
  for (uint32_t i = s->held_count; i-- > 0;) {
    const HeldLock& h = s->held[i];
    if (h.lock == nullptr) continue;
    if (h.class_index != c && order_known(h.class_index, c)) return;
    break;
  }
  check_order_slow(s, lo, c, site);
}

// lo is already held by this thread and is taken again.
void held_again(HeldLock* h, const LockObject* lo, const Site& site, bool shared) noexcept {
  if (h->shared && !shared) {
    report_misuse(kReportMismatch, "exclusive lock of a lock held shared", lo, site, h);
  } else if (!h->shared && shared) {
    report_misuse(kReportMismatch, "shared lock of a lock held exclusively", lo, site, h);
  } else if (!shared && (lo->options & kRecursive) == 0) {
    report_misuse(kReportRecursion, "recursed on a non-recursive lock", lo, site, h);
  }
  // Shared holds may repeat on RwLock and SxLock: the lock allows it.
  if (h->recursion < 0xffff) ++h->recursion;
}

}  // namespace

namespace {

// Everything witness_lock does; its caller handles the steady state inline.
__attribute__((noinline)) void lock_slow(const LockObject* lo, unsigned flags, const void* return_address) noexcept {
  Site site = take_site(return_address);
  if (skip(lo)) return;
  ThreadSlot* s = held_slot();
  if (s == nullptr) return;
  bool shared = (flags & kWitnessShared) != 0;
  if (HeldLock* h = find_if_held(s, lo)) {
    held_again(h, lo, site, shared);
    return;
  }
  uint16_t c = lock_class_of(lo);
  if (mode() >= 1) check_order(s, lo, c, site);
  push_held(s, lo, c, site, shared);
}

__attribute__((noinline)) void unlock_slow(const LockObject* lo, unsigned flags, const void* return_address) noexcept {
  Site site;  // for reports: where unlock() was called
  site.return_address = reinterpret_cast<uintptr_t>(return_address);
  if (skip(lo)) return;
  ThreadSlot* s = held_slot();
  if (s == nullptr) return;
  bool shared = (flags & kWitnessShared) != 0;
  HeldLock* h = find_held(s, lo);
  if (h == nullptr) {
    if (s->held_dropped > 0) {
      --s->held_dropped;  // most likely one of the holds that did not fit
      return;
    }
    report_misuse(kReportUnlockNotHeld, shared ? "shared unlock of a lock not held" : "unlock of a lock not held", lo,
                  site, nullptr);
    return;
  }
  if (h->shared && !shared)
    report_misuse(kReportMismatch, "exclusive unlock of a lock held shared", lo, site, h);
  else if (!h->shared && shared)
    report_misuse(kReportMismatch, "shared unlock of a lock held exclusively", lo, site, h);
  if (h->recursion > 0) {
    --h->recursion;
    return;
  }
  if (h->acquired_ticks != 0 && lockprof_active()) report_hold(lo, site_of(*h), lockprof_ticks() - h->acquired_ticks);
  remove_held(s, h);
}

}  // namespace

// The two per-lock hooks build no frame: they either return or jump to the
// slow path, which builds its own frame linked to the lock's caller, so a
// frame-pointer walk from anywhere below still sees every caller. Saves a
// push, a move and a pop on each of two calls per lock/unlock pair.
// GCC only: clang has no per-function form of -fomit-frame-pointer.
#if defined(__clang__)
#define WITNESS_FRAMELESS
#else
#define WITNESS_FRAMELESS __attribute__((optimize("omit-frame-pointer")))
#endif

// The steady state of a program that has run for a while is handled here
// without another call: witness on with order checks, this thread's list
// ready, no macro site pending, no profiling, the lock's class known, the lock
// free (so not held by this thread: recursion and mismatch need no search)
// and the order from the newest held lock to this one already known
// (FreeBSD's witness_lock_order_check shortcut, see check_order). Anything
// else goes to lock_slow, which redoes every test. No frame of its own (see
// WITNESS_FRAMELESS). With no lock held, or in mode 0, there is no order to
// check and the lock is only recorded.
WITNESS_FRAMELESS void witness_lock(const LockObject* lo, unsigned flags) noexcept {
  const void* ra = __builtin_return_address(0);
  ThreadSlot* s = tls_slot;
  int m = mode();
  if (__builtin_expect(s == nullptr || tls_held_state != 1 || tls_witness_site_file != nullptr ||
                           scheduler_stopped() || lockprof_active() || m < 0,
                       0))
    return lock_slow(lo, flags, ra);
  uint16_t c = __atomic_load_n(&lo->class_index, __ATOMIC_ACQUIRE);
  uint32_t n = s->held_count;
  // c in 1..kMaxLockClasses-1: assigned and tracked.
  if (__builtin_expect(uint16_t(c - 1) >= kMaxLockClasses - 1 || n >= kMaxHeldLocks || (lo->options & kNoWitness) != 0,
                       0))
    return lock_slow(lo, flags, ra);
  // A lock this thread holds never has a zero word (an exclusive hold names
  // the owner's slot, a shared hold counts its readers), so a zero word rules
  // out recursion and mismatch without a look at the list. A nonzero word
  // (held by someone, or waiters) takes the slow path, which reads the word
  // precisely.
  if (__builtin_expect(lo->word.load(std::memory_order_relaxed) != 0, 0)) return lock_slow(lo, flags, ra);
  if (__builtin_expect(n != 0 && m > 0, 1)) {
    const HeldLock& top = s->held[n - 1];
    uint16_t tc = top.class_index;
    // A null top entry is one being written by the code this call interrupted.
    if (__builtin_expect(top.lock == nullptr || tc == c || tc >= kMaxLockClasses || !order_known(tc, c), 0))
      return lock_slow(lo, flags, ra);
  }
  fill_held(s, n, lo, c, nullptr, 0, reinterpret_cast<uintptr_t>(ra), 0, flags & kWitnessShared);
}

void witness_trylock(const LockObject* lo, unsigned flags) noexcept {
  witness_trylock_from(lo, flags, __builtin_return_address(0));
}

void witness_trylock_from(const LockObject* lo, unsigned flags, const void* return_address) noexcept {
  Site site = take_site(return_address);
  if (skip(lo)) return;
  ThreadSlot* s = held_slot();
  if (s == nullptr) return;
  bool shared = (flags & kWitnessShared) != 0;
  if (HeldLock* h = find_held(s, lo)) {
    held_again(h, lo, site, shared);
    return;
  }
  push_held(s, lo, lock_class_of(lo), site, shared);
}

void witness_lock_failed(const LockObject* lo) noexcept {
  if (skip(lo)) return;
  ThreadSlot* s = held_slot();
  if (s == nullptr) return;
  HeldLock* h = find_held(s, lo);
  if (h == nullptr) return;
  if (h->recursion > 0)
    --h->recursion;
  else
    remove_held(s, h);
}

WITNESS_FRAMELESS void witness_unlock(const LockObject* lo, unsigned flags) noexcept {
  ThreadSlot* s = tls_slot;
  // Steady state: releasing the newest entry, taken once, in the same mode,
  // without a hold time to record. The mode is not read: the hook runs only
  // while witness is on, and should it have been switched off since, popping
  // the entry this very lock pushed is still right.
  if (__builtin_expect(s != nullptr && tls_held_state == 1 && !scheduler_stopped(), 1)) {
    uint32_t n = s->held_count;
    if (__builtin_expect(n - 1 < kMaxHeldLocks, 1)) {
      const HeldLock& h = s->held[n - 1];
      if (__builtin_expect(h.lock == lo && h.recursion == 0 && h.acquired_ticks == 0 &&
                               h.shared == (flags & kWitnessShared),
                           1)) {
        s->held_count = n - 1;
        return;
      }
    }
  }
  unlock_slow(lo, flags, __builtin_return_address(0));
}

void witness_upgrade(const LockObject* lo) noexcept {
  if (skip(lo)) return;
  ThreadSlot* s = held_slot();
  if (s == nullptr) return;
  if (HeldLock* h = find_held(s, lo)) h->shared = 0;
}

void witness_downgrade(const LockObject* lo) noexcept {
  Site site = take_site(__builtin_return_address(0));
  if (skip(lo)) return;
  ThreadSlot* s = held_slot();
  if (s == nullptr) return;
  HeldLock* h = find_held(s, lo);
  if (h == nullptr) {
    report_misuse(kReportUnlockNotHeld, "downgrade of a lock not held", lo, site, nullptr);
    return;
  }
  if (h->shared) report_misuse(kReportMismatch, "downgrade of a lock held shared", lo, site, h);
  h->shared = 1;
}

void witness_sleep(const LockObject* on, const char* what) noexcept {
  if (mode() < 0 || scheduler_stopped() || panicking()) return;
  ThreadSlot* s = held_slot();
  if (s == nullptr) return;
  for (uint32_t i = 0; i < s->held_count; ++i) {
    const HeldLock& h = s->held[i];
    if (h.lock == nullptr || h.lock == on || h.lock->kind != LockKind::kSpinMutex) continue;
    uint16_t sc = h.class_index;
    uint16_t oc = on != nullptr ? lock_class_of(on) : 0;
    if (!first_report(kReportSleepUnderSpin, sc, oc)) return;
    Stack stack;
    capture_stack(&stack, 1);
    Report r;
    if (!r.ok()) return;
    char headline[256];
    sys::format(headline, sizeof headline, "blocking with spin mutex \"%s\" held", h.lock->name);
    auto& w = r.w();
    w.str("witness: blocking (").str(what).str(") on ");
    if (on != nullptr) write_lock(w, on);
    w.str(" with spin mutex ");
    write_lock(w, h.lock);
    w.str(" held @ ");
    write_site(w, site_of(h));
    w.format("\n stack (thread %d):\n", stack.tid);
    write_stack(w, stack);
    r.finish(headline);
    return;
  }
}

void witness_destroy(const LockObject* lo) noexcept {
  if (skip(lo) || tls_held_state != 1) return;
  ThreadSlot* s = tls_slot;
  HeldLock* h = find_held(s, lo);
  if (h == nullptr) return;
  Site site{};
  site.return_address = reinterpret_cast<uintptr_t>(__builtin_return_address(0));
  report_misuse(kReportDestroyHeld, "destroying a lock held by this thread", lo, site, h);
  remove_held(s, h);
}

}  // namespace detail

void witness_set_mode(WitnessMode m) noexcept {
  if (!kWitnessBuiltIn) return;
  __atomic_store_n(&detail::g_witness_mode, int(m), __ATOMIC_RELAXED);
}

WitnessMode witness_mode() noexcept {
  return kWitnessBuiltIn ? WitnessMode(__atomic_load_n(&detail::g_witness_mode, __ATOMIC_RELAXED)) : WitnessMode::kOff;
}

void witness_set_action(WitnessAction a) noexcept { __atomic_store_n(&detail::g_witness_action, int(a), __ATOMIC_RELAXED); }
WitnessAction witness_action() noexcept {
  return WitnessAction(__atomic_load_n(&detail::g_witness_action, __ATOMIC_RELAXED));
}

void witness_write_held_locks(int fd) noexcept {
  using namespace detail;
  if (witness_mode() == WitnessMode::kOff || tls_held_state != 1) return;
  char buf[4096];
  sys::FixedWriter w(buf, sizeof buf);
  w.format("locks held by thread %d:\n", current_tid());
  write_held_locks(w, *tls_slot, " ");
  sys::write_all(fd, w.data(), w.size());
}

}  // namespace panicstop

namespace panicstop::detail {

size_t write_held_locks(sys::FixedWriter& w, const ThreadSlot& slot, const char* indent) noexcept {
  if (slot.held_tid == 0 || slot.held_tid != slot.tid.load(std::memory_order_relaxed)) return 0;
  size_t written = 0;
  uint32_t n = slot.held_count < kMaxHeldLocks ? slot.held_count : uint32_t(kMaxHeldLocks);
  for (uint32_t i = 0; i < n; ++i) {
    const HeldLock& h = slot.held[i];
    if (h.lock == nullptr) continue;
    bool waiting = h.lock == slot.waiting_on.load(std::memory_order_relaxed);
    w.str(indent).str(waiting ? "waiting for " : h.shared ? "shared " : "exclusive ");
    write_lock(w, h.lock);
    if (h.recursion > 0) w.format(" recursed %u", unsigned(h.recursion));
    w.str(" @ ");
    write_site(w, site_of(h));
    w.ch('\n');
    ++written;
  }
  if (slot.held_dropped > 0) w.str(indent).format("(%u more not recorded)\n", slot.held_dropped);
  return written;
}

namespace {
// Lock profiling asks for sites through lockclass/hold_hooks.hpp. Registered
// from this file, not witness_setup.cpp: a static link that never pulls in
// the setup object must still count each acquisition once.
__attribute__((constructor)) void register_held_site_lookup() { set_held_site_lookup(witness_held_site); }
}  // namespace

bool witness_held_site(const LockObject* lo, Site* site) noexcept {
  if (tls_held_state != 1 || mode() < 0) return false;
  ThreadSlot* s = tls_slot;
  HeldLock* h = find_held(s, lo);
  if (h == nullptr) return false;
  *site = site_of(*h);
  return true;
}

}  // namespace panicstop::detail
