// The program's signal actions (program_signals.hpp) and the interposed C
// library functions that keep them. Called from signal handlers, the
// program's and panicstop's: raw system calls, no locks but a writer flag
// taken with every signal blocked.
#include "thread/program_signals.hpp"

#include <linux/kcmp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <sys/auxv.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <new>

#include "sys/syscall.hpp"
#include "thread/altstack.hpp"
#include "thread/handler_call.hpp"
#include "thread/libc_next.hpp"
#include "thread/rseq.hpp"
#include "thread/signal_sections.hpp"

extern "C" void panicstop_call_on_stack(void* arg, void (*fn)(void*), void* top) noexcept;

namespace panicstop::detail {

namespace {

constexpr uint64_t bit(int sig) { return uint64_t(1) << (sig - 1); }
// The faults the kernel delivers for an instruction: blocking one makes the
// kernel end the process with no handler called.
constexpr uint64_t kFaultSignals =
    bit(SIGSEGV) | bit(SIGBUS) | bit(SIGILL) | bit(SIGFPE) | bit(SIGTRAP) | bit(SIGSYS);
// Faults whose handler, returning with nothing changed, makes the same
// instruction fault again at once. SIGTRAP and SIGSYS resume after the
// instruction that raised them.
constexpr uint64_t kRetriedFaults = bit(SIGSEGV) | bit(SIGBUS) | bit(SIGILL) | bit(SIGFPE);

// Code inside a program's handler runs just below the frame it was called
// from, on the same stack; code anywhere else means the handler was left
// (siglongjmp, or an unwind: forget_abandoned_handlers()).
inline constexpr uintptr_t kNestedFramesSpan = 512 * 1024;

struct TakenSignal {
  std::atomic<bool> taken{false};
  std::atomic<bool> writing{false};  // one writer at a time
  std::atomic<uint32_t> seq{0};      // odd while `program` is being written
  SignalRole role = SignalRole::kFatal;
  SignalHandler handler = nullptr;
  int flags = 0;
  sigset_t mask{};
  struct sigaction program {};  // the program's action
};
TakenSignal g_signals[65];
std::atomic<bool> g_any_taken{false};
std::atomic<GaveUpFn> g_gave_up{nullptr};
uintptr_t g_own_cookie = 0;
uintptr_t g_page_size = 0;  // set by take_over_signal(), for read_gap()
void* g_restorer = nullptr;  // the C library's sigreturn trampoline, for reclaim_signal()

// Per thread: the program handlers of fatal signals running on this thread,
// the fault signals the program believes it blocks, and the last fault whose
// handler returned without changing anything.
struct ThreadSignals {
  uint32_t depth;
  uint64_t emulated_blocked;
  uint64_t pending;  // sent while emulated-blocked: raised again when unblocked
  ProgramFault outer;
  // Where the outermost program handler was called from, and the emulated
  // mask before it: a handler that left with siglongjmp (a probe recovering
  // from its fault) or by an unwind never returns, and its depth must not
  // outlive it.
  uintptr_t program_sp;  // where the program's handler runs (another stack without SA_ONSTACK)
  // A handler run on the interrupted stack sits below the red zone it
  // skipped and below words panicstop marks, [program_sp, gap_end):
  // untouched while the handler runs, and crossed by any call chain that
  // later comes back down past it after an unwind that was not a longjmp (a
  // Lisp's non-local exit, an exception thrown through the signal frame).
  // The marks (new at each call) and the red zone's hash tell the two apart
  // (gap_end 0: nothing recorded).
  uintptr_t gap_end;
  uint64_t gap_hash;
  uint64_t mark_call;  // which call the marks are of
  bool moved;          // the handler runs on the interrupted stack, not where panicstop's did
  uint64_t blocked_before_outer;
  // The alternate stack as registered before the outermost handler running
  // on the interrupted stack replaced it (run_on_interrupted_stack()).
  bool altstack_replaced;
  stack_t registered_altstack;
  // The rseq area, let go while the outermost handler (a one-shot one) runs.
  RseqHold rseq;
  int unfixed_sig;
  uintptr_t unfixed_addr;
  uint64_t unfixed_regs;
  ResumedFault resumed;
};
__thread ThreadSignals tls_signals __attribute__((tls_model("initial-exec")));

bool valid(int sig) { return sig > 0 && sig < 65; }

// The kernel's flag for a handler that brings its own sigreturn trampoline;
// glibc sets it on every action and does not export the name.
constexpr unsigned long kSaRestorer = 0x04000000;

TakenSignal* taken(int sig) noexcept {
  if (!valid(sig) || !g_any_taken.load(std::memory_order_acquire)) return nullptr;
  TakenSignal& t = g_signals[sig];
  return t.taken.load(std::memory_order_acquire) ? &t : nullptr;
}

uintptr_t handler_address(const struct sigaction& a) { return reinterpret_cast<uintptr_t>(a.sa_handler); }
bool is_function(const struct sigaction& a) {
  uintptr_t h = handler_address(a);
  return h != reinterpret_cast<uintptr_t>(SIG_DFL) && h != reinterpret_cast<uintptr_t>(SIG_IGN);
}
bool is_ignored(const struct sigaction& a) { return handler_address(a) == reinterpret_cast<uintptr_t>(SIG_IGN); }

uint64_t low_word(const sigset_t& s) { return s.__val[0]; }

void copy_bytes(void* to, const void* from, size_t n) {
  auto* d = static_cast<volatile unsigned char*>(to);
  const auto* s = static_cast<const volatile unsigned char*>(from);
  for (size_t i = 0; i < n; ++i) d[i] = s[i];
}

// What the kernel runs for a taken signal, given the program's action.
struct sigaction kernel_action(const TakenSignal& t, const struct sigaction& program) {
  struct sigaction k {};
  k.sa_sigaction = t.handler;
  k.sa_flags = t.flags;
  k.sa_mask = t.mask;
  if (is_function(program)) {
    // The program's handler runs inside panicstop's: the kernel applies the
    // program's mask (a fatal signal's handler then runs exactly as it asked)
    // and its choice of restarting system calls (the JDK's interrupt signal
    // must make a blocked read return EINTR).
    if (t.role != SignalRole::kReserved) {
      k.sa_mask = program.sa_mask;
      k.sa_mask.__val[0] &= ~unblockable_signals();
    }
    k.sa_flags = (t.flags & ~SA_RESTART) | (program.sa_flags & SA_RESTART);
  }
  return k;
}

void read_program(TakenSignal& t, struct sigaction* out) noexcept {
  for (;;) {
    uint32_t before = t.seq.load(std::memory_order_acquire);
    if ((before & 1) == 0) {
      copy_bytes(out, &t.program, sizeof *out);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (t.seq.load(std::memory_order_relaxed) == before) return;
    }
    sys::sched_yield();  // a writer on another thread is in the middle
  }
}

void write_program(int sig, TakenSignal& t, const struct sigaction& act) noexcept {
  // Every signal blocked: a handler on this thread must not find the writer
  // flag taken by the code it interrupted.
  uint64_t all = ~uint64_t(0), old = 0;
  sys::rt_sigprocmask(SIG_SETMASK, &all, &old);
  while (t.writing.exchange(true, std::memory_order_acquire)) sys::sched_yield();
  t.seq.fetch_add(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  copy_bytes(&t.program, &act, sizeof act);
  t.seq.fetch_add(1, std::memory_order_release);
  struct sigaction k = kernel_action(t, act);
  libc_next().sigaction(sig, &k, nullptr);
  t.writing.store(false, std::memory_order_release);
  sys::rt_sigprocmask(SIG_SETMASK, &old, nullptr);
}

// fork(): a thread of the parent in the middle of write_program() would leave
// its signal's record flagged in the child for good, and every sigaction() of
// that signal there (a child resetting its handlers before exec) would wait
// for a thread the child does not have. So a fork waits for the writes in
// progress (each a few system calls) and keeps new ones out until it is done.
void hold_writers_for_fork() noexcept {
  for (TakenSignal& t : g_signals)
    while (t.writing.exchange(true, std::memory_order_acquire)) sys::sched_yield();
}

void release_writers_after_fork() noexcept {
  for (TakenSignal& t : g_signals) t.writing.store(false, std::memory_order_release);
}

// The process these records belong to: the one that loaded panicstop, then
// each child of fork(). A process with another pid came from elsewhere (a
// vfork(), a raw clone()): in_vfork_child() tells which.
std::atomic<int> g_records_pid{0};

// A word the kernel empties in a child that gets a copy of the memory (a
// fork(), a clone() without CLONE_VM, atfork handlers run or not) and leaves
// as it is in one that runs on the parent's (vfork()): a page advised
// MADV_WIPEONFORK (Linux 4.14). Made by take_over_signal(); nullptr where the
// kernel refuses the advice (kcmp is asked then).
std::atomic<std::atomic<uint64_t>*> g_memory_mark{nullptr};

void mark_memory_as_the_records_owners() noexcept {
  if (std::atomic<uint64_t>* mark = g_memory_mark.load(std::memory_order_acquire))
    mark->store(1, std::memory_order_relaxed);
}

void make_memory_mark() noexcept {
  if (g_memory_mark.load(std::memory_order_acquire) != nullptr) return;
  void* page = sys::mmap_anonymous(g_page_size, false);
  if (page == nullptr) return;
  if (sys::raw_syscall(SYS_madvise, page, g_page_size, MADV_WIPEONFORK) != 0) {
    sys::munmap(page, g_page_size);
    return;
  }
  auto* mark = new (page) std::atomic<uint64_t>(1);
  g_memory_mark.store(mark, std::memory_order_release);
}

void release_writers_in_fork_child() noexcept {
  g_records_pid.store(sys::getpid(), std::memory_order_relaxed);
  mark_memory_as_the_records_owners();
  release_writers_after_fork();
}

// At load: a program forks before install() too.
__attribute__((constructor)) void keep_signal_records_whole_across_fork() {
  g_records_pid.store(sys::getpid(), std::memory_order_relaxed);
  pthread_atfork(hold_writers_for_fork, release_writers_after_fork, release_writers_in_fork_child);
}

void reset_to_default(int sig, TakenSignal& t) noexcept {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  write_program(sig, t, dfl);
}

void restore_altstack(ThreadSignals& st) noexcept {
  if (!st.altstack_replaced) return;
  st.altstack_replaced = false;
  sys::raw_syscall(SYS_sigaltstack, &st.registered_altstack, nullptr);
}

// A program handler installed without SA_ONSTACK runs, as the kernel would
// run it, on the stack the signal interrupted, not on panicstop's alternate
// stack: redis's crash handler keeps a 1 MiB buffer on its stack.
// Meanwhile panicstop's frames of that signal stay live on the alternate
// stack, and a nested signal (a fault in the handler, a stop, a kdb request)
// would be delivered from its top, over them. So while the handler runs the
// thread's alternate stack is another: the other of its two pool stacks
// (altstack.hpp), or else the same one ending below those frames. A handler
// that never returns (an unwind, SBCL's or GNAT's) leaves that registration
// behind; with two stacks the next signal still lands on a whole stack,
// whereas one ended below a left handler's frames made each successor run
// lower, until there was no room left to end it below the live frames.
struct ProgramCall {
  const struct sigaction* act;
  int sig;
  siginfo_t* info;
  void* uc;
  uint64_t mask;           // the mask the handler runs with
  uintptr_t live_bottom;   // panicstop's frames on the alternate stack end here
};

// Room a nested signal needs on what is left of the alternate stack.
inline constexpr uintptr_t kNestedRoom = 32 * 1024;
inline constexpr uintptr_t kRedZone = 128;

void run_on_interrupted_stack(void* p) noexcept {
  auto* c = static_cast<ProgramCall*>(p);
  stack_t registered{};
  sys::raw_syscall(SYS_sigaltstack, nullptr, &registered);
  registered.ss_flags &= ~SS_ONSTACK;
  ThreadSignals& st = tls_signals;
  stack_t meanwhile{};
  // Only for the outermost handler: for a nested one, the other stack holds
  // the outer signal's live frames.
  bool replace = (registered.ss_flags & SS_DISABLE) == 0 && st.depth == 1 && other_altstack(registered, &meanwhile);
  if (!replace) {
    uintptr_t base = reinterpret_cast<uintptr_t>(registered.ss_sp);
    replace = (registered.ss_flags & SS_DISABLE) == 0 && c->live_bottom > base + kNestedRoom &&
              c->live_bottom <= base + registered.ss_size;
    meanwhile.ss_sp = registered.ss_sp;
    meanwhile.ss_size = c->live_bottom - kRedZone - base;
  }
  if (replace) {
    // What a handler left by a long jump or an unwind gives back (the
    // outermost one's registration: the thread's own before any handler).
    if (st.depth == 1) {
      st.registered_altstack = registered;
      st.altstack_replaced = true;
    }
    sys::raw_syscall(SYS_sigaltstack, &meanwhile, nullptr);
  }
  sys::rt_sigprocmask(SIG_SETMASK, &c->mask, nullptr);
  call_program_handler(*c->act, c->sig, c->info, c->uc);
  uint64_t quiet = ~kFaultSignals;
  sys::rt_sigprocmask(SIG_SETMASK, &quiet, nullptr);
  if (replace) {
    sys::raw_syscall(SYS_sigaltstack, &registered, nullptr);
    if (st.depth == 1) st.altstack_replaced = false;
  }
}

uintptr_t interrupted_sp(const void* ucontext) noexcept {
  const auto* uc = static_cast<const ucontext_t*>(ucontext);
#if defined(__x86_64__)
  return uintptr_t(uc->uc_mcontext.gregs[REG_RSP]);
#elif defined(__aarch64__)
  return uintptr_t(uc->uc_mcontext.sp);
#endif
}

uintptr_t interrupted_pc(const void* ucontext) noexcept {
  const auto* uc = static_cast<const ucontext_t*>(ucontext);
#if defined(__x86_64__)
  return uintptr_t(uc->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
  return uintptr_t(uc->uc_mcontext.pc);
#endif
}

// The words panicstop marks below the red zone, and what each holds.
inline constexpr size_t kMarkWords = 8;
uint64_t mark_word(uint64_t call, size_t i) noexcept {
  return ((call * kMarkWords + i) ^ g_own_cookie) * 0x9e3779b97f4a7c15ull;
}

uint64_t fnv1a(const unsigned char* p, size_t n) noexcept {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// The marks and the red zone's hash as they are at [mark, red_end) of this
// thread's stack, read by the kernel so that a stack since unmapped gives an
// error instead of a fault.
enum class GapRead { kRead, kGone, kCannotTell };
GapRead read_gap(uintptr_t mark, uintptr_t red_end, uint64_t* marks, uint64_t* red_hash) noexcept {
  alignas(8) unsigned char copy[kMarkWords * 8 + kRedZone + 16];
  size_t n = red_end - mark;
  if (red_end <= mark || n > sizeof copy || n < kMarkWords * 8) return GapRead::kGone;
  struct iovec local = {copy, n};
  struct iovec remote = {reinterpret_cast<void*>(mark), n};
  long r = sys::raw_syscall(SYS_process_vm_readv, sys::getpid(), &local, 1, &remote, 1, 0);
  if (r == -EPERM || r == -ENOSYS) {
    // Docker's default seccomp profile refuses process_vm_readv without
    // CAP_SYS_PTRACE, and qemu-user has none: mincore() still tells whether
    // the pages are mapped (ENOMEM: not all), and then they are read here.
    uintptr_t page = g_page_size, start = mark & ~(page - 1);
    unsigned char resident[4];
    if (page == 0 || (red_end - start + page - 1) / page > sizeof resident) return GapRead::kCannotTell;
    long m = sys::raw_syscall(SYS_mincore, start, red_end - start, resident);
    if (m == -ENOMEM) return GapRead::kGone;
    if (m != 0) return GapRead::kCannotTell;
    copy_bytes(copy, reinterpret_cast<const void*>(mark), n);
  } else if (r != long(n)) {
    return GapRead::kGone;
  }
  copy_bytes(marks, copy, kMarkWords * 8);
  *red_hash = fnv1a(copy + kMarkWords * 8, n - kMarkWords * 8);
  return GapRead::kRead;
}

void call_program_where_it_asked(const struct sigaction& act, int sig, siginfo_t* info, void* uc) noexcept {
  uintptr_t here = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  uintptr_t there = interrupted_sp(uc);
  // Already on the interrupted stack (a thread without an alternate stack),
  // or the handler asked for the alternate stack: call it here.
  ThreadSignals& st = tls_signals;
  if ((act.sa_flags & SA_ONSTACK) != 0 || (there > here && there - here < kNestedFramesSpan)) {
    if (st.depth == 1) st.program_sp = here, st.gap_end = 0, st.moved = false;
    call_program_handler(act, sig, info, uc);
    return;
  }
  uintptr_t top = (there - kRedZone) & ~uintptr_t(15);
  if (st.depth == 1) {
    // Fresh marks at each call: a program that unwound and came down the
    // same way again leaves the same bytes in the red zone, not these.
    ++st.mark_call;
    top -= kMarkWords * 8;
    auto* marks = reinterpret_cast<volatile uint64_t*>(top);
    for (size_t i = 0; i < kMarkWords; ++i) marks[i] = mark_word(st.mark_call, i);
    // Read here without a system call: the stack from the marks just
    // written up to the interrupted stack pointer is mapped.
    unsigned char red[kRedZone + 16];
    size_t red_size = there - (top + kMarkWords * 8);
    copy_bytes(red, reinterpret_cast<const void*>(top + kMarkWords * 8), red_size);
    st.gap_hash = fnv1a(red, red_size);
    st.program_sp = top;
    st.moved = true;
    st.gap_end = there;
  }
  // Nothing may arrive while the stack pointer and the alternate stack's
  // registration disagree; faults still reach panicstop.
  uint64_t quiet = ~kFaultSignals, mask = 0;
  sys::rt_sigprocmask(SIG_SETMASK, &quiet, &mask);
  ProgramCall call{&act, sig, info, uc, mask, here - 512};
  panicstop_call_on_stack(&call, run_on_interrupted_stack, reinterpret_cast<void*>(top));
  sys::rt_sigprocmask(SIG_SETMASK, &mask, nullptr);
}

// FNV-1a over the general registers: equal before and after a handler means
// the handler changed nothing the retried instruction depends on.
uint64_t registers_hash(const void* ucontext) noexcept {
  const auto* uc = static_cast<const ucontext_t*>(ucontext);
#if defined(__x86_64__)
  const auto* p = reinterpret_cast<const unsigned char*>(uc->uc_mcontext.gregs);
  size_t n = sizeof uc->uc_mcontext.gregs;
#elif defined(__aarch64__)
  const auto* p = reinterpret_cast<const unsigned char*>(uc->uc_mcontext.regs);
  size_t n = sizeof uc->uc_mcontext.regs + sizeof uc->uc_mcontext.sp + sizeof uc->uc_mcontext.pc +
             sizeof uc->uc_mcontext.pstate;
#endif
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// The frame of the function this is written in (always inlined).
__attribute__((always_inline)) inline uintptr_t current_sp() noexcept {
  return reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
}

// Are the marks and the red zone above the outermost handler as they were
// at its call? Only a handler that left without returning, and a program
// that then went deeper again, changes them.
bool gap_intact(const ThreadSignals& st) noexcept {
  if (st.gap_end == 0) return true;
  uint64_t marks[kMarkWords], red_hash = 0;
  GapRead r = read_gap(st.program_sp, st.gap_end, marks, &red_hash);
  if (r == GapRead::kCannotTell) return true;
  if (r == GapRead::kGone || red_hash != st.gap_hash) return false;
  for (size_t i = 0; i < kMarkWords; ++i)
    if (marks[i] != mark_word(st.mark_call, i)) return false;
  return true;
}

void restore_rseq(ThreadSignals& st) noexcept {
  take_back_rseq(st.rseq);
  st.rseq = {};
}

void abandon_program_handlers(ThreadSignals& st) noexcept {
  st.depth = 0;
  st.emulated_blocked = st.blocked_before_outer;
  restore_altstack(st);
  restore_rseq(st);
}

// Is the outermost program handler of this thread still running? sp is
// where the code that asks runs: the interrupted stack pointer of a new
// signal, or the frame of an exit(). Inside the handler, that is below the
// frame the handler was called from; once the handler is left, the
// thread's code runs on its own stack again, above the fault, or, if it
// came back down past the handler's frame (SBCL calls exit() from deeper
// than its trap handlers ran), over the marks above a handler moved to the
// interrupted stack.
void forget_abandoned_handlers(ThreadSignals& st, uintptr_t sp) noexcept {
  if (st.depth == 0) return;
  bool below = sp < st.program_sp && st.program_sp - sp < kNestedFramesSpan;
  if (below && (!st.moved || gap_intact(st))) return;
  abandon_program_handlers(st);
}

bool sent_by_this_process(const siginfo_t* info) noexcept {
  return info->si_code <= 0 && info->si_pid == sys::getpid();
}

// Signals held while the program believed them blocked, raised again now that
// they are not.
void raise_unblocked_pending(ThreadSignals& st) noexcept {
  uint64_t ready = st.pending & ~st.emulated_blocked;
  if (ready == 0) return;
  st.pending &= ~ready;
  for (int sig = 1; sig < 65; ++sig)
    if ((ready & bit(sig)) != 0) sys::tgkill(sys::getpid(), sys::gettid(), sig);
}

[[maybe_unused]] void update_emulated_mask(int how, const sigset_t* set) noexcept {
  if (set == nullptr) return;
  ThreadSignals& st = tls_signals;
  uint64_t asked = low_word(*set) & kFaultSignals;
  if (how == SIG_BLOCK) st.emulated_blocked |= asked;
  else if (how == SIG_UNBLOCK) st.emulated_blocked &= ~asked;
  else if (how == SIG_SETMASK) st.emulated_blocked = asked;
  raise_unblocked_pending(st);
}

bool active() noexcept { return g_any_taken.load(std::memory_order_relaxed); }

// A copy of set without the signals in strip, or set itself when nothing is
// taken over yet.
[[maybe_unused]] const sigset_t* without(const sigset_t* set, sigset_t* copy, uint64_t strip) noexcept {
  if (set == nullptr || !active()) return set;
  copy_bytes(copy, set, sizeof *copy);
  copy->__val[0] &= ~strip;
  return copy;
}

}  // namespace

uint64_t reserved_signals() noexcept {
  return bit(hard_stop_signal()) | bit(soft_stop_signal()) | bit(step_deadline_signal()) |
         bit(kdb_request_signal());
}

uint64_t unblockable_signals() noexcept { return reserved_signals() | kFaultSignals; }

bool take_over_signal(int sig, SignalRole role, SignalHandler handler, int flags, const sigset_t& mask) noexcept {
  if (!valid(sig)) return false;
  TakenSignal& t = g_signals[sig];
  if (g_page_size == 0) g_page_size = uintptr_t(getauxval(AT_PAGESZ));
  make_memory_mark();
  if (g_own_cookie == 0)
    g_own_cookie = (uintptr_t(sys::monotonic_ns()) ^ (uintptr_t(sys::getpid()) << 40) ^ reinterpret_cast<uintptr_t>(&t)) | 1;
  struct sigaction current {};
  if (libc_sigaction(sig, nullptr, &current) != 0) return false;
  bool again = t.taken.load(std::memory_order_acquire);
  t.role = role;
  t.handler = handler;
  t.flags = flags;
  t.mask = mask;
  // A second install keeps what the program set; the first adopts what the
  // kernel had, unless that is already panicstop's own handler.
  if (!again) {
    if (reinterpret_cast<uintptr_t>(current.sa_sigaction) == reinterpret_cast<uintptr_t>(handler)) {
      current = {};
      current.sa_handler = SIG_DFL;
    }
    copy_bytes(&t.program, &current, sizeof current);
  }
  struct sigaction program {};
  read_program(t, &program);
  struct sigaction k = kernel_action(t, program);
  if (libc_sigaction(sig, &k, nullptr) != 0) return false;
  t.taken.store(true, std::memory_order_release);
  g_any_taken.store(true, std::memory_order_release);
  if (g_restorer == nullptr) {
    struct sigaction mine {};
    libc_sigaction(sig, nullptr, &mine);
    if ((static_cast<unsigned long>(mine.sa_flags) & kSaRestorer) != 0) g_restorer = reinterpret_cast<void*>(mine.sa_restorer);
  }
  return true;
}

void program_action(int sig, struct sigaction* out) noexcept {
  if (TakenSignal* t = taken(sig)) {
    read_program(*t, out);
    return;
  }
  *out = {};
  if (valid(sig)) libc_next().sigaction(sig, nullptr, out);
}

ProgramVerdict deliver_fatal_to_program(int sig, siginfo_t* info, void* uc, ProgramFault* gave_up_on) noexcept {
  TakenSignal* t = taken(sig);
  if (t == nullptr) return ProgramVerdict::kNoHandler;
  ThreadSignals& st = tls_signals;
  const ProgramFault self{sig, info, uc};
  bool fault = info->si_code > 0;
  struct sigaction act {};
  read_program(*t, &act);
  if (is_ignored(act) && !fault) {
    // abort() with SIGABRT ignored (a SIG_IGN a supervisor left across exec,
    // a daemon that ignores it): glibc's next step installs SIG_DFL behind
    // the interposer's back and raises again, which would end the process
    // unseen. A SIGABRT from another process stays ignored.
    return sig == SIGABRT && sent_by_this_process(info) ? ProgramVerdict::kNoHandler : ProgramVerdict::kHandled;
  }
  forget_abandoned_handlers(st, interrupted_sp(uc));
  bool held = (st.emulated_blocked & bit(sig)) != 0;
  if (st.depth > 0) {
    // A fatal signal while the program handles one on this thread: its
    // handler reset the action and raised again, aborted, or faulted.
    if (!is_function(act) || (held && (fault || sent_by_this_process(info)))) {
      *gave_up_on = st.outer;
      return ProgramVerdict::kGaveUp;
    }
  }
  if (held) {
    if (fault) return ProgramVerdict::kNoHandler;  // the kernel would end the process here
    st.pending |= bit(sig);
    return ProgramVerdict::kHandled;
  }
  if (!is_function(act)) return ProgramVerdict::kNoHandler;
  if (fault && st.depth == 0 && st.unfixed_sig == sig && st.unfixed_addr == uintptr_t(info->si_addr) &&
      st.unfixed_regs == registers_hash(uc)) {
    st.unfixed_sig = 0;
    *gave_up_on = self;
    return ProgramVerdict::kGaveUp;
  }

  uint64_t saved_blocked = st.emulated_blocked;
  st.emulated_blocked |= (low_word(act.sa_mask) & (kFaultSignals | bit(SIGABRT))) |
                         ((act.sa_flags & SA_NODEFER) != 0 ? 0 : bit(sig));
  if ((act.sa_flags & SA_RESETHAND) != 0) reset_to_default(sig, *t);
  if (st.depth == 0) {
    st.outer = self;
    st.blocked_before_outer = saved_blocked;
  }
  bool retried = fault && (kRetriedFaults & bit(sig)) != 0;
  uint64_t before = retried ? registers_hash(uc) : 0;
  uintptr_t fault_pc = fault ? interrupted_pc(uc) : 0;
  // A one-shot handler is a crash reporter: the kernel stops reading the
  // thread's rseq area while it runs (thread/rseq.hpp).
  if ((act.sa_flags & SA_RESETHAND) != 0 && st.depth == 0) st.rseq = let_go_of_rseq();
  ++st.depth;
  call_program_where_it_asked(act, sig, info, uc);
  if (--st.depth == 0) restore_rseq(st);
  st.emulated_blocked = saved_blocked;
  if (fault && interrupted_pc(uc) != fault_pc) {
    // The clock only here: a fault that is fixed and retried (a collector's
    // barrier, by the million) returns to its own pc.
    st.resumed = {sig, info->si_code, uintptr_t(info->si_addr), fault_pc, interrupted_pc(uc), sys::monotonic_ns()};
  }
  if (retried && registers_hash(uc) == before) {
    st.unfixed_sig = sig;
    st.unfixed_addr = uintptr_t(info->si_addr);
    st.unfixed_regs = before;
  } else if (fault) {
    st.unfixed_sig = 0;
  }
  // abort() cannot return: glibc's next step installs SIG_DFL behind the
  // interposer's back and raises again, which would end the process unseen.
  if (sig == SIGABRT && sent_by_this_process(info)) {
    *gave_up_on = st.depth > 0 ? st.outer : self;
    return ProgramVerdict::kGaveUp;
  }
  raise_unblocked_pending(st);
  return ProgramVerdict::kHandled;
}

void deliver_reserved_to_program(int sig, siginfo_t* info, void* uc) noexcept {
  deliver_shared_to_program(sig, info, uc, /*default_applies=*/false);
}

void deliver_shared_to_program(int sig, siginfo_t* info, void* uc, bool default_applies) noexcept {
  TakenSignal* t = taken(sig);
  if (t == nullptr) return;
  struct sigaction act {};
  read_program(*t, &act);
  if (is_function(act)) {
    if ((act.sa_flags & SA_RESETHAND) != 0) reset_to_default(sig, *t);
    call_program_handler(act, sig, info, uc);
    return;
  }
  if (act.sa_handler != SIG_DFL || !default_applies) return;
  // The default action, taken by the kernel: with SIG_DFL in place and the
  // signal open, it comes back at once. For a signal whose default is to be
  // ignored, nothing happens and panicstop's handler goes back in.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  libc_sigaction(sig, &dfl, nullptr);
  uint64_t open = uint64_t(1) << (sig - 1);
  sys::rt_sigprocmask(SIG_UNBLOCK, &open, nullptr);
  sys::tgkill(sys::getpid(), sys::gettid(), sig);
  struct sigaction k = kernel_action(*t, act);
  libc_sigaction(sig, &k, nullptr);
}

bool last_resumed_fault(ResumedFault* out) noexcept {
  *out = tls_signals.resumed;
  return out->sig != 0;
}

void set_program_gave_up_handler(GaveUpFn fn) noexcept { g_gave_up.store(fn, std::memory_order_release); }

bool in_program_fatal_handler() noexcept {
  forget_abandoned_handlers(tls_signals, current_sp());
  return tls_signals.depth > 0;
}

const void* reclaim_signal(int sig) noexcept {
  TakenSignal* t = taken(sig);
  if (t == nullptr) return nullptr;
  struct KernelAction {
    void* handler;
    unsigned long flags;
    void* restorer;
    uint64_t mask;
  } current{};
  if (sys::raw_syscall(SYS_rt_sigaction, sig, nullptr, &current, 8) != 0) return nullptr;
  if (current.handler == reinterpret_cast<void*>(t->handler)) return nullptr;
  struct sigaction program {};
  read_program(*t, &program);
  struct sigaction k = kernel_action(*t, program);
  KernelAction mine{reinterpret_cast<void*>(t->handler), static_cast<unsigned long>(k.sa_flags), nullptr,
                    low_word(k.sa_mask)};
#if defined(__x86_64__)
  // x86-64 requires a restorer; the C library's is the one every handler uses.
  if (g_restorer == nullptr) return current.handler;
  mine.flags |= kSaRestorer;
  mine.restorer = g_restorer;
#endif
  sys::raw_syscall(SYS_rt_sigaction, sig, &mine, nullptr, 8);
  return current.handler != nullptr ? current.handler : reinterpret_cast<const void*>(1);
}

namespace {

// An SI_USER signal to the calling thread: the kernel accepts that siginfo
// only from the target itself, and delivers such a signal even when the
// user's signal queue is full (then without its siginfo).
long send_unqueued_to_self(int sig) noexcept {
  siginfo_t info{};
  info.si_signo = sig;
  info.si_code = SI_USER;
  info.si_pid = sys::getpid();
  return sys::raw_syscall(SYS_rt_tgsigqueueinfo, info.si_pid, sys::gettid(), sig, &info);
}

}  // namespace

long send_own_signal(int tid, int sig) noexcept {
  siginfo_t info{};
  info.si_signo = sig;
  info.si_code = SI_QUEUE;
  int pid = sys::getpid();
  info.si_pid = pid;
  info.si_uid = uid_t(sys::raw_syscall(SYS_getuid));
  info.si_value.sival_ptr = reinterpret_cast<void*>(g_own_cookie);
  long sent = tid == 0 ? sys::raw_syscall(SYS_rt_sigqueueinfo, pid, sig, &info)
                       : sys::raw_syscall(SYS_rt_tgsigqueueinfo, pid, tid, sig, &info);
  if (sent != -EAGAIN) return sent;
  // The user's signal queue is full. The kernel still delivers, unqueued and
  // with its siginfo dropped, a kill() of the process and an SI_USER signal a
  // thread sends itself (may_be_own_process_signal() tells them).
  if (tid == 0) return send_own_signal_to_process(sig);
  return tid == sys::gettid() ? send_unqueued_to_self(sig) : sent;
}

bool is_own_signal(const siginfo_t* info) noexcept {
  return info != nullptr && info->si_code == SI_QUEUE &&
         reinterpret_cast<uintptr_t>(info->si_value.sival_ptr) == g_own_cookie;
}

long send_own_signal_to_process(int sig) noexcept { return sys::raw_syscall(SYS_kill, sys::getpid(), sig); }

long signal_self(int sig) noexcept {
  long sent = sys::tgkill(sys::getpid(), sys::gettid(), sig);
  return sent == -EAGAIN ? send_unqueued_to_self(sig) : sent;
}

bool in_vfork_child() noexcept {
  const int owner = g_records_pid.load(std::memory_order_relaxed);
  const int self = sys::getpid();
  if (owner == 0 || self == owner) return false;
  if (std::atomic<uint64_t>* mark = g_memory_mark.load(std::memory_order_acquire)) {
    if (mark->load(std::memory_order_relaxed) == 0) {
      // A copy of its own, made without fork()'s handlers (a raw clone()):
      // the records are this process's from now on, as in a fork() child,
      // and a vfork() child of its own is told apart again.
      g_records_pid.store(self, std::memory_order_relaxed);
      mark_memory_as_the_records_owners();
      return false;
    }
  } else if (sys::raw_syscall(SYS_kcmp, self, owner, KCMP_VM, 0, 0) > 0) {
    return false;  // memory of its own
  }
  return sys::raw_syscall(SYS_kcmp, self, owner, KCMP_SIGHAND, 0, 0) != 0;
}

bool may_be_own_process_signal(const siginfo_t* info) noexcept {
  return info != nullptr && info->si_code == SI_USER && (info->si_pid == 0 || info->si_pid == sys::getpid());
}

namespace {

[[maybe_unused]] [[noreturn]] void exit_through(void (*next)(int), int status) {
  // A program's crash handler that exits from inside itself has given up;
  // not so a vfork() child of a thread in its crash handler (an exec failed).
  if (in_program_fatal_handler() && !in_vfork_child()) {
    if (GaveUpFn fn = g_gave_up.load(std::memory_order_acquire)) fn(tls_signals.outer);
  }
  if (next != nullptr) next(status);
  sys::exit_group(status);
}

[[maybe_unused]] int set_program_action(int sig, const struct sigaction* act, struct sigaction* old) noexcept {
  TakenSignal* t = taken(sig);
  if (t == nullptr) {
    struct sigaction copy;
    if (act != nullptr && active()) {
      copy_bytes(&copy, act, sizeof copy);
      copy.sa_mask.__val[0] &= ~unblockable_signals();
      act = &copy;
    }
    return libc_next().sigaction(sig, act, old);
  }
  struct sigaction requested;
  if (act != nullptr) copy_bytes(&requested, act, sizeof requested);  // act and old may be one object
  if (old != nullptr) read_program(*t, old);
  if (act == nullptr) return 0;
  // The records are the parent's memory; the kernel's table is the child's own.
  if (in_vfork_child()) return libc_next().sigaction(sig, &requested, nullptr);
  write_program(sig, *t, requested);
  return 0;
}

[[maybe_unused]] __sighandler_t set_simple_handler(int sig, __sighandler_t handler, int flags, bool mask_self) noexcept {
  struct sigaction act {}, old {};
  act.sa_handler = handler;
  if (mask_self && valid(sig)) act.sa_mask.__val[0] = bit(sig);
  act.sa_flags = flags;
  if (set_program_action(sig, &act, &old) != 0) return SIG_ERR;
  return old.sa_handler;
}

}  // namespace

}  // namespace panicstop::detail

#if PANICSTOP_INTERPOSE

using panicstop::detail::libc_next;
using panicstop::detail::reserved_signals;
using panicstop::detail::unblockable_signals;

// Interposers must stay in the dynamic symbol table of whatever they are linked
// into (the shared library, the preload shim, a statically linked program),
// although the library is compiled with hidden visibility.
#define PANICSTOP_INTERPOSER extern "C" __attribute__((visibility("default")))

PANICSTOP_INTERPOSER int sigaction(int sig, const struct sigaction* act, struct sigaction* old) noexcept {
  return panicstop::detail::set_program_action(sig, act, old);
}

PANICSTOP_INTERPOSER __sighandler_t signal(int sig, __sighandler_t handler) noexcept {
  if (panicstop::detail::taken(sig) == nullptr && libc_next().signal != nullptr) return libc_next().signal(sig, handler);
  return panicstop::detail::set_simple_handler(sig, handler, SA_RESTART, true);  // glibc's BSD semantics
}

PANICSTOP_INTERPOSER __sighandler_t bsd_signal(int sig, __sighandler_t handler) noexcept { return signal(sig, handler); }

PANICSTOP_INTERPOSER __sighandler_t sysv_signal(int sig, __sighandler_t handler) noexcept {
  if (panicstop::detail::taken(sig) == nullptr && libc_next().sysv_signal != nullptr)
    return libc_next().sysv_signal(sig, handler);
  return panicstop::detail::set_simple_handler(sig, handler, SA_RESETHAND | SA_NODEFER, false);
}

PANICSTOP_INTERPOSER int pthread_sigmask(int how, const sigset_t* set, sigset_t* old) noexcept {
  using namespace panicstop::detail;
  sigset_t copy;
  uint64_t emulated_before = tls_signals.emulated_blocked;
  int r = libc_next().pthread_sigmask != nullptr
              ? libc_next().pthread_sigmask(how, without(set, &copy, unblockable_signals()), old)
              : -int(panicstop::sys::rt_sigprocmask(how, without(set, &copy, unblockable_signals()), old));
  if (r != 0 || !active()) return r;
  if (old != nullptr) old->__val[0] |= emulated_before;
  update_emulated_mask(how, set);
  return 0;
}

PANICSTOP_INTERPOSER int sigprocmask(int how, const sigset_t* set, sigset_t* old) noexcept {
  using namespace panicstop::detail;
  if (libc_next().sigprocmask == nullptr) {
    int r = pthread_sigmask(how, set, old);
    if (r == 0) return 0;
    errno = r;
    return -1;
  }
  sigset_t copy;
  uint64_t emulated_before = tls_signals.emulated_blocked;
  int r = libc_next().sigprocmask(how, without(set, &copy, unblockable_signals()), old);
  if (r != 0 || !active()) return r;
  if (old != nullptr) old->__val[0] |= emulated_before;
  update_emulated_mask(how, set);
  return 0;
}

PANICSTOP_INTERPOSER int pthread_attr_setsigmask_np(pthread_attr_t* attr, const sigset_t* set) {
  sigset_t copy;
  return libc_next().pthread_attr_setsigmask_np(attr, panicstop::detail::without(set, &copy, unblockable_signals()));
}

PANICSTOP_INTERPOSER int sigsuspend(const sigset_t* set) {
  sigset_t copy;
  return libc_next().sigsuspend(panicstop::detail::without(set, &copy, unblockable_signals()));
}

// The waits below would take panicstop's own signals off the queue before its
// handler could see them.
PANICSTOP_INTERPOSER int sigwait(const sigset_t* set, int* sig) {
  sigset_t copy;
  return libc_next().sigwait(panicstop::detail::without(set, &copy, reserved_signals()), sig);
}

PANICSTOP_INTERPOSER int sigwaitinfo(const sigset_t* set, siginfo_t* info) {
  sigset_t copy;
  return libc_next().sigwaitinfo(panicstop::detail::without(set, &copy, reserved_signals()), info);
}

PANICSTOP_INTERPOSER int sigtimedwait(const sigset_t* set, siginfo_t* info, const struct timespec* timeout) {
  sigset_t copy;
  return libc_next().sigtimedwait(panicstop::detail::without(set, &copy, reserved_signals()), info, timeout);
}

PANICSTOP_INTERPOSER int signalfd(int fd, const sigset_t* set, int flags) noexcept {
  sigset_t copy;
  return libc_next().signalfd(fd, panicstop::detail::without(set, &copy, reserved_signals()), flags);
}

PANICSTOP_INTERPOSER int pselect(int n, fd_set* r, fd_set* w, fd_set* e, const struct timespec* timeout,
                             const sigset_t* set) {
  sigset_t copy;
  return libc_next().pselect(n, r, w, e, timeout, panicstop::detail::without(set, &copy, unblockable_signals()));
}

PANICSTOP_INTERPOSER int ppoll(struct pollfd* fds, nfds_t n, const struct timespec* timeout, const sigset_t* set) {
  sigset_t copy;
  return libc_next().ppoll(fds, n, timeout, panicstop::detail::without(set, &copy, unblockable_signals()));
}

PANICSTOP_INTERPOSER int epoll_pwait(int fd, struct epoll_event* events, int max, int timeout, const sigset_t* set) {
  sigset_t copy;
  return libc_next().epoll_pwait(fd, events, max, timeout,
                                 panicstop::detail::without(set, &copy, unblockable_signals()));
}

PANICSTOP_INTERPOSER int epoll_pwait2(int fd, struct epoll_event* events, int max, const struct timespec* timeout,
                                  const sigset_t* set) {
  sigset_t copy;
  if (libc_next().epoll_pwait2 == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  return libc_next().epoll_pwait2(fd, events, max, timeout,
                                  panicstop::detail::without(set, &copy, unblockable_signals()));
}

// A program handler that leaves with a long jump (a probe recovering from its
// fault) never returns to panicstop's handler: what that handler set up for
// it ends here. A jump that stays inside the handler is not told apart.
using LongJump = void (*)(struct __jmp_buf_tag*, int);

[[noreturn]] static void jump_out(LongJump next, struct __jmp_buf_tag* env, int value) {
  auto& st = panicstop::detail::tls_signals;
  if (st.depth > 0) panicstop::detail::abandon_program_handlers(st);
  next(env, value);
  __builtin_unreachable();
}

PANICSTOP_INTERPOSER void longjmp(struct __jmp_buf_tag env[1], int value) noexcept {
  jump_out(libc_next().longjmp, env, value);
}
PANICSTOP_INTERPOSER void _longjmp(struct __jmp_buf_tag env[1], int value) noexcept {
  jump_out(libc_next()._longjmp, env, value);
}
PANICSTOP_INTERPOSER void siglongjmp(sigjmp_buf env, int value) noexcept { jump_out(libc_next().siglongjmp, env, value); }
PANICSTOP_INTERPOSER void __longjmp_chk(struct __jmp_buf_tag env[1], int value) {
  jump_out(libc_next().__longjmp_chk, env, value);
}

PANICSTOP_INTERPOSER void exit(int status) noexcept { panicstop::detail::exit_through(libc_next().exit, status); }
PANICSTOP_INTERPOSER void _exit(int status) { panicstop::detail::exit_through(libc_next()._exit, status); }
PANICSTOP_INTERPOSER void _Exit(int status) noexcept { panicstop::detail::exit_through(libc_next()._Exit, status); }

#endif  // PANICSTOP_INTERPOSE
