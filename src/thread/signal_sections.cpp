#include "thread/signal_sections.hpp"

#include <csignal>

#include "sys/syscall.hpp"

namespace panicstop::detail {

namespace {

struct SectionState {
  uint32_t spin_depth;
  uint32_t critical_depth;
  uint64_t base_mask;  // the thread's own mask when it entered the outermost section
};
__thread SectionState tls_sections __attribute__((tls_model("initial-exec")));

constexpr uint64_t bit(int sig) { return uint64_t(1) << (sig - 1); }

void apply_mask(const SectionState& st) noexcept {
  uint64_t mask = st.base_mask;
  if (st.spin_depth > 0) mask |= spin_section_mask();
  if (st.critical_depth > 0) mask |= bit(soft_stop_signal());
  sys::rt_sigprocmask(SIG_SETMASK, &mask, nullptr);
}

void enter(uint32_t SectionState::*depth) noexcept {
  SectionState& st = tls_sections;
  if (st.spin_depth == 0 && st.critical_depth == 0) sys::rt_sigprocmask(SIG_BLOCK, nullptr, &st.base_mask);
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

// Signals a spinlock section leaves deliverable: the ones that report a fault
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

void spinlock_enter() noexcept { enter(&SectionState::spin_depth); }
void spinlock_exit() noexcept { exit(&SectionState::spin_depth); }
void critical_enter() noexcept { enter(&SectionState::critical_depth); }
void critical_exit() noexcept { exit(&SectionState::critical_depth); }
uint32_t spinlock_depth() noexcept { return tls_sections.spin_depth; }
uint32_t critical_depth() noexcept { return tls_sections.critical_depth; }

}  // namespace panicstop::detail
