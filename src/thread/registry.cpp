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
// Slots [0, g_high_water) have been handed out at least once. New claims take a
// fresh slot by bumping it and only scan for recycled slots once it is exhausted,
// so claiming is O(1) until 16,384 threads have come and gone.
std::atomic<size_t> g_high_water{0};
std::atomic<size_t> g_next_recycle{0};
// Threads beyond kMaxThreads share this one; it is a valid, unique-per-process
// owner identity only as far as "not any real slot".
ThreadSlot g_overflow_slot;

pthread_key_t g_exit_key;
std::atomic<bool> g_exit_key_ready{false};

void on_thread_exit(void*) noexcept {
  release_current_slot();
  release_altstack();
}

// Registering the exit key at load time keeps pthread_key_create (which takes a
// libc lock) out of every later path.
__attribute__((constructor)) void create_exit_key() {
  if (pthread_key_create(&g_exit_key, on_thread_exit) == 0) g_exit_key_ready.store(true);
}

// set_tls: false when the calling thread's TLS is another thread's (a raw
// clone): the slot is found again by tid, and TLS keeps naming its owner's.
ThreadSlot* claim_slot(bool from_signal_handler, bool set_tls) noexcept {
  if (!reserve_slots()) return &g_overflow_slot;
  ThreadSlot* slots = g_slots.load(std::memory_order_acquire);
  ThreadSlot* s = nullptr;
  size_t i = g_high_water.load(std::memory_order_relaxed);
  while (i < kMaxThreads) {
    if (g_high_water.compare_exchange_weak(i, i + 1, std::memory_order_acq_rel)) {
      uint32_t expected = 0;
      if (slots[i].in_use.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) s = &slots[i];
      break;
    }
  }
  // Next fit: start where the last recycled slot was found, so that claiming
  // stays O(1) on average when threads (or stop handlers) claim and release
  // slots by the thousand.
  size_t start = g_next_recycle.load(std::memory_order_relaxed);
  for (size_t k = 0; s == nullptr && k < kMaxThreads; ++k) {
    size_t j = (start + k) % kMaxThreads;
    uint32_t expected = 0;
    if (slots[j].in_use.load(std::memory_order_relaxed) == 0 &&
        slots[j].in_use.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
      s = &slots[j];
      g_next_recycle.store(j + 1, std::memory_order_relaxed);
    }
  }
  if (s == nullptr) return &g_overflow_slot;
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
  ThreadSlot* s = claim_slot(false, true);
  if (s != &g_overflow_slot && g_exit_key_ready.load(std::memory_order_acquire))
    pthread_setspecific(g_exit_key, s);
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
  s->in_use.store(0, std::memory_order_release);
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
  ThreadSlot* slots = slot_array();
  if (slots == nullptr) return;
  size_t n = slot_count();
  for (size_t i = 0; i < n; ++i) {
    ThreadSlot& s = slots[i];
    if (&s == self || s.in_use.load(std::memory_order_acquire) == 0) continue;
    s.in_use.store(kSlotRetired, std::memory_order_relaxed);
    s.tid.store(0, std::memory_order_relaxed);
    s.parked.store(true, std::memory_order_relaxed);
    s.context.valid = false;
  }
}

ThreadSlot* slot_array() noexcept { return g_slots.load(std::memory_order_acquire); }
size_t slot_count() noexcept {
  size_t n = g_high_water.load(std::memory_order_acquire);
  return n < kMaxThreads ? n : kMaxThreads;
}

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
