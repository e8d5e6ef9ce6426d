// The panic path (FreeBSD's vpanic), the fatal-signal handler, hooks, the step
// watchdog and the die policies. Crash path: raw system calls, sys::FixedWriter,
// static storage only.
//
// Watchdog: at the election the panicking thread creates one POSIX timer
// (timer_create with SIGEV_THREAD_ID) that delivers step_deadline_signal() to
// itself. Each step arms it; the kernel delivers the signal whatever the thread
// is doing in user space (spinning, blocked in a futex, in a system call that a
// signal interrupts), and the handler siglongjmps back to the step runner,
// which records the overrun as a nested panic and runs the next step. A fault
// inside a step comes back the same way through the fatal-signal handler. No
// extra thread exists, so nothing else needs to be spared by the stop.
//
// Behind it, a second timer sends SIGKILL to the process one grace period
// after each deadline: a step asleep where only a fatal signal wakes it (a
// write to a hung NFS or FUSE mount, the parent of a vfork() waiting for its
// child) never takes the watchdog's signal, and would hold the panic for good.
#include "panicstop/panic.hpp"

#include <atomic>
#include <csetjmp>
#include <csignal>
#include <ctime>
#include <sys/prctl.h>

#include "panic/panic_internal.hpp"
#include "panicstop/lock_object.hpp"
#include "panic/panic_state.hpp"
#include "panic/tunables.hpp"
#include "stop/stop.hpp"
#include "sys/fd_reserve.hpp"
#include "sys/format.hpp"
#include "sys/signal_names.hpp"
#include "sys/syscall.hpp"
#include "thread/program_signals.hpp"
#include "thread/signal_sections.hpp"
#include "thread/slot.hpp"

extern char** environ;

