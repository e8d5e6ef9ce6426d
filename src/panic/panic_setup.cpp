// Setting up the panic layer. The std::terminate handler is set up in
// terminate_setup.cpp.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>

#include "panic/panic_internal.hpp"
#include "panic/panic_state.hpp"
#include "panicstop/panic.hpp"
#include "stop/stop.hpp"
#include "sys/env_options.hpp"
#include "sys/fd_reserve.hpp"
#include "sys/format.hpp"
#include "sys/syscall.hpp"
#include "thread/altstack.hpp"
#include "thread/libc_next.hpp"
#include "thread/program_signals.hpp"
#include "thread/handler_stack.hpp"
#include "thread/signal_sections.hpp"
#include "thread/slot.hpp"

namespace panicstop::detail {

namespace {

std::atomic<int> g_install_state{0};  // 0 no, 1 in progress, 2 done

// /proc/self/cmdline, split into a NULL-terminated argv in memory that is never
// freed (the restart policy execs it from the crash path).
void read_restart_argv() {
  long fd = sys::openat(AT_FDCWD, "/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  constexpr size_t kMax = 128 * 1024;
  char* text = static_cast<char*>(sys::mmap_anonymous(kMax, false));
  if (text == nullptr) {
    sys::close(int(fd));
    return;
  }
  size_t len = 0;
  for (long n; len < kMax - 1 && (n = sys::read(int(fd), text + len, kMax - 1 - len)) > 0;) len += size_t(n);
  sys::close(int(fd));
  text[len] = '\0';
  size_t argc = 0;
  for (size_t i = 0; i < len; ++i)
    if (text[i] == '\0') ++argc;
  if (len > 0 && text[len - 1] != '\0') ++argc;
  auto** argv = static_cast<char**>(sys::mmap_anonymous((argc + 1) * sizeof(char*), false));
  if (argv == nullptr) return;
  size_t k = 0;
  for (size_t i = 0; i < len && k < argc; ++k) {
    argv[k] = text + i;
    while (i < len && text[i] != '\0') ++i;
    ++i;
  }
  argv[k] = nullptr;
  set_restart_argv(argv);
}

bool install_signal_handlers() {
  // SA_NODEFER: a fault inside the panic path (which runs inside this handler)
  // must reach the handler again as a nested panic; a blocked fault signal
  // would make the kernel kill the process with no dump.
  sigset_t mask;
  sigfillset(&mask);
  for (int sig : kFatalSignals) sigdelset(&mask, sig);
  sigdelset(&mask, hard_stop_signal());
  sigdelset(&mask, step_deadline_signal());
  for (int sig : kFatalSignals)
    if (!take_over_signal(sig, SignalRole::kFatal, handler_entry<fatal_signal_handler>, SA_SIGINFO | SA_ONSTACK | SA_NODEFER, mask))
      return false;
  install_program_gave_up_handler();
  sigset_t deadline_mask;
  sigfillset(&deadline_mask);
  for (int sig : kFatalSignals) sigdelset(&deadline_mask, sig);
  return take_over_signal(step_deadline_signal(), SignalRole::kReserved, handler_entry<step_deadline_handler>,
                          SA_SIGINFO | SA_ONSTACK, deadline_mask);
}

// A thread that blocked panicstop's signals before install() (the program's
// main thread under the preload, started with an inherited mask) could not
// be stopped; from here on the interposed mask functions keep them open.
void unblock_own_signals() noexcept {
  uint64_t open = unblockable_signals();
  sys::rt_sigprocmask(SIG_UNBLOCK, &open, nullptr);
}

}  // namespace

bool install_panic() noexcept {
  int expected = 0;
  if (!g_install_state.compare_exchange_strong(expected, 1)) {
    while (g_install_state.load() == 1) sys::sched_yield();
    return true;
  }
  char err[512];
  Tunables t;
  if (!parse_tunables(&t, err, sizeof err)) sys::env_fail(err, sizeof err);
  tunables_storage() = t;
  panic_state().stop_enabled = t.stop_on_panic;

  bool ok = reserve_slots() && reserve_altstacks() && reserve_stop_memory();
  if (!ok) {
    static const char kMsg[] = "panicstop: install failed: cannot reserve memory\n";
    sys::write_stderr(kMsg, sizeof kMsg - 1);
    g_install_state.store(0);
    return false;
  }
  // Descriptors for the crash path at a process's descriptor limit.
  sys::reserve_fds();
  ensure_altstack();
  resolve_libc_next();
  unblock_own_signals();
  thread_start_hook_active();  // resolve the next pthread_create before threads race to
  read_restart_argv();
  ok = install_stop_handlers() && install_signal_handlers();
  install_terminate_handler();
  // Threads that exist already get their alternate stack from the stop handler.
  broadcast_altstack_setup();
  if (ok) mark_panic_installed();
  g_install_state.store(2);
  if (!ok) {
    static const char kMsg[] = "panicstop: install failed: sigaction\n";
    sys::write_stderr(kMsg, sizeof kMsg - 1);
  }
  return ok;
}

}  // namespace panicstop::detail
