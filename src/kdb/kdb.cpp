// kdb_enter(), live_dump() and the session they share (FreeBSD's kdb_trap()
// with stop_cpus() / restart_cpus(), and livedump). Crash-path rules: raw
// system calls, static storage, no allocation.
#include "panicstop/kdb.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <fcntl.h>

#include "dump/dump_files.hpp"
#include "dump/text_report.hpp"
#include "kdb/console.hpp"
#include "kdb/kdb_options.hpp"
#include "kdb/session.hpp"
#include "panic/tunables.hpp"
#include "panicstop/panic.hpp"
#include "sys/fd_reserve.hpp"
#include "sys/format.hpp"
#include "sys/signal_names.hpp"
#include "sys/syscall.hpp"
#include "thread/signal_sections.hpp"
#include "thread/slot.hpp"

namespace panicstop {
namespace detail {

// Defined with the control socket: serves connections that waited while a
// session was in progress.
void serve_deferred_requests() noexcept;

namespace {

std::atomic<int> g_session_tid{0};

// A spinlock section's mask, undone at the end: the caller must not run a
// signal handler of the program while every other thread is stopped (it could
// wait on a lock a stopped thread holds). Faults stay open (a fault in a
// session is a panic), and so does the hard stop (a panic elsewhere must be
// able to stop this thread too).
uint64_t block_async_signals() noexcept {
  uint64_t block = spin_section_mask();
  uint64_t old = 0;
  sys::rt_sigprocmask(SIG_BLOCK, &block, &old);
  return old;
}

int64_t stop_timeout_ns() noexcept { return int64_t(tunables().stop_timeout_ms) * 1000000; }

}  // namespace

bool session_active() noexcept { return g_session_tid.load(std::memory_order_acquire) != 0; }

// In the child of fork(): the session's thread is the parent's (or, if the
// forking thread held it, its end_session() in the child finds nothing to
// restart). Called by kdb_after_fork().
void reset_session_after_fork() noexcept { g_session_tid.store(0, std::memory_order_relaxed); }

SessionStart begin_session(KdbSession* s, const char* why) noexcept {
  if (!stop_handlers_installed()) return SessionStart::kFailed;
  if (panicking()) return SessionStart::kBusy;
  int self = sys::gettid();
  int expected = 0;
  if (!g_session_tid.compare_exchange_strong(expected, self, std::memory_order_acq_rel)) return SessionStart::kBusy;
  sys::copy_string(s->why, sizeof s->why, why != nullptr ? why : "kdb");
  s->record = nullptr;
  s->saved_mask = block_async_signals();
  // A process at its descriptor limit is one an operator wants a look at:
  // the stop and the dumps open what the live dump's reserve held.
  sys::release_live_fds(sys::kLiveReservedFds);
  s->stop = stop_other_threads(StopKind::kSoft, stop_timeout_ns());
  if (s->stop.busy || panicking()) {
    // A panic holds the stopper role: it will stop this thread too.
    if (!s->stop.busy) restart_stopped_threads();
    sys::retake_live_fds();
    sys::rt_sigprocmask(SIG_SETMASK, &s->saved_mask, nullptr);
    g_session_tid.store(0, std::memory_order_release);
    return SessionStart::kBusy;
  }
  set_scheduler_stopped(true);
  return SessionStart::kStarted;
}

void end_session(KdbSession* s) noexcept {
  set_scheduler_stopped(false);
  // Before the program's threads can take the numbers.
  sys::retake_live_fds();
  restart_stopped_threads();
  sys::rt_sigprocmask(SIG_SETMASK, &s->saved_mask, nullptr);
  g_session_tid.store(0, std::memory_order_release);
  serve_deferred_requests();
}

const CrashRecord* session_record(KdbSession* s) noexcept {
  if (s->record == nullptr) {
    // The caller's registers from a real kernel frame, taken here and not at
    // the session's start: the frames below this one must still be live
    // while the capture unwinds them.
    save_own_context_via_signal();
    CrashRecord& rec = reset_crash_record();
    CrashFacts& f = rec.facts;
    sys::copy_string(f.live_reason, sizeof f.live_reason, s->why[0] != '\0' ? s->why : "requested");
    f.threads_stopped = s->stop.stopped;
    f.start_ns = s->stop.start_ns;
    f.stopped_ns = s->stop.end_ns;
    f.not_stopped_count = s->stop.not_stopped;
    f.not_stopped_tids = s->stop.not_stopped_tids;
    if (capture_crash_record(rec)) s->record = &rec;
  }
  return s->record;
}

int session_write_dumps(KdbSession* s, const char* dir, int echo_fd, int dir_fd) noexcept {
  const CrashRecord* rec = session_record(s);
  if (rec == nullptr) {
    static const char kMsg[] = "panicstop: no dump: the snapshot memory could not be reserved\n";
    sys::write_stderr(kMsg, sizeof kMsg - 1);
    if (echo_fd >= 0) sys::send_all(echo_fd, kMsg, sizeof kMsg - 1);
    return 0;
  }
  return write_dumps(*rec, dump_options(), dir, echo_fd, dir_fd);
}

bool session_write_report(KdbSession* s, int fd) noexcept {
  const CrashRecord* rec = session_record(s);
  if (rec == nullptr) return false;
  return write_text_report(*rec, dump_options(), fd);
}

namespace {

void run_report_backend(KdbSession* s) noexcept {
  const KdbOptions& t = kdb_options();
  int fd = 2;
  if (t.output[0] != '\0') {
    long f = sys::openat(AT_FDCWD, t.output, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (f >= 0) {
      fd = int(f);
    } else {
      sys::write_line(2, "panicstop: kdb: cannot open %s (errno %ld); report on stderr", t.output, -f);
    }
  }
  session_write_report(s, fd);
  if (fd != 2) sys::close(fd);
}

// The console on the controlling terminal; false if there is none.
bool run_terminal_console(KdbSession* s) noexcept {
  long fd = sys::openat(AT_FDCWD, "/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return false;
  run_console(s, int(fd), int(fd), int64_t(kdb_options().idle_ms) * 1000000);
  sys::close(int(fd));
  return true;
}

}  // namespace
}  // namespace detail

KdbResult kdb_enter(const char* why) noexcept {
  char reason[200];
  sys::format(reason, sizeof reason, "kdb: %s", why != nullptr && why[0] != '\0' ? why : "kdb_enter");
  detail::KdbSession session;
  switch (detail::begin_session(&session, reason)) {
    case detail::SessionStart::kBusy: return KdbResult::kBusy;
    case detail::SessionStart::kFailed: return KdbResult::kFailed;
    case detail::SessionStart::kStarted: break;
  }
  if (detail::kdb_options().backend != detail::KdbBackend::kConsole || !detail::run_terminal_console(&session))
    detail::run_report_backend(&session);
  detail::end_session(&session);
  return KdbResult::kDone;
}

int live_dump(const char* dir) noexcept {
  detail::KdbSession session;
  if (detail::begin_session(&session, "live dump: live_dump()") != detail::SessionStart::kStarted) return -1;
  int written = detail::session_write_dumps(&session, dir, -1);
  detail::end_session(&session);
  return written;
}

bool kdb_active() noexcept { return detail::session_active(); }

namespace detail {

// PANICSTOP_KDB_SIGNAL's handler (installed by kdb_setup.cpp).
void kdb_signal_handler(int sig, siginfo_t*, void*) {
  int saved_errno = errno;
  // A session stops every other thread: never from inside a spinlock section.
  if (defer_in_spin_section(sig)) {
    errno = saved_errno;
    return;
  }
  char why[64];
  const char* name = sys::signal_name(sig);
  if (name != nullptr) sys::format(why, sizeof why, "%s received", name);
  else sys::format(why, sizeof why, "signal %d received", sig);
  kdb_enter(why);
  errno = saved_errno;
}

}  // namespace detail

}  // namespace panicstop
