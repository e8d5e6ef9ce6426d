// The parking table (lock/park.hpp). Each bucket is a tiny word lock and a
// FIFO list of the records of the threads parked under the keys that hash to
// it. The bucket locks are held for a few list operations only; they spin
// briefly and then sleep on their own futex, as glibc's low-level lock does.
#include "lock/park.hpp"

#include <cerrno>

#include "panicstop/thread.hpp"
#include "sys/syscall.hpp"

namespace panicstop::detail {

namespace {

// On the parked thread's stack; linked into its bucket while queued.
struct ParkRecord {
  ParkRecord* next = nullptr;
  ParkRecord* prev = nullptr;
  const void* key = nullptr;
  uint32_t tag = 0;
  bool queued = false;  // under the bucket lock
  // 0 until an unpark chose this record; the thread sleeps on it. The waker
  // writes it last: after that the record may be gone.
  std::atomic<uint32_t> woken{0};
};

struct alignas(64) Bucket {
  // 0 free, 1 held, 2 held and a thread may sleep on it.
  std::atomic<uint32_t> lock{0};
  // Set by an unpark that could not take the bucket because the caller's
  // scheduler is stopped (a panic, or kdb) and a stopped thread holds it:
  // whoever releases the bucket next wakes everyone queued in it, so that
  // the skipped wake is not lost once the process is resumed.
  std::atomic<bool> wake_all_on_release{false};
  ParkRecord* head = nullptr;
  ParkRecord* tail = nullptr;
};

// A power of two; about 8 times the threads that usually wait at once, so
// that two busy locks rarely share a bucket (they would only share its lock).
constexpr uintptr_t kBuckets = 1024;
Bucket g_buckets[kBuckets];

Bucket& bucket_of(const void* key) noexcept {
  // Fibonacci hashing of the address; locks are at least 8-byte aligned.
  const uint64_t h = (reinterpret_cast<uintptr_t>(key) >> 3) * 0x9e3779b97f4a7c15ull;
  return g_buckets[h >> (64 - 10)];
}
static_assert(kBuckets == 1u << 10);

constexpr int kBucketSpins = 100;

void lock_bucket_slow(Bucket& b) noexcept {
  for (int i = 0; i < kBucketSpins; ++i) {
    uint32_t c = b.lock.load(std::memory_order_relaxed);
    if (c == 0 && b.lock.compare_exchange_weak(c, 1, std::memory_order_acquire, std::memory_order_relaxed)) return;
    cpu_relax();
  }
  while (b.lock.exchange(2, std::memory_order_acquire) != 0) sys::futex_wait(&b.lock, 2);
}

inline void lock_bucket(Bucket& b) noexcept {
  uint32_t c = 0;
  if (__builtin_expect(b.lock.compare_exchange_strong(c, 1, std::memory_order_acquire, std::memory_order_relaxed), 1))
    return;
  lock_bucket_slow(b);
}

// For a thread whose scheduler is stopped: a stopped thread may hold the
// bucket forever, so give up after a bounded spin.
bool try_lock_bucket(Bucket& b) noexcept {
  for (int i = 0; i < 100 * kBucketSpins; ++i) {
    uint32_t c = 0;
    if (b.lock.compare_exchange_weak(c, 1, std::memory_order_acquire, std::memory_order_relaxed)) return true;
    cpu_relax();
  }
  return false;
}

void wake_chosen(ParkRecord* chosen) noexcept;
ParkRecord* dequeue_all(Bucket& b) noexcept;

inline void unlock_bucket(Bucket& b) noexcept {
  ParkRecord* owed = nullptr;
  if (__builtin_expect(b.wake_all_on_release.load(std::memory_order_acquire), 0)) {
    b.wake_all_on_release.store(false, std::memory_order_relaxed);
    owed = dequeue_all(b);
  }
  if (b.lock.exchange(0, std::memory_order_release) == 2) sys::futex_wake(&b.lock, 1);
  if (__builtin_expect(owed != nullptr, 0)) wake_chosen(owed);
}

void enqueue(Bucket& b, ParkRecord& r) noexcept {
  r.prev = b.tail;
  r.next = nullptr;
  (b.tail != nullptr ? b.tail->next : b.head) = &r;
  b.tail = &r;
  r.queued = true;
}

void unlink(Bucket& b, ParkRecord& r) noexcept {
  (r.prev != nullptr ? r.prev->next : b.head) = r.next;
  (r.next != nullptr ? r.next->prev : b.tail) = r.prev;
  r.queued = false;
}

// Unlinks every record of the bucket into a list through `next`.
ParkRecord* dequeue_all(Bucket& b) noexcept {
  ParkRecord* all = b.head;
  for (ParkRecord* r = all; r != nullptr; r = r->next) r->queued = false;
  b.head = b.tail = nullptr;
  return all;
}

// Wakes the records of a list made under the bucket lock, after releasing
// it, so a woken thread does not run into it.
void wake_chosen(ParkRecord* chosen) noexcept {
  while (chosen != nullptr) {
    ParkRecord* r = chosen;
    chosen = r->next;  // read before the store: then the record may be gone
    r->woken.store(1, std::memory_order_release);
    // A wake on a word that may already be reused is harmless: whoever
    // sleeps on it checks its own condition again.
    sys::futex_wake(&r->woken, 1);
  }
}

}  // namespace

ParkResult park(const void* key, uint32_t tag, int64_t deadline_ns, WaitRecord& wait, bool (*validate)(void*),
                void* ctx) noexcept {
  ParkRecord r;
  r.key = key;
  r.tag = tag;
  Bucket& b = bucket_of(key);
  lock_bucket(b);
  if (!validate(ctx)) {
    unlock_bucket(b);
    return ParkResult::kInvalid;
  }
  enqueue(b, r);
  unlock_bucket(b);

  for (;;) {
    if (r.woken.load(std::memory_order_acquire) != 0) return ParkResult::kWoken;
    if (wait.sleep(&r.woken, 0, deadline_ns) != -ETIMEDOUT) continue;  // woken, spurious, or a signal
    lock_bucket(b);
    if (r.queued) {
      unlink(b, r);
      unlock_bucket(b);
      return ParkResult::kTimedOut;
    }
    unlock_bucket(b);
    // An unpark dequeued this record and is about to write `woken`; the
    // record must outlive that store.
    while (r.woken.load(std::memory_order_acquire) == 0) sys::futex_wait(&r.woken, 0);
    return ParkResult::kWoken;
  }
}

int unpark(const void* key, int count, uint32_t tags) noexcept {
  Bucket& b = bucket_of(key);
  if (__builtin_expect(scheduler_stopped(), 0)) {
    if (!try_lock_bucket(b)) {
      // Owe the wake to the bucket's next release (see Bucket), then look
      // once more: the holder may have released it before seeing the debt.
      b.wake_all_on_release.store(true, std::memory_order_seq_cst);
      if (!try_lock_bucket(b)) return 0;
    }
  } else {
    lock_bucket(b);
  }
  ParkRecord* chosen = nullptr;  // a list through `next`, unlinked from the bucket
  ParkRecord** tail = &chosen;
  int n = 0;
  for (ParkRecord* r = b.head; r != nullptr && n < count;) {
    ParkRecord* next = r->next;
    if (r->key == key && (r->tag & tags) != 0) {
      unlink(b, *r);
      r->next = nullptr;
      *tail = r;
      tail = &r->next;
      ++n;
    }
    r = next;
  }
  unlock_bucket(b);
  wake_chosen(chosen);
  return n;
}

namespace {

// A wake mark: the key whose designated wake has not run yet, or 0.
struct alignas(64) WakeMark {
  std::atomic<uintptr_t> key{0};
};
constexpr uintptr_t kWakeMarks = 128;
WakeMark g_wake_marks[kWakeMarks];

std::atomic<uintptr_t>& wake_mark(const void* key) noexcept {
  return g_wake_marks[(reinterpret_cast<uintptr_t>(key) >> 6) % kWakeMarks].key;
}

}  // namespace

// The fences order the mark against the lock word, whatever order the lock
// uses for the word: a release that changed the word and then finds a wake
// pending, and a woken thread that reports and then looks at the word (it
// parks on it), cannot both miss the other's step. So either the release
// wakes, or the woken thread sees the released word and does not sleep.
void wake_one_designated(const void* key, uint32_t tags) noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!mark_designated_wake(key)) {
    if (designated_wake_pending(key)) return;  // a woken thread is on its way
    unpark(key, 1, tags);                      // the slot is another key's
    return;
  }
  if (unpark(key, 1, tags) > 0) return;
  // Nobody was parked: no one will clear the mark but us, and a thread may
  // have parked while it stood.
  designated_waker_ran(key);
  unpark(key, 1, tags);
}

