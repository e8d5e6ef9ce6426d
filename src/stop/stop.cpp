// The stopper and the stop-signal handler. Crash path: raw system calls only,
// memory reserved up front, no locks but atomics and futexes.
#include "stop/stop.hpp"

#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <fcntl.h>
#include <ucontext.h>

#include "stop/emulator.hpp"
#include "stop/proc_dir.hpp"
#include "sys/format.hpp"
#include "sys/syscall.hpp"
#include "thread/altstack.hpp"
#include "thread/program_signals.hpp"
#include "thread/signal_sections.hpp"
#include "thread/slot.hpp"

namespace panicstop::detail {

namespace {

// Two open-addressing sets of tids, tagged with the stop generation so that a
// new stop never has to clear them: an entry of an older generation is empty.
inline constexpr size_t kSetEntries = 65536;
using TidSet = std::atomic<uint64_t>;
TidSet* g_signaled = nullptr;  // written by the stopper only
TidSet* g_acked = nullptr;     // written by the stopped threads
int g_not_stopped[kMaxNotStoppedListed];

std::atomic<int> g_stopper_tid{0};
std::atomic<uint32_t> g_generation{0};
std::atomic<uint32_t> g_active{0};      // StopKind of the stop in progress, 0 = none
std::atomic<bool> g_forever{false};     // a hard stop happened: nobody resumes
std::atomic<uint32_t> g_acks{0};        // futex word the stopper sleeps on
std::atomic<uint32_t> g_ack_target{UINT32_MAX};
std::atomic<uint32_t> g_resume_seq{0};  // futex word the stopped threads park on
std::atomic<int> g_capture_tid{0};
std::atomic<bool> g_handlers_installed{false};
// The stopper's last soft stop caught every thread: a hard stop by the same
// thread (a panic inside kdb) keeps them parked instead of stopping again.
std::atomic<bool> g_soft_complete{false};
std::atomic<uint32_t> g_soft_stopped{0};

inline uint64_t key(uint32_t gen, int tid) { return (uint64_t(gen) << 32) | uint32_t(tid); }

// Returns true if tid was not in the set for gen and is now.
bool set_insert(TidSet* set, uint32_t gen, int tid) noexcept {
  uint64_t want = key(gen, tid);
  size_t i = (uint32_t(tid) * 2654435761u) % kSetEntries;
  for (size_t probes = 0; probes < kSetEntries; ++probes, i = (i + 1) % kSetEntries) {
    uint64_t e = set[i].load(std::memory_order_acquire);
    for (;;) {
      if (e == want) return false;
      if (uint32_t(e >> 32) == gen) break;  // taken by another tid of this stop
      if (set[i].compare_exchange_weak(e, want, std::memory_order_acq_rel)) return true;
    }
  }
  return false;  // full: more than kSetEntries threads
}

bool set_contains(const TidSet* set, uint32_t gen, int tid) noexcept {
  uint64_t want = key(gen, tid);
  size_t i = (uint32_t(tid) * 2654435761u) % kSetEntries;
  for (size_t probes = 0; probes < kSetEntries; ++probes, i = (i + 1) % kSetEntries) {
    uint64_t e = set[i].load(std::memory_order_acquire);
    if (e == want) return true;
    if (uint32_t(e >> 32) != gen) return false;
  }
  return false;
}

void acknowledge(int tid, uint32_t gen) noexcept {
  if (!set_insert(g_acked, gen, tid)) return;
  // seq_cst on both sides (here and where the stopper publishes its target
  // and then reads the count): otherwise the store of the target and the load
  // of the count may pass each other and the last wake-up be lost.
  uint32_t n = g_acks.fetch_add(1, std::memory_order_seq_cst) + 1;
  if (n >= g_ack_target.load(std::memory_order_seq_cst)) sys::futex_wake(&g_acks, 1);
}

void stop_signal_handler(int sig, siginfo_t* info, void* uc) {
  int saved_errno = errno;
  ensure_altstack(uc);
  int tid = sys::gettid();
  if (sig == hard_stop_signal() && g_capture_tid.load(std::memory_order_acquire) == tid) {
    save_context(claim_slot_in_signal_handler(), info, uc);
    g_capture_tid.store(0, std::memory_order_release);
    errno = saved_errno;
    return;
  }
  // The program's own use of the same signal number (the JDK interrupts
  // blocked I/O with it): its handler runs, and nothing stops. While a stop
  // is in progress, a kill() of this process may also be the stopper's,
  // sent past a full signal queue (retry_full_queue_sends).
  if (!is_own_signal(info) && !(g_active.load(std::memory_order_acquire) != 0 && may_be_own_process_signal(info))) {
    deliver_reserved_to_program(sig, info, uc);
    errno = saved_errno;
    return;
  }
  // A soft stop (kdb, a live dump) never stops a thread inside a spinlock
  // section: it is noted and sent again when the section ends. The hard stop
  // is the panic's NMI and acts at once.
  if (sig == soft_stop_signal() && defer_in_spin_section(sig)) {
    errno = saved_errno;
    return;
  }
  uint32_t kind = g_active.load(std::memory_order_acquire);
  if (kind == 0 || g_stopper_tid.load(std::memory_order_acquire) == tid) {
    errno = saved_errno;  // install's altstack broadcast, or a signal that arrived after a restart
    return;
  }
  ThreadSlot* slot = claim_slot_in_signal_handler();
  bool real_slot = is_slot_address(slot);
  uint32_t gen = g_generation.load(std::memory_order_acquire);
  uint32_t resume_seen = g_resume_seq.load(std::memory_order_acquire);
  // A hard stop interrupting a thread parked by a soft stop: acknowledge and
  // return to the outer handler, which keeps parking (now forever) with the
  // context it saved first.
  bool nested = real_slot && slot->stop_state.load(std::memory_order_acquire) == StopState::kStopped;
  if (real_slot && !nested) {
    // A thread that lost the panic election saved its own fault context: keep it.
    bool election_loser = slot->panic_signal != 0 || slot->panic_message[0] != '\0';
    if (!(election_loser && slot->context.valid)) save_context(slot, info, uc);
    slot->stop_generation.store(gen, std::memory_order_relaxed);
    slot->stop_state.store(StopState::kStopped, std::memory_order_release);
  }
  acknowledge(tid, gen);
  if (nested) {
    errno = saved_errno;
    return;
  }
  for (;;) {
    uint32_t seq = g_resume_seq.load(std::memory_order_acquire);
    if (!g_forever.load(std::memory_order_acquire) && seq != resume_seen) break;
    sys::futex_wait(&g_resume_seq, seq);
  }
  if (real_slot) {
    slot->stop_state.store(StopState::kRunning, std::memory_order_release);
    if (slot->claimed_by_stop) release_slot(slot);
  }
  errno = saved_errno;
}

// Threads whose stop signal found the user's signal queue full (EAGAIN:
// RLIMIT_SIGPENDING counts every queued real-time signal of the user's
// processes, in every process). These are sent again until the stop ends,
// as stopped threads free entries; while the queue stays full, a kill() of
// the process (which the kernel delivers even then) stops one more thread
// each time. Beyond this many they stay refused.
inline constexpr uint32_t kMaxRetriedSends = 64;

struct Scan {
  uint32_t gen;
  int sig;
  int self;
  int pid;
  uint32_t signaled;
  bool new_found;
  uint32_t refused;   // sends that failed for another reason than an exit
  int refused_errno;  // the first such failure's errno
  uint32_t retry_count;  // of refused, those in retry[]
  int retry[kMaxRetriedSends];
  bool masked;           // this thread blocks sig (process-wide sends), until
  uint64_t saved_mask;   // the stop ends: then this mask is back
};

void count_refusal(Scan* s, long sent) noexcept {
  ++s->refused;
  if (s->refused_errno == 0) s->refused_errno = int(-sent);
}

void signal_one(int tid, void* arg) noexcept {
  auto* s = static_cast<Scan*>(arg);
  if (tid == s->self || !set_insert(g_signaled, s->gen, tid)) return;
  s->new_found = true;
  ++s->signaled;
  const long sent = send_own_signal(tid, s->sig);  // ESRCH: it exited; verify() counts it
  if (sent < 0 && sent != -ESRCH) {
    count_refusal(s, sent);
    if (sent == -EAGAIN && s->retry_count < kMaxRetriedSends) s->retry[s->retry_count++] = tid;
  }
}

// A refused thread that stopped anyway (a process-wide send reached it) is
// no longer a refusal.
void drop_stopped_refusals(Scan* s) noexcept {
  uint32_t kept = 0;
  for (uint32_t i = 0; i < s->retry_count; ++i) {
    if (set_contains(g_acked, s->gen, s->retry[i])) --s->refused;
    else s->retry[kept++] = s->retry[i];
  }
  s->retry_count = kept;
  if (s->refused == 0) s->refused_errno = 0;
}

// Sends again where the queue was full. A send that now succeeds (or finds
// the thread gone, which verify() counts) is no longer a refusal. If the
// queue is still full, one kill() of the process: the kernel gives it,
// without its siginfo, to a thread that does not block it, which a stopped
// thread and this one do.
void retry_full_queue_sends(Scan* s) noexcept {
  drop_stopped_refusals(s);
  uint32_t kept = 0;
  for (uint32_t i = 0; i < s->retry_count; ++i) {
    const long sent = send_own_signal(s->retry[i], s->sig);
    if (sent == -EAGAIN) s->retry[kept++] = s->retry[i];
    else if (sent == 0 || sent == -ESRCH) --s->refused;
  }
  s->retry_count = kept;
  if (kept != 0) {
    if (!s->masked) {  // else the kernel gives it to this thread first
      uint64_t block = uint64_t(1) << (s->sig - 1);
      s->masked = sys::rt_sigprocmask(SIG_BLOCK, &block, &s->saved_mask) == 0;
    }
    send_own_signal_to_process(s->sig);
  }
  if (s->refused == 0) s->refused_errno = 0;
}

struct Tally {
  uint32_t stopped = 0, exited = 0, pending = 0;
  uint32_t kernel_workers = 0;  // read_task_stat(): not stopped, not waited for
  uint32_t not_waited_for() const noexcept { return exited + kernel_workers; }
};

Tally verify(uint32_t gen, int pid, bool record) noexcept {
  Tally t;
  for (size_t i = 0; i < kSetEntries; ++i) {
    uint64_t e = g_signaled[i].load(std::memory_order_relaxed);
    if (uint32_t(e >> 32) != gen) continue;
    int tid = int(uint32_t(e));
    if (set_contains(g_acked, gen, tid)) {
      ++t.stopped;
    } else if (sys::tgkill(pid, tid, 0) == -ESRCH) {
      ++t.exited;
    } else if (const TaskKind kind = task_kind(tid); kind != TaskKind::kLive) {
      ++(kind == TaskKind::kExited ? t.exited : t.kernel_workers);
    } else {
      if (record && t.pending < kMaxNotStoppedListed) g_not_stopped[t.pending] = tid;
      ++t.pending;
    }
  }
  return t;
}

// How long the stopper sleeps before checking whether a silent thread exited.
inline constexpr int64_t kRecheckNs = 2'000'000;

// When a stop that began at start_ns and last saw an acknowledgement at
// progress_ns gives up on the threads still silent.
inline int64_t stop_deadline(int64_t start_ns, int64_t progress_ns, int64_t timeout_ns) noexcept {
  const int64_t from_progress = progress_ns + timeout_ns;
  const int64_t bound = start_ns + kMaxStopTimeouts * timeout_ns;
  return from_progress < bound ? from_progress : bound;
}

}  // namespace

bool reserve_stop_memory() noexcept {
  if (__atomic_load_n(&g_acked, __ATOMIC_ACQUIRE) != nullptr) return true;
  void* a = sys::mmap_anonymous(sizeof(TidSet) * kSetEntries, false);
  void* b = sys::mmap_anonymous(sizeof(TidSet) * kSetEntries, false);
  if (a == nullptr || b == nullptr) return false;
  g_signaled = static_cast<TidSet*>(a);
  // Publish the acknowledgement table last: seeing it implies seeing both.
  __atomic_store_n(&g_acked, static_cast<TidSet*>(b), __ATOMIC_RELEASE);
  return true;
}

// The calling thread's TLS base. Only a thread can read its own, which is why
// every thread saves it for itself in the stop handler.
static uintptr_t current_tls_base() noexcept {
#if defined(__x86_64__)
  uintptr_t fs = 0;
  sys::raw_syscall(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, &fs);
  return fs;
#elif defined(__aarch64__)
  uintptr_t tp;
  __asm__ volatile("mrs %0, tpidr_el0" : "=r"(tp));
  return tp;
#endif
}

void save_context(ThreadSlot* slot, const void* info, const void* ucontext) noexcept {
  bool shared = slot == overflow_slot();
  if (!is_slot_address(slot) && !shared) return;
  SavedContext& c = slot->context;
  c.valid = false;
  // The overflow slot names the one thread whose context it holds.
  if (shared) slot->tid.store(sys::gettid(), std::memory_order_relaxed);
  __builtin_memcpy(&c.siginfo, info, sizeof c.siginfo);
  __builtin_memcpy(&c.ucontext, ucontext, sizeof c.ucontext);
  c.fpstate_size = 0;
  c.tls_base = current_tls_base();
#if defined(__x86_64__)
  const auto* uc = static_cast<const ucontext_t*>(ucontext);
  const auto* fp = reinterpret_cast<const unsigned char*>(uc->uc_mcontext.fpregs);
  if (fp != nullptr) {
    // The FXSAVE area is 512 bytes; if the kernel wrote an XSAVE frame, its
    // software-reserved bytes (offset 464) carry the magic and the xstate size.
    uint32_t size = 512;
    uint32_t magic1, xstate_size;
    __builtin_memcpy(&magic1, fp + 464, 4);
    __builtin_memcpy(&xstate_size, fp + 464 + 16, 4);
    if (magic1 == 0x46505853u && xstate_size >= 512) size = xstate_size;
    if (size > sizeof c.fpstate) size = sizeof c.fpstate;  // AMX tiles do not fit; the legacy area always does
    __builtin_memcpy(c.fpstate, fp, size);
    c.fpstate_size = size;
    c.ucontext.uc_mcontext.fpregs = reinterpret_cast<fpregset_t>(c.fpstate);
  }
  c.stack_pointer = uintptr_t(uc->uc_mcontext.gregs[REG_RSP]);
#elif defined(__aarch64__)
  // The FP/SIMD record lives inside uc_mcontext.__reserved, copied with the ucontext.
  const auto* uc = static_cast<const ucontext_t*>(ucontext);
  c.stack_pointer = uintptr_t(uc->uc_mcontext.sp);
#endif
  c.stack_lo = 0;  // found from /proc/self/maps by the snapshot, not here
  c.stack_hi = 0;
  c.valid = true;
}

namespace {

// The threads of the slot registry that still exist: all there is to go by
// when /proc cannot be read.
int for_each_registered_thread(void (*fn)(int tid, void* arg) noexcept, void* arg) noexcept {
  ThreadSlot* slots = slot_array();
  if (slots == nullptr) return -1;
  int pid = sys::getpid();
  size_t n = slot_count();
  int count = 0;
  for (size_t i = 0; i < n; ++i) {
    if (slots[i].in_use.load(std::memory_order_acquire) != 1) continue;
    int tid = slots[i].tid.load(std::memory_order_relaxed);
    if (tid <= 0 || sys::tgkill(pid, tid, 0) == -ESRCH) continue;
    fn(tid, arg);
    ++count;
  }
  // Threads beyond kMaxThreads share the overflow slot; the registry keeps
  // their tids apart.
  struct Overflow {
    void (*fn)(int, void*) noexcept;
    void* arg;
    int pid;
    int count;
  } overflow{fn, arg, pid, 0};
  for_each_overflow_thread(
      [](int tid, void* p) noexcept {
        auto* o = static_cast<Overflow*>(p);
        if (sys::tgkill(o->pid, tid, 0) == -ESRCH) return;
        o->fn(tid, o->arg);
        ++o->count;
      },
      &overflow);
  return count + overflow.count;
}

}  // namespace

int for_each_thread(void (*fn)(int tid, void* arg) noexcept, void* arg, ThreadSource* source) noexcept {
  long fd = proc_open(ProcScope::kProcess, "task", O_RDONLY | O_DIRECTORY);
  if (fd < 0) {
    int n = for_each_registered_thread(fn, arg);
    if (source != nullptr) *source = n >= 0 ? ThreadSource::kRegistry : ThreadSource::kNone;
    return n;
  }
  if (source != nullptr) *source = ThreadSource::kProc;
  alignas(8) char buf[8192];
  int count = 0;
  for (;;) {
    long n = sys::getdents64(int(fd), buf, sizeof buf);
    if (n == -EINTR) continue;
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      // struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, name.
      unsigned short reclen;
      __builtin_memcpy(&reclen, buf + off + 16, sizeof reclen);
      const char* name = buf + off + 19;
      int tid = 0;
      bool digits = name[0] != '\0';
      for (const char* p = name; *p != '\0'; ++p) {
        if (*p < '0' || *p > '9') digits = false;
        else tid = tid * 10 + (*p - '0');
      }
      if (digits && tid > 0 && !is_emulator_task(tid)) {
        fn(tid, arg);
        ++count;
      }
      off += reclen;
    }
  }
  sys::close(int(fd));
  return count;
}

