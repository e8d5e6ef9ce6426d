// The panic's debugger step (panic/panic_state.hpp: set_debugger_step): FreeBSD's
// trace_on_panic and debugger_on_panic. Runs on the panicking thread with
// every other thread stopped for good: crash-path rules.
#include "dump/text_sections.hpp"
#include "kdb/console.hpp"
#include "kdb/control_socket.hpp"
#include "kdb/kdb_options.hpp"
#include "kdb/session.hpp"
#include "dump/dump_step.hpp"
#include "snapshot/crash_record.hpp"
#include "sys/format.hpp"
#include "sys/syscall.hpp"

#include <fcntl.h>

namespace panicstop::detail {

void run_panic_debugger(bool trace, bool debugger) noexcept {
  // The panic's one record, taken by the capture step: never a capture of
  // our own (it would overwrite the record the writers are about to read).
  const CrashRecord* rec = panic_crash_record();
  if (rec == nullptr) {
    sys::write_line(2, "panicstop: debugger on panic: no crash record (the capture step failed); going on");
    return;
  }
  const ProcessSnapshot& snap = rec->snap();
  if (snap.thread_count == 0) return;
  if (trace) {
    ReportOut out(2);
    out.line("panicstop: stack of the panicking thread (PANICSTOP_TRACE_ON_PANIC=1):");
    write_thread_block(out, *rec, snap.threads[0], true);
  }
  if (!debugger) return;
  // The console works on the panic's own record and stop; `continue` goes
  // back to the panic path, which writes the dumps and ends the process.
  const CrashFacts& f = rec->facts;
  KdbSession session;
  sys::format(session.why, sizeof session.why, "panic: %s", f.message != nullptr ? f.message : "");
  session.record = rec;
  session.stop.ok = f.not_stopped_count == 0;
  session.stop.stopped = f.threads_stopped;
  session.stop.not_stopped = f.not_stopped_count;
  session.stop.not_stopped_tids = f.not_stopped_tids;
  int64_t idle_ns = int64_t(kdb_options().idle_ms) * 1000000;
  long tty = sys::openat(AT_FDCWD, "/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (tty >= 0) {
    run_console(&session, int(tty), int(tty), idle_ns);
    sys::close(int(tty));
    return;
  }
  const char* socket = control_socket_path();
  if (socket[0] == '\0') {
    sys::write_line(2, "panicstop: debugger on panic: no terminal and no control socket; going on");
    return;
  }
  sys::write_line(2, "panicstop: debugger on panic: run `panicstop kdb %d` within %u s (socket %s)", sys::getpid(),
                  kdb_options().idle_ms / 1000, socket);
  if (!serve_one_connection(&session, idle_ns))
    sys::write_line(2, "panicstop: debugger on panic: nobody connected; going on");
}

}  // namespace panicstop::detail
