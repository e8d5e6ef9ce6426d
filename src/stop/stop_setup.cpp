// Installing the stop handlers: setup only (sigaction).
#include <csignal>

#include "stop/emulator.hpp"
#include "stop/proc_dir.hpp"
#include "stop/stop.hpp"
#include "sys/syscall.hpp"
#include "thread/altstack.hpp"
#include "thread/program_signals.hpp"
#include "thread/handler_stack.hpp"
#include "thread/signal_sections.hpp"

namespace panicstop::detail {

void (*stop_signal_handler_address() noexcept)(int, siginfo_t*, void*);
void mark_stop_handlers_installed() noexcept;

namespace {

SignalHandler g_stop_handler = nullptr;  // stop.cpp's, known only through a call

// While a stop handler runs (and parks) every asynchronous signal is blocked,
// except the hard stop inside a soft stop (a panic must reach a thread parked
// by kdb). Fault signals stay open so a fault in the handler reaches the panic
// path instead of killing the process silently.
void handler_mask(sigset_t* mask, bool allow_hard_stop) {
  spin_section_sigset(mask);
  if (!allow_hard_stop) sigaddset(mask, hard_stop_signal());
}

void send_setup_signal(int tid, void* self) noexcept {
  if (tid != *static_cast<int*>(self)) send_own_signal(tid, hard_stop_signal());
}

}  // namespace

bool install_stop_handlers() noexcept {
  if (!reserve_stop_memory()) return false;
  // Kept for the crash path, which may find /proc gone (a sandbox entered
  // after install). Without procfs now, the stop falls back to the registry,
  // so threads started from here on register as they start.
  set_claim_slot_at_thread_start(!open_proc_dir());
  // Under qemu-user, its own helper threads are no threads of the program.
  note_emulator_tasks();
  constexpr int kFlags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  g_stop_handler = stop_signal_handler_address();
  sigset_t mask;
  handler_mask(&mask, false);
  if (!take_over_signal(hard_stop_signal(), SignalRole::kReserved, handler_entry_via<&g_stop_handler>, kFlags, mask))
    return false;
  handler_mask(&mask, true);
  if (!take_over_signal(soft_stop_signal(), SignalRole::kReserved, handler_entry_via<&g_stop_handler>, kFlags, mask))
    return false;
  mark_stop_handlers_installed();
  return true;
}

void broadcast_altstack_setup() noexcept {
  int self = sys::gettid();
  for_each_thread(send_setup_signal, &self);
}

}  // namespace panicstop::detail