TaskKind task_kind(int tid) noexcept {
  // A missing file means a missing thread only inside a real procfs (not in
  // an empty directory mounted over /proc).
  if (!proc_dir_available()) return TaskKind::kLive;
  const TaskStat stat = read_task_stat(tid);
  if (stat.state == '\0' || stat.state == 'Z' || stat.state == 'X') return TaskKind::kExited;
  return stat.kernel_worker ? TaskKind::kKernelWorker : TaskKind::kLive;
}

StopResult stop_other_threads(StopKind kind, int64_t timeout_ns) noexcept {
  StopResult r;
  r.start_ns = sys::monotonic_ns();
  r.not_stopped_tids = g_not_stopped;
  if (!stop_handlers_installed() || !reserve_stop_memory()) {
    r.end_ns = sys::monotonic_ns();
    return r;
  }
  int self = sys::gettid();
  int prev = 0;
  if (!g_stopper_tid.compare_exchange_strong(prev, self, std::memory_order_acq_rel) && prev != self) {
    if (kind == StopKind::kSoft) {
      r.busy = true;
      r.end_ns = sys::monotonic_ns();
      return r;
    }
    g_stopper_tid.store(self, std::memory_order_release);
  }
  if (kind == StopKind::kHard && prev == self && g_soft_complete.load(std::memory_order_acquire)) {
    // FreeBSD's `if (!kdb_active) stop_cpus_hard()`: this thread's soft stop
    // already holds every other thread, and making it permanent is all a
    // panic needs. Signalling again would only disturb the saved contexts.
    g_forever.store(true, std::memory_order_release);
    g_active.store(uint32_t(kind), std::memory_order_release);
    r.ok = true;
    r.stopped = g_soft_stopped.load(std::memory_order_relaxed);
    r.end_ns = sys::monotonic_ns();
    return r;
  }
  g_soft_complete.store(false, std::memory_order_release);
  if (kind == StopKind::kHard) g_forever.store(true, std::memory_order_release);
  uint32_t gen = g_generation.load(std::memory_order_relaxed) + 1;
  if (gen == 0) gen = 1;  // 0 marks an empty set entry
  g_generation.store(gen, std::memory_order_release);
  g_acks.store(0, std::memory_order_release);
  g_ack_target.store(UINT32_MAX, std::memory_order_release);
  g_active.store(uint32_t(kind), std::memory_order_seq_cst);

  open_proc_dir();  // checks the descriptor kept since install is still procfs's root
  Scan scan{gen, kind == StopKind::kHard ? hard_stop_signal() : soft_stop_signal(), self, sys::getpid(), 0, false,
            0, 0, 0, {}, false, 0};
  // A program that installed its handler with a raw system call bypassed the
  // interposer: put panicstop's back before relying on it, and say so.
  r.reclaimed_from = reclaim_signal(scan.sig);
  if (timeout_ns < 0) timeout_ns = 0;
  int64_t deadline = stop_deadline(r.start_ns, r.start_ns, timeout_ns);
  uint32_t acks_seen = 0;
  uint32_t exited = 0;
  for (;;) {
    if (scan.retry_count != 0) retry_full_queue_sends(&scan);
    scan.new_found = false;
    ThreadSource source = ThreadSource::kNone;
    int found = for_each_thread(signal_one, &scan, &source);
    if (source == ThreadSource::kRegistry) r.from_registry = true;
    ++r.scans;
    // A thread the signal never reached never answers: not waited for.
    const uint32_t reached = scan.signaled - exited;
    uint32_t target = reached > scan.refused ? reached - scan.refused : 0;
    g_ack_target.store(target, std::memory_order_seq_cst);
    uint32_t acks = g_acks.load(std::memory_order_seq_cst);
    int64_t now = sys::monotonic_ns();
    if (acks != acks_seen) {  // progress: the silent threads get a timeout from now
      acks_seen = acks;
      deadline = stop_deadline(r.start_ns, now, timeout_ns);
    }
    bool settled = found >= 0 && !scan.new_found;
    if ((settled && acks >= target) || now >= deadline || found < 0) {
      Tally t = verify(gen, scan.pid, /*record=*/false);
      if (settled && t.pending == 0) {
        r.ok = true;
        r.stopped = t.stopped;
        r.exited = t.exited;
        r.kernel_workers = t.kernel_workers;
        break;
      }
      // Refused threads are not waited for, unless a full queue may yet
      // take their signal.
      if (now >= deadline || found < 0 || (settled && t.pending <= scan.refused && scan.retry_count == 0)) {
        t = verify(gen, scan.pid, /*record=*/true);
        r.stopped = t.stopped;
        r.exited = t.exited;
        r.kernel_workers = t.kernel_workers;
        r.not_stopped = t.pending;
        break;
      }
      exited = t.not_waited_for();
      if (t.pending == 0) continue;  // only new threads are missing: scan again
      // Otherwise some known thread is still running: wait for it below.
    }
    // Everyone signalled so far has answered while new threads were still
    // being found: scan again at once rather than sleep.
    if (found >= 0 && !settled && acks >= target) continue;
    int64_t wake = now + kRecheckNs < deadline ? now + kRecheckNs : deadline;
    if (sys::futex_wait_until(&g_acks, acks, wake) == -ETIMEDOUT) exited = verify(gen, scan.pid, false).not_waited_for();
  }
  r.end_ns = sys::monotonic_ns();
  if (scan.masked) sys::rt_sigprocmask(SIG_SETMASK, &scan.saved_mask, nullptr);
  drop_stopped_refusals(&scan);
  r.refused = scan.refused;
  r.refused_errno = scan.refused_errno;
  if (kind == StopKind::kSoft && r.ok) {
    g_soft_stopped.store(r.stopped, std::memory_order_relaxed);
    g_soft_complete.store(true, std::memory_order_release);
  }
  return r;
}