namespace panicstop {
namespace detail {

namespace {

PanicState g_state;
Tunables g_tunables;
std::atomic<const CrashSteps*> g_crash_steps{nullptr};
std::atomic<DebuggerStepFn> g_debugger_step{nullptr};
std::atomic<int64_t> g_debugger_ns{0};
std::atomic<bool> g_installed{false};

inline constexpr int kMaxHooks = 32;
struct Hook {
  void (*fn)(void*);
  void* arg;
};
Hook g_hooks[3][kMaxHooks];
std::atomic<int> g_hook_count[3];     // hooks published: the panic path runs [0, count)
std::atomic<int> g_hook_claimed[3];   // slots handed to registering threads

char** g_restart_argv = nullptr;

// Step runner state, touched only by the panicking thread.
sigjmp_buf g_step_jmp;
volatile sig_atomic_t g_step_armed = 0;
int g_timer_id = -1;
int g_kill_timer_id = -1;
std::atomic<uint32_t> g_same_thread_nested{0};
std::atomic<uint32_t> g_park_word{0};  // never changes: parked threads wait on it forever

constexpr uint64_t bit(int sig) { return uint64_t(1) << (sig - 1); }

// spinlock_enter() for good: everything asynchronous is blocked, except the
// hard stop (the library never blocks it), the faults (a fault in a step must
// reach the step runner, not kill the process) and the step watchdog.
void block_async_signals() noexcept {
  uint64_t mask = spin_section_mask() & ~bit(step_deadline_signal());
  sys::rt_sigprocmask(SIG_SETMASK, &mask, nullptr);
}

// Bounded: a stderr pipe nobody reads must not stop the panic (sys::write_stderr).
void say(const char* text, size_t n) noexcept { sys::write_stderr(text, n); }

[[noreturn]] void park_forever() noexcept {
  for (;;) sys::futex_wait(&g_park_word, 0);
}

const char* signal_name(int sig) noexcept {
  const char* name = sys::signal_name(sig);
  return name != nullptr ? name : "signal";
}

const char* si_code_name(int sig, int code) noexcept {
  const char* name = sys::si_code_name(sig, code);
  return name != nullptr ? name : "code";
}

bool is_fault_code(int code) noexcept { return code > 0; }  // sent by the kernel for an instruction

// The calling thread's name: its slot's, else the kernel's comm, which
// PR_GET_NAME gives without a descriptor (the process may have none left).
void own_thread_name(char* out, size_t cap) noexcept {
  out[0] = '\0';
  ThreadSlot* s = find_slot_by_tid(sys::gettid());
  if (s != nullptr && s->name[0] != '\0') {
    sys::copy_string(out, cap, s->name);
    return;
  }
  char comm[16] = {};  // TASK_COMM_LEN
  if (sys::raw_syscall(SYS_prctl, PR_GET_NAME, comm, 0, 0, 0) != 0) return;
  comm[sizeof comm - 1] = '\0';
  sys::copy_string(out, cap, comm);
}

void record_nested(int tid, int signo, bool same_thread, const char* message) noexcept {
  uint32_t i = g_state.nested_count.fetch_add(1, std::memory_order_acq_rel);
  if (i >= kMaxNestedPanics) return;
  NestedPanic& n = g_state.nested[i];
  n.tid = tid;
  n.signo = signo;
  n.step = g_state.step.load(std::memory_order_relaxed);
  n.step_detail = g_state.step_detail;
  n.same_thread = same_thread;
  sys::copy_string(n.message, sizeof n.message, message);
  n.ready.store(true, std::memory_order_release);
}

// --- the step watchdog ---------------------------------------------------------

// The kill timer is made at install, not at the panic: timer_create fails
// (EAGAIN) while the user's signal queue is full (RLIMIT_SIGPENDING), and a
// panic that comes in a flood of signals must still end. It is aimed at the
// process, so it needs no thread known in advance; a fork()'s child, which
// inherits no timers, makes its own (panic_after_fork).
void make_kill_timer() noexcept {
  struct sigevent kill {};
  kill.sigev_notify = SIGEV_SIGNAL;  // to the process: SIGKILL ends every thread
  kill.sigev_signo = SIGKILL;
  int id = -1;
  g_kill_timer_id = sys::raw_syscall(SYS_timer_create, CLOCK_MONOTONIC, &kill, &id) == 0 ? id : -1;
}

// The watchdog's timer aims at the panicking thread, so it is made at the
// panic. Without it (the signal queue full), the kill timer is the only
// deadline a step has, and stderr says so.
void create_step_timer(int tid) noexcept {
  if (g_kill_timer_id < 0) make_kill_timer();
  struct sigevent ev {};
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev.sigev_signo = step_deadline_signal();
  ev._sigev_un._tid = tid;
  // The signal is recognised by this value, not by si_timerid: qemu-user
  // (7.2, linux-user/syscall.c timer_create) hands the guest an id of its own
  // (0x0caf0000 | slot) but passes the host kernel's id through in
  // si_timerid, so the two never match there and every deadline was ignored.
  ev.sigev_value.sival_ptr = &g_timer_id;
  int id = -1;
  long made = sys::raw_syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &id);
  if (made == 0) {
    g_timer_id = id;
    return;
  }
  char line[200];
  size_t n = sys::format(line, sizeof line,
                         "panicstop: no step watchdog (timer_create: errno %ld); a step that hangs %s\n", -made,
                         g_kill_timer_id >= 0 ? "ends the process by SIGKILL" : "holds the panic");
  say(line, n);
}

void set_timer(int id, int64_t ns) noexcept {
  if (id < 0) return;
  struct itimerspec its {};
  its.it_value.tv_sec = ns / 1000000000;
  its.it_value.tv_nsec = ns % 1000000000;
  sys::raw_syscall(SYS_timer_settime, id, 0, &its, nullptr);
}

int64_t step_timeout_ns() noexcept { return int64_t(g_tunables.step_timeout_ms) * 1000000; }

// How long past a step's deadline the kill timer waits: the watchdog's
// handler needs only to be scheduled, so a second is plenty even on a loaded
// machine; with a long step timeout, as long again.
constexpr int64_t kMinKillGraceNs = 1'000'000'000;
int64_t kill_grace_ns() noexcept {
  int64_t grace = step_timeout_ns();
  return grace > kMinKillGraceNs ? grace : kMinKillGraceNs;
}

// Arms the watchdog at ns from now and the kill timer one grace period
// later; 0 disarms both.
void arm_step_timer(int64_t ns) noexcept {
  set_timer(g_timer_id, ns);
  set_timer(g_kill_timer_id, ns == 0 ? 0 : ns + kill_grace_ns());
}

// Runs fn(arg) as one step: under a deadline, with faults and overruns coming
// back here through siglongjmp. True if fn returned, false if it was cut off.
bool run_step(PanicStep step, int64_t timeout_ns, void (*fn)(const void*), const void* arg,
              const char* detail = nullptr) noexcept {
  volatile bool returned = false;  // set between sigsetjmp and a possible siglongjmp
  g_state.step_detail = detail;
  g_state.step.store(int(step), std::memory_order_release);
  if (sigsetjmp(g_step_jmp, 1) == 0) {
    g_step_armed = 1;
    arm_step_timer(timeout_ns);
    fn(arg);
    returned = true;
  }
  g_step_armed = 0;
  arm_step_timer(0);
  return returned;
}

[[noreturn]] void leave_step() noexcept {
  g_step_armed = 0;
  siglongjmp(g_step_jmp, 1);
}

// --- the steps -------------------------------------------------------------------

void step_stop(const void*) noexcept {
  g_state.stop = stop_other_threads(StopKind::kHard, int64_t(g_tunables.stop_timeout_ms) * 1000000);
  const StopResult& r = g_state.stop;
  sys::FixedWriter note(g_state.note, sizeof g_state.note);
  if (r.reclaimed_from != nullptr)
    note.format("the hard-stop signal's handler had been replaced (by %p) behind panicstop's back; "
                "panicstop's was put back for this panic",
                r.reclaimed_from);
  if (r.refused != 0)
    note.format("%sthe stop signal could not be sent to %u threads (%s), so they ran on", note.size() != 0 ? "; " : "",
                r.refused, stop_refusal_reason(r.refused_errno));
}

void step_banner(const void*) noexcept {
  char buf[kPanicMessageMax + 512];
  sys::FixedWriter w(buf, sizeof buf);
  int tid = g_state.panicking_tid.load(std::memory_order_relaxed);  // this thread
  char name[kThreadNameMax];
  own_thread_name(name, sizeof name);
  w.format("panic: %s\n", g_state.message);
  w.format("panicstop: thread %d (%s) panicked", tid, name);
  if (g_state.stop_enabled) {
    const StopResult& r = g_state.stop;
    int64_t end_ns = r.end_ns != 0 ? r.end_ns : g_state.start_ns;
    w.format("; %u other threads stopped in %lld us", r.stopped, (long long)((end_ns - g_state.start_ns) / 1000));
    if (r.kernel_workers > 0)
      w.format("; %u kernel workers (io_uring, vhost) left as they are: they run no program code", r.kernel_workers);
    if (r.not_stopped > 0) {
      w.format("; %u did not stop:", r.not_stopped);
      uint32_t n = r.not_stopped < kMaxNotStoppedListed ? r.not_stopped : uint32_t(kMaxNotStoppedListed);
      for (uint32_t i = 0; i < n && i < 16 && r.not_stopped_tids != nullptr; ++i) w.format(" %d", r.not_stopped_tids[i]);
    }
  } else {
    w.str("; other threads not stopped (PANICSTOP_STOP_ON_PANIC=0)");
  }
  w.ch('\n');
  if (g_state.note[0] != '\0') w.format("panicstop: %s\n", g_state.note);
  say(w.data(), w.size());
}

void step_hook(const void* h) noexcept {
  const Hook* hook = static_cast<const Hook*>(h);
  hook->fn(hook->arg);
}

void run_hooks(Stage stage, PanicStep step) noexcept {
  int s = int(stage);
  int n = g_hook_count[s].load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i) run_step(step, step_timeout_ns(), step_hook, &g_hooks[s][i]);
}

void step_debugger(const void*) noexcept {
  DebuggerStepFn fn = g_debugger_step.load(std::memory_order_acquire);
  if (fn != nullptr) fn(g_tunables.trace_on_panic, g_tunables.debugger_on_panic);
}

void step_capture(const void* steps) noexcept { static_cast<const CrashSteps*>(steps)->capture(); }
void step_salvage(const void* steps) noexcept { static_cast<const CrashSteps*>(steps)->salvage(); }

struct WriterStep {
  const CrashSteps* steps;
  uint32_t index;
};
void step_write(const void* arg) noexcept {
  const WriterStep* w = static_cast<const WriterStep*>(arg);
  w->steps->write(w->index);
}

void step_finish(const void* steps) noexcept { static_cast<const CrashSteps*>(steps)->finish(); }
void step_upload(const void* steps) noexcept { static_cast<const CrashSteps*>(steps)->upload(); }

// One step per writer, so that a fault or a hang in one writer costs that
// dump only.
void run_writers(const CrashSteps* steps) noexcept {
  if (steps == nullptr) return;
  uint32_t n = steps->writer_count != nullptr && steps->write != nullptr ? steps->writer_count() : 0;
  for (uint32_t i = 0; i < n; ++i) {
    WriterStep w{steps, i};
    const char* name = steps->writer_name != nullptr ? steps->writer_name(i) : nullptr;
    run_step(PanicStep::kDump, 6 * step_timeout_ns(), step_write, &w, name);
  }
  if (steps->finish != nullptr) run_step(PanicStep::kDump, step_timeout_ns(), step_finish, steps, "cleanup");
  int64_t upload_ns = steps->upload != nullptr && steps->upload_budget_ns != nullptr ? steps->upload_budget_ns() : 0;
  if (upload_ns > 0) run_step(PanicStep::kDump, upload_ns + step_timeout_ns(), step_upload, steps, "upload");
}

// --- the die policies ------------------------------------------------------------

void set_default_action(int sig) noexcept {
  struct KernelSigaction {
    void* handler;
    unsigned long flags;
    void* restorer;
    uint64_t mask;
  } act{};  // SIG_DFL is 0
  sys::raw_syscall(SYS_rt_sigaction, sig, &act, nullptr, 8);
}

[[noreturn]] void die_of_signal(int sig) noexcept {
  set_default_action(sig);
  uint64_t unblock = bit(sig);
  sys::rt_sigprocmask(SIG_UNBLOCK, &unblock, nullptr);
  sys::tgkill(sys::getpid(), sys::gettid(), sig);
  sys::exit_group(128 + sig);  // only if the default action did not end us
}

[[noreturn]] void restart_program() noexcept {
  if (g_restart_argv != nullptr && g_restart_argv[0] != nullptr) {
    uint64_t none = 0;  // the mask survives execve: the new image must start clean
    sys::rt_sigprocmask(SIG_SETMASK, &none, nullptr);
    say("panicstop: restarting\n", 22);
    // An execve that hangs reading the program from a hung mount ends by the
    // kill timer; a successful one deletes both timers.
    set_timer(g_kill_timer_id, step_timeout_ns() + kill_grace_ns());
    // By absolute name, not through proc_open()'s kept descriptor: an
    // emulator (qemu-user) rewrites the path "/proc/self/exe" to the guest
    // program, while the kept descriptor's "self/exe" is the emulator itself,
    // which would be started with the program's arguments. If /proc is gone
    // by now the execve fails and the panic dies of its signal, as below.
    sys::raw_syscall(SYS_execve, "/proc/self/exe", g_restart_argv, environ);
  }
  say("panicstop: restart failed; dying\n", 33);
  die_of_signal(g_state.signo);
}

[[noreturn]] void halt() noexcept {
  char buf[256];
  size_t n = sys::format(buf, sizeof buf,
                         "panicstop: halted (PANICSTOP_ON_PANIC=halt); attach a debugger: gdb -p %d "
                         "(panicking thread %d)\n",
                         sys::getpid(), g_state.panicking_tid.load());
  say(buf, n);
  park_forever();
}

[[noreturn]] void apply_die_policy() noexcept {
  g_state.step.store(int(PanicStep::kDie), std::memory_order_release);
  int sig = g_state.signo;
  switch (g_tunables.on_panic) {
    case DiePolicy::kExit: sys::exit_group(128 + sig);
    case DiePolicy::kRestart: restart_program();
    case DiePolicy::kHalt: halt();
    case DiePolicy::kDie: break;
  }
  die_of_signal(sig);
}

// --- election --------------------------------------------------------------------

// A thread that lost the election: keeps its own message and context for the
// dump and parks. The hard stop finds it parked here, acknowledges for it and
// keeps the fault context saved below.
[[noreturn]] void park_loser(int signo, const siginfo_t* info, const void* uc, const char* message) noexcept {
  int tid = sys::gettid();
  ThreadSlot* slot = claim_slot_in_signal_handler();
  if (is_slot_address(slot)) {
    sys::copy_string(slot->panic_message, sizeof slot->panic_message, message);
    slot->panic_signal = signo;
    if (uc != nullptr) save_context(slot, info, uc);
    else slot->context.valid = false;
  }
  record_nested(tid, signo, false, message);
  park_forever();
}

// The panicking thread panicked again (a fault or a panic() inside a step).
[[noreturn]] void nested_panic(int signo, const char* message) noexcept {
  record_nested(sys::gettid(), signo, true, message);
  char buf[400];
  char step[64];
  format_step_name(g_state.step.load(), g_state.step_detail, step, sizeof step);
  size_t n = sys::format(buf, sizeof buf, "panicstop: nested panic in step %s: %s\n", step, message);
  say(buf, n);
  if (g_step_armed && g_same_thread_nested.fetch_add(1) < 64) leave_step();
  // Outside any step (the banner's formatting, the die policy): stop trying.
  die_of_signal(g_state.signo != 0 ? g_state.signo : SIGABRT);
}

// A crash or panic() in the child of vfork() before its execve. The child
// runs on its parent's memory: a panic there would take the parent's panic
// state (the parent's own panic would then wait for good), stop nothing of
// its own, and write through the memory the parent reserved. So it says what
// happened and dies of its signal, as it would without panicstop (a core, if
// RLIMIT_CORE allows one, is the kernel's). Its signal actions are its own,
// so resetting one touches nothing of the parent's.
[[noreturn]] void die_in_vfork_child(int signo, const char* message) noexcept {
  char buf[kPanicMessageMax + 256];
  size_t n = sys::format(buf, sizeof buf,
                         "panicstop: %s; process %d is a vfork() child of process %ld, on its parent's memory "
                         "until its execve: panicstop writes no report or dump of it (they would go into the "
                         "parent's memory); the signal's default action follows\n",
                         message, sys::getpid(), sys::raw_syscall(SYS_getppid));
  say(buf, n);
  die_of_signal(signo != 0 ? signo : SIGABRT);
}

[[noreturn]] void enter_panic(int signo, const siginfo_t* info, void* uc, const char* message) noexcept {
  block_async_signals();
  if (in_vfork_child()) die_in_vfork_child(signo, message);
  int self = sys::gettid();
  int expected = 0;
  if (!g_state.panicking_tid.compare_exchange_strong(expected, self, std::memory_order_acq_rel)) {
    if (expected == self) nested_panic(signo, message);
    park_loser(signo, info, uc, message);
  }
  g_state.start_ns = sys::monotonic_ns();
  // Room for the crash path's opens, should the program be at its limit.
  sys::release_fd_reserve();
  g_state.signo = signo != 0 ? signo : SIGABRT;
  if (info != nullptr) {
    g_state.si_code = info->si_code;
    g_state.fault_address = reinterpret_cast<uintptr_t>(info->si_addr);
  }
  sys::copy_string(g_state.message, sizeof g_state.message, message);
  // A panic that names no fault of its own, raised by the process itself,
  // may be how the program ended the handling of one it had resumed
  // elsewhere (program_signals.hpp). A signal from another process is not.
  if (info == nullptr || (!is_fault_code(info->si_code) && info->si_pid == sys::getpid()))
    last_resumed_fault(&g_state.earlier_fault);
  g_state.stop_enabled = g_tunables.stop_on_panic;
  ThreadSlot* slot = claim_slot_in_signal_handler();
  g_state.panicking_slot = slot;
  // The fault's registers, never the handler's; for panic(), a real kernel
  // frame taken by signalling ourselves.
  if (uc != nullptr) save_context(slot, info, uc);
  else save_own_context_via_signal();
  if (is_slot_address(slot)) slot->stop_state.store(StopState::kPanicking, std::memory_order_release);
  // Without install() the watchdog signal has no handler (its default action
  // would end the process at the first deadline): no deadlines then, and no
  // kill timer either.
  if (g_installed.load(std::memory_order_acquire)) create_step_timer(self);

  if (g_tunables.stop_on_panic) {
    // The stop's own bound (a timeout after the last acknowledgement, at
    // most kMaxStopTimeouts in all), and a step's time to spare.
    run_step(PanicStep::kStop, kMaxStopTimeouts * int64_t(g_tunables.stop_timeout_ms) * 1000000 + step_timeout_ns(),
             step_stop, nullptr);
    set_scheduler_stopped(true);
  }
  const CrashSteps* steps = g_crash_steps.load(std::memory_order_acquire);
  if (steps != nullptr && steps->capture != nullptr &&
      !run_step(PanicStep::kCapture, 2 * step_timeout_ns(), step_capture, steps) && steps->salvage != nullptr)
    run_step(PanicStep::kCapture, step_timeout_ns(), step_salvage, steps, "salvage");
  run_step(PanicStep::kStop, step_timeout_ns(), step_banner, nullptr);
  if (g_tunables.trace_on_panic || g_tunables.debugger_on_panic) {
    int64_t debugger_ns = g_tunables.debugger_on_panic ? g_debugger_ns.load(std::memory_order_acquire) : 0;
    run_step(PanicStep::kDebugger, step_timeout_ns() + debugger_ns, step_debugger, nullptr);
  }
  run_hooks(Stage::PreDump, PanicStep::kPreDumpHooks);
  run_writers(steps);
  run_hooks(Stage::PostDump, PanicStep::kPostDumpHooks);
  run_hooks(Stage::Final, PanicStep::kFinalHooks);
  apply_die_policy();
}

}  // namespace

