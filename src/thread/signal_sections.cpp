#include "thread/signal_sections.hpp"

#include <csignal>

#include "sys/syscall.hpp"
#include "thread/program_signals.hpp"

namespace panicstop::detail {

__thread uint32_t tls_spin_depth __attribute__((tls_model("initial-exec"))) = 0;
__thread uint64_t tls_spin_deferred __attribute__((tls_model("initial-exec"))) = 0;

namespace {

struct SectionState {
  uint32_t blocking_depth;
  uint32_t critical_depth;
  uint64_t base_mask;  // the thread's own mask when it entered the outermost section
};
__thread SectionState tls_sections __attribute__((tls_model("initial-exec")));

constexpr uint64_t bit(int sig) { return uint64_t(1) << (sig - 1); }

void apply_mask(const SectionState& st) noexcept {
  uint64_t mask = st.base_mask;
  if (st.blocking_depth > 0) mask |= spin_section_mask();
  if (st.critical_depth > 0) mask |= bit(soft_stop_signal());
  sys::rt_sigprocmask(SIG_SETMASK, &mask, nullptr);
}

void enter(uint32_t SectionState::*depth) noexcept {
  SectionState& st = tls_sections;
  if (st.blocking_depth == 0 && st.critical_depth == 0) sys::rt_sigprocmask(SIG_BLOCK, nullptr, &st.base_mask);
  if (st.*depth == 0) {
    st.*depth = 1;
    apply_mask(st);
  } else {
    ++(st.*depth);
  }
}

void exit(uint32_t SectionState::*depth) noexcept {
  SectionState& st = tls_sections;
  if (st.*depth == 0) return;  // unbalanced exit: ignore rather than corrupt the mask
  if (--(st.*depth) == 0) apply_mask(st);
}

}  // namespace

// Signals a blocking section leaves deliverable: the ones that report a fault
// in this very thread (blocking them would make the kernel kill the process
// without a dump) and the hard stop, which is the panic's NMI.
uint64_t spin_section_mask() noexcept {
  uint64_t keep = bit(SIGSEGV) | bit(SIGBUS) | bit(SIGILL) | bit(SIGFPE) | bit(SIGTRAP) | bit(SIGSYS) |
                  bit(SIGABRT) | bit(hard_stop_signal()) | bit(SIGKILL) | bit(SIGSTOP);
  return ~keep;
}

void spin_section_sigset(sigset_t* set) noexcept {
  sigemptyset(set);
  uint64_t mask = spin_section_mask();
  for (int sig = 1; sig <= 64; ++sig)
    if ((mask & bit(sig)) != 0) sigaddset(set, sig);
}

int hard_stop_signal() noexcept { return SIGRTMAX - 2; }
int soft_stop_signal() noexcept { return SIGRTMAX - 3; }
int step_deadline_signal() noexcept { return SIGRTMAX - 4; }
int kdb_request_signal() noexcept { return SIGRTMAX - 5; }

bool defer_in_spin_section(int sig) noexcept {
  if (tls_spin_depth == 0) return false;
  __atomic_fetch_or(&tls_spin_deferred, bit(sig), __ATOMIC_RELAXED);
  return true;
}

void spinlock_replay_deferred() noexcept {
  uint64_t sigs = __atomic_exchange_n(&tls_spin_deferred, 0, __ATOMIC_RELAXED);
  if (sigs == 0) return;
  // Thread-directed to this very thread: the kernel delivers each one on the
  // way back from the system call, so the thread acts right here, after its
  // last SpinMutex was released. As own signals they cannot be taken for the
  // program's use of the same numbers.
  int tid = sys::gettid();
  for (int sig = 1; sig <= 64; ++sig)
    if ((sigs & bit(sig)) != 0) send_own_signal(tid, sig);
}

void blocking_section_enter() noexcept { enter(&SectionState::blocking_depth); }
void blocking_section_exit() noexcept { exit(&SectionState::blocking_depth); }
void critical_enter() noexcept { enter(&SectionState::critical_depth); }
void critical_exit() noexcept { exit(&SectionState::critical_depth); }
uint32_t spinlock_depth() noexcept { return tls_spin_depth; }
uint32_t blocking_depth() noexcept { return tls_sections.blocking_depth; }
uint32_t critical_depth() noexcept { return tls_sections.critical_depth; }

}  // namespace panicstop::detail
