#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include "sys/format.hpp"
#include "sys/syscall.hpp"
#include "thread/altstack.hpp"
#include "thread/slot.hpp"

namespace panicstop::detail {

__thread ThreadSlot* tls_slot __attribute__((tls_model("initial-exec"))) = nullptr;
__thread bool tls_scheduler_stopped __attribute__((tls_model("initial-exec"))) = false;

namespace {

std::atomic<ThreadSlot*> g_slots{nullptr};
// Slots [0, g_high_water) have been handed out at least once; the ones above
// it have never been touched (their pages are not resident yet).
std::atomic<size_t> g_high_water{0};
std::atomic<size_t> g_next_recycle{0};
// Live slots (claims minus releases), the most ever live at once, and slots
// retired by a fork. They size the pool: a claim takes a fresh slot only while
// the high water is below kPoolBound(peak, retired), so a process that makes
// and ends threads by the thousand touches a few slots more than it ever has
// threads, not all kMaxThreads of them.
std::atomic<size_t> g_live{0};
std::atomic<size_t> g_peak_live{0};
std::atomic<size_t> g_retired{0};
// Claims begun so far; a released slot records it (ThreadSlot::released_at)
// so that a claim can tell how recently a free slot was given up.
std::atomic<uint64_t> g_claims{0};
// Claims and releases run in signal handlers: a counter behind a hidden lock
// could deadlock against the code the signal interrupted.
static_assert(std::atomic<uint64_t>::is_always_lock_free && std::atomic<size_t>::is_always_lock_free);

// Fresh slots beyond twice the peak: the recycling scan then finds a free slot
// at once, and a released slot waits for about a full cycle of the pool.
constexpr size_t kSpareSlots = 64;
// Claims that must begin, beyond the peak live count, between a slot's release
// and its next claim.
constexpr uint64_t kMinReuseDelay = 16;

size_t pool_bound(size_t peak, size_t retired) noexcept {
  size_t bound = 2 * peak + retired + kSpareSlots;
  return bound < kMaxThreads ? bound : kMaxThreads;
}

// Threads beyond kMaxThreads share this one; it is a valid, unique-per-process
// owner identity only as far as "not any real slot".
ThreadSlot g_overflow_slot;

// Slots freed so far (release_slot; a fork's child counts one). A thread
// that shares the overflow slot claims again only once this moved since its
// last try: a claim that fails scans the whole table, and current_slot()
// (every lock operation of the thread) would otherwise make one each time.
std::atomic<uint64_t> g_releases{0};
// g_releases as the calling thread read it before its last failed claim;
// meaningful while it shares the overflow slot.
__thread uint64_t tls_overflow_releases_seen __attribute__((tls_model("initial-exec"))) = 0;

// The tids of the live threads that share the overflow slot, so that a stop
// without /proc still finds them (for_each_overflow_thread). Open addressing
// with linear probing; an entry is 0 when free. Reserved with the slots; a
// thread that finds it full (or unreserved) is only counted.
std::atomic<std::atomic<int32_t>*> g_overflow_tids{nullptr};
std::atomic<uint32_t> g_overflow_untracked{0};
// The calling thread's entry in g_overflow_tids, or -1; whether it is counted
// in g_overflow_untracked instead.
__thread int32_t tls_overflow_index __attribute__((tls_model("initial-exec"))) = -1;
__thread bool tls_overflow_untracked __attribute__((tls_model("initial-exec"))) = false;

// Records the calling thread as one that shares the overflow slot (once).
void note_overflow_thread() noexcept {
  if (tls_overflow_index >= 0 || tls_overflow_untracked) return;
  std::atomic<int32_t>* table = g_overflow_tids.load(std::memory_order_acquire);
  int32_t tid = sys::gettid();
  if (table != nullptr) {
    size_t start = (uint32_t(tid) * 2654435761u) % kOverflowTids;
    for (size_t k = 0; k < kOverflowTids; ++k) {
      size_t i = (start + k) % kOverflowTids;
      int32_t free_entry = 0;
      if (table[i].load(std::memory_order_relaxed) == 0 &&
          table[i].compare_exchange_strong(free_entry, tid, std::memory_order_acq_rel)) {
        tls_overflow_index = int32_t(i);
        return;
      }
    }
  }
  tls_overflow_untracked = true;
  g_overflow_untracked.fetch_add(1, std::memory_order_relaxed);
}

// The calling thread no longer shares the overflow slot (it got a slot of
// its own, or it is exiting).
void forget_overflow_thread() noexcept {
  if (tls_overflow_index >= 0) {
    std::atomic<int32_t>* table = g_overflow_tids.load(std::memory_order_acquire);
    if (table != nullptr) table[tls_overflow_index].store(0, std::memory_order_release);
    tls_overflow_index = -1;
  }
  if (tls_overflow_untracked) {
    tls_overflow_untracked = false;
    g_overflow_untracked.fetch_sub(1, std::memory_order_relaxed);
  }
}

pthread_key_t g_exit_key;
std::atomic<bool> g_exit_key_ready{false};

void on_thread_exit(void*) noexcept {
  forget_overflow_thread();
  release_current_slot();
  release_altstack();
}

// fork()'s child: the thread layer's part (before install()'s handler, which
// is registered later).
void adopt_thread_layer_after_fork() noexcept {
  adopt_slots_after_fork();
  adopt_altstack_after_fork();
}

// Registering the exit key at load time keeps pthread_key_create (which takes a
// libc lock) out of every later path. The fork handler is registered at load
// too, not at install(): a program that uses the locks without installing
// forks as well, and its child must not keep the parent's threads' slots.
__attribute__((constructor)) void register_exit_key_and_fork_handler() {
  if (pthread_key_create(&g_exit_key, on_thread_exit) == 0) g_exit_key_ready.store(true);
  pthread_atfork(nullptr, nullptr, adopt_thread_layer_after_fork);
}

// Takes the lowest never-used slot while the high water is below limit.
ThreadSlot* take_fresh_slot(ThreadSlot* slots, size_t limit) noexcept {
  size_t i = g_high_water.load(std::memory_order_relaxed);
  while (i < limit) {
    if (!g_high_water.compare_exchange_weak(i, i + 1, std::memory_order_acq_rel)) continue;
    // A concurrent recycling scan may already have taken slot i (it is below
    // the new high water): then try the next one.
    uint32_t expected = 0;
    if (slots[i].in_use.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) return &slots[i];
    i = g_high_water.load(std::memory_order_relaxed);
  }
  return nullptr;
}

// Was slot s, which the caller has just claimed, released fewer than delay
// claims ago? Its owner identity may still sit in a lock word that its last
// thread never unlocked (a killed thread, a program bug): handing it out at
// once would make the new thread look like that lock's owner.
bool released_too_recently(const ThreadSlot& s, uint64_t delay) noexcept {
  uint64_t at = s.released_at.load(std::memory_order_relaxed);
  if (at == 0 || delay == 0) return false;  // never released, or any will do
  // The release happened before the caller's claim, so the count read now is
  // at least at.
  uint64_t now = g_claims.load(std::memory_order_relaxed);
  return now < at || now - at <= delay;
}

// Next fit over the slots already handed out: start where the last recycled
// slot was found, so that the scan cycles through the pool round-robin and
// stays O(1) on average. A slot released fewer than delay claims ago is
// skipped, whatever order threads end in.
ThreadSlot* recycle_slot(ThreadSlot* slots, uint64_t delay) noexcept {
  size_t n = g_high_water.load(std::memory_order_acquire);
  if (n > kMaxThreads) n = kMaxThreads;
  if (n == 0) return nullptr;
  size_t start = g_next_recycle.load(std::memory_order_relaxed) % n;
  for (size_t k = 0; k < n; ++k) {
    size_t j = (start + k) % n;
    ThreadSlot& s = slots[j];
    if (s.in_use.load(std::memory_order_relaxed) != 0 || released_too_recently(s, delay)) continue;
    uint32_t expected = 0;
    if (!s.in_use.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) continue;
    // Another thread took and gave back the slot between the check and the
    // CAS, so it has just been released again: put it back.
    if (released_too_recently(s, delay)) {
      s.in_use.store(0, std::memory_order_release);
      continue;
    }
    g_next_recycle.store(j + 1, std::memory_order_relaxed);
    return &s;
  }
  return nullptr;
}

// set_tls: false when the calling thread's TLS is another thread's (a raw
// clone): the slot is found again by tid, and TLS keeps naming its owner's.
ThreadSlot* claim_slot(bool from_signal_handler, bool set_tls) noexcept {
  if (!reserve_slots()) return &g_overflow_slot;
  ThreadSlot* slots = g_slots.load(std::memory_order_acquire);
  g_claims.fetch_add(1, std::memory_order_relaxed);
  // Counted before the slot is found, so that the bound below already makes
  // room for this claim.
  size_t live = g_live.fetch_add(1, std::memory_order_relaxed) + 1;
  size_t peak = g_peak_live.load(std::memory_order_relaxed);
  while (peak < live && !g_peak_live.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
  }
  if (peak < live) peak = live;
  ThreadSlot* s = take_fresh_slot(slots, pool_bound(peak, g_retired.load(std::memory_order_relaxed)));
  if (s == nullptr) s = recycle_slot(slots, peak + kMinReuseDelay);
  // Every slot handed out is live, retired or too recently released: grow
  // the pool rather than break the reuse delay.
  if (s == nullptr) s = take_fresh_slot(slots, kMaxThreads);
  // All kMaxThreads handed out: a recently released slot is still a better
  // identity than the overflow slot, which every thread beyond it shares.
  if (s == nullptr) s = recycle_slot(slots, 0);
  if (s == nullptr) {
    g_live.fetch_sub(1, std::memory_order_relaxed);
    return &g_overflow_slot;
  }
  s->claimed_by_stop = from_signal_handler;
  s->name[0] = '\0';
  s->waiting_on.store(nullptr, std::memory_order_relaxed);
  s->wait_mode.store(WaitMode::kNone, std::memory_order_relaxed);
  s->parked.store(false, std::memory_order_relaxed);
  s->stop_state.store(StopState::kRunning, std::memory_order_relaxed);
  s->panic_signal = 0;
  s->panic_message[0] = '\0';
  s->context.valid = false;
  s->tid.store(sys::gettid(), std::memory_order_release);
  if (set_tls) tls_slot = s;
  // A thread that uses the library gets its alternate signal stack here, so a
  // stack overflow in it still reaches the panic path (thread/altstack.hpp).
  ensure_altstack();
  return s;
}

}  // namespace

bool reserve_slots() noexcept {
  if (g_slots.load(std::memory_order_acquire) != nullptr) return true;
  // The overflow table first, so that it exists once the slots do (a claim
  // that falls back to the overflow slot has seen the slots published).
  // Without it the registry still works; overflow threads are only counted.
  if (g_overflow_tids.load(std::memory_order_acquire) == nullptr) {
    void* table = sys::mmap_unlisted(sizeof(std::atomic<int32_t>) * kOverflowTids, PROT_READ | PROT_WRITE);
    std::atomic<int32_t>* none = nullptr;
    if (table != nullptr &&
        !g_overflow_tids.compare_exchange_strong(none, static_cast<std::atomic<int32_t>*>(table),
                                                 std::memory_order_acq_rel))
      sys::munmap(table, sizeof(std::atomic<int32_t>) * kOverflowTids);
  }
  // Unlisted: the stop and panic paths write the slots while a memory tester
  // of the program's (redis's) may be rewriting its anonymous mappings.
  void* mem = sys::mmap_unlisted(sizeof(ThreadSlot) * kMaxThreads, PROT_READ | PROT_WRITE);
  if (mem == nullptr) return false;
  // Fresh anonymous memory is zero, which is every field's initial state.
  ThreadSlot* expected = nullptr;
  if (!g_slots.compare_exchange_strong(expected, static_cast<ThreadSlot*>(mem), std::memory_order_acq_rel))
    sys::munmap(mem, sizeof(ThreadSlot) * kMaxThreads);
  return true;
}

ThreadSlot* claim_current_slot() noexcept {
  if (tls_slot != nullptr) return tls_slot;
  const uint64_t releases = g_releases.load(std::memory_order_acquire);
  if ((tls_overflow_index >= 0 || tls_overflow_untracked) && releases == tls_overflow_releases_seen)
    return &g_overflow_slot;  // nothing freed since this thread's last try
  ThreadSlot* s = claim_slot(false, true);
  bool key_ready = g_exit_key_ready.load(std::memory_order_acquire);
  if (s == &g_overflow_slot) {
    tls_overflow_releases_seen = releases;
    // TLS never names the overflow slot, so a later current_slot() tries
    // again once a slot has been freed (g_releases). Meanwhile the thread is
    // listed by tid, and the exit key takes it off the list.
    note_overflow_thread();
    if (key_ready && pthread_getspecific(g_exit_key) == nullptr) pthread_setspecific(g_exit_key, &g_overflow_slot);
    return s;
  }
  forget_overflow_thread();
  if (key_ready) pthread_setspecific(g_exit_key, s);
  return s;
}

void release_at_thread_exit() noexcept {
  // Destructors run only for keys whose value is not null; on_thread_exit
  // ignores the value, and claim_current_slot() replaces it with the slot.
  static char marker;
  if (g_exit_key_ready.load(std::memory_order_acquire) && pthread_getspecific(g_exit_key) == nullptr)
    pthread_setspecific(g_exit_key, &marker);
}

ThreadSlot* claim_slot_in_signal_handler() noexcept {
  ThreadSlot* s = tls_slot;
  if (s == nullptr) return claim_slot(true, true);
  int tid = sys::gettid();
  if (s == &g_overflow_slot || s->tid.load(std::memory_order_relaxed) == tid) return s;
  // TLS names another thread's slot: this thread was made by a raw clone()
  // without CLONE_SETTLS and shares its creator's TLS. Saving this thread's
  // registers there would overwrite the creator's (and its crash would show
  // nowhere), so it gets a slot of its own that TLS never names.
  if (ThreadSlot* mine = find_slot_by_tid(tid)) return mine;
  return claim_slot(true, false);
}

void release_slot(ThreadSlot* s) noexcept {
  if (s == nullptr) return;
  if (tls_slot == s) tls_slot = nullptr;
  if (s == &g_overflow_slot) return;
  s->tid.store(0, std::memory_order_relaxed);
  s->released_at.store(g_claims.load(std::memory_order_relaxed), std::memory_order_relaxed);
  // Only a live slot is freed: a retired one stays retired.
  uint32_t live = 1;
  if (s->in_use.compare_exchange_strong(live, 0, std::memory_order_release, std::memory_order_relaxed)) {
    g_live.fetch_sub(1, std::memory_order_relaxed);
    g_releases.fetch_add(1, std::memory_order_release);
  }
}

void release_current_slot() noexcept { release_slot(tls_slot); }

void adopt_slots_after_fork() noexcept {
  ThreadSlot* self = tls_slot;
  int tid = sys::gettid();
  if (self != nullptr && self != &g_overflow_slot) {
    // The locks this thread held at the fork are held in the child too, by
    // the same slot: WITNESS's list stays valid under the new tid.
    int32_t parent_tid = self->tid.load(std::memory_order_relaxed);
    if (parent_tid != 0 && self->held_tid == parent_tid) self->held_tid = tid;
    self->context.valid = false;  // the parent's registers
    self->tid.store(tid, std::memory_order_release);
  }
  // Every other slot belongs to a thread the child does not have. A retired
  // slot stays out of the free list for good: a lock word that names it (its
  // thread held the lock when the parent forked) stays held in the child, and
  // a child thread that reused the slot would take itself for the owner and
  // unlock, or re-lock recursively, a lock nobody in the child took. Freeing
  // it would also let a parent tid that the kernel hands out again to a child
  // thread find the dead thread's records. Its tid is cleared so that nothing
  // (find_slot_by_tid, the snapshot, a dump's lock owner) mistakes it for a
  // live thread, and it looks parked so that a contender on such a lock
  // sleeps at once instead of spinning on an owner that never runs.
  //
  // The counts start over: the forking thread's slot is the only live one,
  // and every retired slot (this fork's and earlier ones') is counted so that
  // the pool bound leaves room for the fresh slots the child's threads need.
  // The overflow table's other entries are the parent's threads too.
  if (std::atomic<int32_t>* table = g_overflow_tids.load(std::memory_order_acquire)) {
    for (size_t i = 0; i < kOverflowTids; ++i)
      if (int32_t(i) != tls_overflow_index) table[i].store(0, std::memory_order_relaxed);
  }
  g_overflow_untracked.store(tls_overflow_untracked ? 1 : 0, std::memory_order_relaxed);
  g_releases.fetch_add(1, std::memory_order_release);  // an overflow thread here tries a claim again
  ThreadSlot* slots = slot_array();
  if (slots == nullptr) return;
  bool self_live = self != nullptr && self != &g_overflow_slot;
  g_live.store(self_live ? 1 : 0, std::memory_order_relaxed);
  size_t retired = 0;
  size_t n = slot_count();
  for (size_t i = 0; i < n; ++i) {
    ThreadSlot& s = slots[i];
    if (&s == self || s.in_use.load(std::memory_order_acquire) == 0) continue;
    ++retired;
    s.in_use.store(kSlotRetired, std::memory_order_relaxed);
    s.tid.store(0, std::memory_order_relaxed);
    s.parked.store(true, std::memory_order_relaxed);
    s.context.valid = false;
  }
  g_retired.store(retired, std::memory_order_relaxed);
}

ThreadSlot* slot_array() noexcept { return g_slots.load(std::memory_order_acquire); }
uint64_t slot_claims() noexcept { return g_claims.load(std::memory_order_relaxed); }
size_t live_slot_count() noexcept { return g_live.load(std::memory_order_relaxed); }
size_t slot_count() noexcept {
  size_t n = g_high_water.load(std::memory_order_acquire);
  return n < kMaxThreads ? n : kMaxThreads;
}

void for_each_overflow_thread(void (*fn)(int tid, void* arg) noexcept, void* arg) noexcept {
  std::atomic<int32_t>* table = g_overflow_tids.load(std::memory_order_acquire);
  if (table == nullptr) return;
  for (size_t i = 0; i < kOverflowTids; ++i) {
    int32_t tid = table[i].load(std::memory_order_acquire);
    if (tid > 0) fn(tid, arg);
  }
}

ThreadSlot* overflow_slot() noexcept { return &g_overflow_slot; }

uint32_t overflow_threads_untracked() noexcept { return g_overflow_untracked.load(std::memory_order_relaxed); }

ThreadSlot* find_slot_by_tid(int tid) noexcept {
  ThreadSlot* slots = slot_array();
  if (slots == nullptr || tid <= 0) return nullptr;
  size_t n = slot_count();
  for (size_t i = 0; i < n; ++i)
    if (slots[i].in_use.load(std::memory_order_acquire) != 0 && slots[i].tid.load(std::memory_order_relaxed) == tid)
      return &slots[i];
  return nullptr;
}

bool is_slot_address(const void* p) noexcept {
  ThreadSlot* slots = slot_array();
  if (slots == nullptr) return false;
  auto a = reinterpret_cast<uintptr_t>(p);
  auto lo = reinterpret_cast<uintptr_t>(slots);
  return a >= lo && a < lo + sizeof(ThreadSlot) * kMaxThreads && (a - lo) % sizeof(ThreadSlot) == 0;
}

int tid_of_owner(uintptr_t owner) noexcept {
  auto* p = reinterpret_cast<ThreadSlot*>(owner);
  if (!is_slot_address(p)) return 0;
  return p->tid.load(std::memory_order_relaxed);
}

void set_scheduler_stopped(bool stopped) noexcept { tls_scheduler_stopped = stopped; }

}  // namespace panicstop::detail

namespace panicstop {

void set_thread_name(const char* name) noexcept {
  detail::ThreadSlot* s = detail::current_slot();
  sys::copy_string(s->name, sizeof s->name, name);
  char comm[16];
  sys::copy_string(comm, sizeof comm, name);
  sys::raw_syscall(SYS_prctl, PR_SET_NAME, comm, 0, 0, 0);
}

int current_tid() noexcept {
  detail::ThreadSlot* s = detail::tls_slot;
  if (s != nullptr) return s->tid.load(std::memory_order_relaxed);
  return sys::gettid();
}

}  // namespace panicstop