PanicState& panic_state() noexcept { return g_state; }
const Tunables& tunables() noexcept { return g_tunables; }
Tunables& tunables_storage() noexcept { return g_tunables; }
void set_crash_steps(const CrashSteps* steps) noexcept { g_crash_steps.store(steps, std::memory_order_release); }
void set_debugger_step(DebuggerStepFn fn, int64_t debugger_ns) noexcept {
  g_debugger_ns.store(debugger_ns, std::memory_order_release);
  g_debugger_step.store(fn, std::memory_order_release);
}
void set_restart_argv(char** argv) noexcept { g_restart_argv = argv; }
void mark_panic_installed() noexcept {
  make_kill_timer();
  g_installed.store(true, std::memory_order_release);
}
void panic_after_fork() noexcept { make_kill_timer(); }

const char* panic_step_name(PanicStep step) noexcept {
  switch (step) {
    case PanicStep::kNone: return "none";
    case PanicStep::kStop: return "stop";
    case PanicStep::kPreDumpHooks: return "pre-dump hooks";
    case PanicStep::kDump: return "dump";
    case PanicStep::kPostDumpHooks: return "post-dump hooks";
    case PanicStep::kFinalHooks: return "final hooks";
    case PanicStep::kDie: return "die";
    case PanicStep::kDebugger: return "debugger";
    case PanicStep::kCapture: return "capture";
  }
  return "unknown";
}