bool mark_designated_wake(const void* key) noexcept {
  uintptr_t seen = 0;
  return wake_mark(key).compare_exchange_strong(seen, reinterpret_cast<uintptr_t>(key), std::memory_order_seq_cst,
                                                std::memory_order_seq_cst);
}

void designated_waker_ran(const void* key) noexcept {
  uintptr_t mine = reinterpret_cast<uintptr_t>(key);
  wake_mark(key).compare_exchange_strong(mine, 0, std::memory_order_seq_cst, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

bool designated_wake_pending(const void* key) noexcept {
  return wake_mark(key).load(std::memory_order_seq_cst) == reinterpret_cast<uintptr_t>(key);
}

int parked_count(const void* key) noexcept {
  Bucket& b = bucket_of(key);
  lock_bucket(b);
  int n = 0;
  for (ParkRecord* r = b.head; r != nullptr; r = r->next) n += r->key == key;
  unlock_bucket(b);
  return n;
}

void park_after_fork() noexcept {
  for (Bucket& b : g_buckets) {
    b.lock.store(0, std::memory_order_relaxed);
    b.wake_all_on_release.store(false, std::memory_order_relaxed);
    b.head = b.tail = nullptr;
  }
  // A thread woken in the parent that had not run yet at the fork never runs
  // here: its mark would stop every later wake of that lock in the child.
  for (WakeMark& m : g_wake_marks) m.key.store(0, std::memory_order_relaxed);
}

}  // namespace panicstop::detail