bool stop_acknowledged(int tid) noexcept {
  const TidSet* acked = __atomic_load_n(&g_acked, __ATOMIC_ACQUIRE);
  uint32_t gen = g_generation.load(std::memory_order_acquire);
  return g_active.load(std::memory_order_acquire) != 0 && acked != nullptr && gen != 0 && tid > 0 &&
         set_contains(acked, gen, tid);
}

void restart_stopped_threads() noexcept {
  if (g_forever.load(std::memory_order_acquire)) return;
  int self = sys::gettid();
  if (g_stopper_tid.load(std::memory_order_acquire) != self) return;
  g_soft_complete.store(false, std::memory_order_release);
  g_active.store(0, std::memory_order_release);
  g_resume_seq.fetch_add(1, std::memory_order_acq_rel);
  sys::futex_wake(&g_resume_seq, INT_MAX);
  g_stopper_tid.store(0, std::memory_order_release);
}

void reset_stop_after_fork() noexcept {
  // Whatever stop was in progress stopped threads of the parent; the child
  // has only the forking thread, which is running.
  g_stopper_tid.store(0, std::memory_order_relaxed);
  g_active.store(0, std::memory_order_relaxed);
  g_forever.store(false, std::memory_order_relaxed);
  g_soft_complete.store(false, std::memory_order_relaxed);
  g_soft_stopped.store(0, std::memory_order_relaxed);
  g_capture_tid.store(0, std::memory_order_relaxed);
  g_acks.store(0, std::memory_order_relaxed);
  g_ack_target.store(UINT32_MAX, std::memory_order_release);
}