void format_step_name(int step, const char* detail, char* out, size_t cap) noexcept {
  const char* name = panic_step_name(PanicStep(step));
  if (detail != nullptr && detail[0] != '\0') sys::format(out, cap, "%s (%s)", name, detail);
  else sys::copy_string(out, cap, name);
}

namespace {

[[noreturn]] void panic_from_signal(int sig, siginfo_t* info, void* uc, bool program_gave_up) noexcept {
  char message[kSlotMessageMax];
  sys::FixedWriter w(message, sizeof message);
  int tid = sys::gettid();
  char name[kThreadNameMax];
  own_thread_name(name, sizeof name);
  w.format("fatal signal %s (%s)", signal_name(sig), si_code_name(sig, info->si_code));
  if (is_fault_code(info->si_code) && sig != SIGABRT) w.format(" at 0x%lx", (unsigned long)info->si_addr);
  w.format(" in thread %d (%s)", tid, name);
  if (program_gave_up) w.str("; the program's own handler ran first and gave up");
  enter_panic(sig, info, uc, message);
}

void program_gave_up(const ProgramFault& fault) {
  panic_from_signal(fault.sig, fault.info, fault.ucontext, true);
}

}  // namespace

void fatal_signal_handler(int sig, siginfo_t* info, void* uc) {
  // The program's handler first (program_signals.hpp), except on the
  // panicking thread: a fault there is a nested panic of a step.
  int panicking_tid = g_state.panicking_tid.load(std::memory_order_acquire);
  if (panicking_tid == 0 || panicking_tid != sys::gettid()) {
    ProgramFault first{};
    switch (deliver_fatal_to_program(sig, info, uc, &first)) {
      case ProgramVerdict::kHandled: return;
      case ProgramVerdict::kGaveUp: panic_from_signal(first.sig, first.info, first.ucontext, true);
      case ProgramVerdict::kNoHandler: break;
    }
  }
  panic_from_signal(sig, info, uc, false);
}

void install_program_gave_up_handler() noexcept { set_program_gave_up_handler(program_gave_up); }

void step_deadline_handler(int sig, siginfo_t* info, void* uc) {
  bool ours = info->si_code == SI_TIMER && g_timer_id >= 0 && info->si_ptr == &g_timer_id;
  if (!ours) {
    deliver_reserved_to_program(sig, info, uc);
    return;
  }
  if (g_state.panicking_tid.load(std::memory_order_acquire) != sys::gettid() || !g_step_armed) return;
  char message[128];
  char step[64];
  format_step_name(g_state.step.load(), g_state.step_detail, step, sizeof step);
  size_t n = sys::format(message, sizeof message, "step %s overran its deadline", step);
  record_nested(sys::gettid(), 0, true, message);
  char line[180];
  n = sys::format(line, sizeof line, "panicstop: %s\n", message);
  say(line, n);
  leave_step();
}

}  // namespace detail

void vpanic(const char* fmt, va_list ap) noexcept {
  char message[detail::kPanicMessageMax];
  sys::vformat(message, sizeof message, fmt, ap);
  detail::enter_panic(0, nullptr, nullptr, message);
}

void panic(const char* fmt, ...) noexcept {
  va_list ap;
  va_start(ap, fmt);
  vpanic(fmt, ap);
}