namespace {

// The calling thread's slot, the shared one for a thread beyond the slots.
ThreadSlot* own_slot(int tid) noexcept {
  ThreadSlot* slot = find_slot_by_tid(tid);
  if (slot == nullptr && overflow_slot()->tid.load(std::memory_order_relaxed) == tid) slot = overflow_slot();
  return slot;
}

}  // namespace

void save_own_context_via_signal() noexcept {
  int tid = sys::gettid();
  ThreadSlot* slot = own_slot(tid);
  bool captured = false;
  if (stop_handlers_installed()) {
    if (slot != nullptr) slot->context.valid = false;  // an earlier stop's
    g_capture_tid.store(tid, std::memory_order_release);
    signal_self(hard_stop_signal());  // goes even when the signal queue is full
    // Delivered before the send returns to user space when unblocked; if the
    // caller blocked it, nothing is saved and the flag is cleared here.
    captured = g_capture_tid.load(std::memory_order_acquire) == 0;
    g_capture_tid.store(0, std::memory_order_release);
    // A thread without a slot before has one now: the handler claimed it.
    if (slot == nullptr) slot = own_slot(tid);
  }
  if (slot == nullptr) return;
  if (!captured || !slot->context.valid) {
    // No signal came (a seccomp filter refused the send, the caller blocks the
    // signal, or install() never ran): a context made here, with no register
    // but the three the caller's frame needs, set below, still starts the
    // walk of this thread's stack, the one a panic is about.
    siginfo_t info{};
    ucontext_t uc{};
    save_context(slot, &info, &uc);
    if (!slot->context.valid) return;
  }
  // The context is of a point inside this call (inside the system call
  // wrapper, a frame of its own in an unoptimized build), whose frames the
  // caller's next calls overwrite long before the dumps read the stack: a
  // walk from it found garbage for the frames above. Make it the caller's, as
  // it is just after this call returns (pc the return address, sp this
  // frame's CFA, the frame pointer the caller's; on aarch64 x30 the return
  // address too); the caller's frame outlives the dumps, since the panic path
  // never returns into it and kdb keeps it alive for the session.
  const uintptr_t ret = uintptr_t(__builtin_extract_return_addr(__builtin_return_address(0)));
  const uintptr_t cfa = uintptr_t(__builtin_dwarf_cfa());
  const uintptr_t caller_fp = *static_cast<const uintptr_t*>(__builtin_frame_address(0));
  auto& mc = slot->context.ucontext.uc_mcontext;
#if defined(__aarch64__)
  mc.pc = ret;
  mc.regs[30] = ret;
  mc.regs[29] = caller_fp;
  mc.sp = cfa;
#elif defined(__x86_64__)
  mc.gregs[REG_RIP] = greg_t(ret);
  mc.gregs[REG_RBP] = greg_t(caller_fp);
  mc.gregs[REG_RSP] = greg_t(cfa);
#endif
  slot->context.stack_pointer = cfa;
}

bool stop_handlers_installed() noexcept { return g_handlers_installed.load(std::memory_order_acquire); }
void mark_stop_handlers_installed() noexcept { g_handlers_installed.store(true, std::memory_order_release); }

// The handler is referenced by stop_setup.cpp.
void (*stop_signal_handler_address() noexcept)(int, siginfo_t*, void*) { return stop_signal_handler; }

}  // namespace panicstop::detail