bool panicking() noexcept { return detail::g_state.panicking_tid.load(std::memory_order_acquire) != 0; }

const char* panic_message() noexcept { return panicking() ? detail::g_state.message : nullptr; }

bool on_panic(Stage stage, void (*fn)(void*), void* arg) noexcept {
  int s = int(stage);
  if (s < 0 || s > 2 || fn == nullptr) return false;
  // Thread-safe: each caller claims its own slot, fills it, and publishes it
  // in claim order, so the panic path never sees a slot half written.
  int i = detail::g_hook_claimed[s].load(std::memory_order_relaxed);
  do {
    if (i >= detail::kMaxHooks) return false;
  } while (!detail::g_hook_claimed[s].compare_exchange_weak(i, i + 1, std::memory_order_relaxed));
  detail::g_hooks[s][i] = detail::Hook{fn, arg};
  int expected = i;
  while (!detail::g_hook_count[s].compare_exchange_weak(expected, i + 1, std::memory_order_release,
                                                         std::memory_order_relaxed)) {
    expected = i;  // an earlier claimant is still filling its slot
    detail::cpu_relax();
  }
  return true;
}

namespace detail {
void assert_failed(const char* cond, const char* file, int line) noexcept {
  panic("assertion failed: %s (%s:%d)", cond, file, line);
}

void assert_failed(const char* cond, const char* file, int line, const char* fmt, ...) noexcept {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  sys::vformat(msg, sizeof msg, fmt, ap);
  va_end(ap);
  panic("assertion failed: %s (%s:%d)%s%s", cond, file, line, msg[0] ? ": " : "", msg);
}
}  // namespace detail

}  // namespace panicstop
