// kdb's console (console.hpp): a line reader over a raw descriptor and the
// commands, each printing from the session's one snapshot. Every thread but
// this one is stopped, so everything here follows the crash path's rules:
// static buffers, raw system calls, sys::FixedWriter, no allocation.
//
// Thread blocks and the locks section come from the report's own code
// (dump/text_sections.hpp): `bt TID` prints exactly what the text report
// prints for that thread.
#include "kdb/console.hpp"

#include <fcntl.h>

#include <cstdarg>

#include "dump/text_sections.hpp"
#include "panicstop/lockprof.hpp"
#include "panicstop/panic.hpp"
#include "panicstop/witness.hpp"
#include "snapshot/symbolize.hpp"
#include "stop/proc_dir.hpp"
#include "sys/format.hpp"
#include "sys/syscall.hpp"

namespace panicstop::detail {

namespace {

// A command line longer than this is refused (and skipped up to its end).
inline constexpr size_t kMaxLine = 512;

// The console's input: bytes read but not yet used (a read may carry several
// lines, or part of one). Static: one session, hence one console, at a time.
char g_pending[kMaxLine + 1];
size_t g_pending_used = 0;
// Set while the rest of an over-long line is being skipped.
bool g_skipping = false;

void prompt(int fd) noexcept { sys::write_all(fd, "kdb> ", 5); }

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r'; }

// --- the commands ----------------------------------------------------------

enum class Next { kPrompt, kContinue };

struct Console {
  KdbSession* session;
  int out;
};

// The snapshot every command reads, or nullptr after saying why.
const ProcessSnapshot* snapshot_or_say(const Console& c) noexcept {
  const CrashRecord* rec = session_record(c.session);
  if (rec == nullptr) sys::write_line(c.out, "kdb: no snapshot: its memory could not be reserved at install");
  return rec != nullptr ? rec->snapshot : nullptr;
}

// A thread that holds a lock WITNESS recorded (held entries that are empty or
// name the lock it waits for are not held yet).
bool holds_recorded_locks(const SnapshotThread& t) noexcept {
  if (t.held_dropped != 0) return true;
  for (uint32_t i = 0; i < t.held_count && t.held != nullptr; ++i)
    if (t.held[i].lock != nullptr && t.held[i].lock != t.waiting_on) return true;
  return false;
}

// WITNESS's held locks, per thread; one line when nobody holds any.
void write_held_by_thread(ReportOut& out, const ProcessSnapshot& snap) noexcept {
  symbolizer_begin(snap);
  uint32_t holders = 0;
  for (uint32_t i = 0; i < snap.thread_count; ++i) {
    const SnapshotThread& t = snap.threads[i];
    if (!holds_recorded_locks(t)) continue;
    out.line("thread %d (%s):", t.tid, t.name);
    write_held_lock_lines(out, snap, t);
    ++holders;
  }
  symbolizer_end();
  if (holders == 0) out.line("no thread holds a panicstop lock");
}

// Why held locks are unknown, or nullptr when WITNESS records them.
const char* witness_unavailable() noexcept {
  if (!kWitnessBuiltIn)
    return "WITNESS is not built in (configure the library with -DPANICSTOP_WITNESS=ON, the default for Debug builds)";
  if (witness_mode() == WitnessMode::kOff) return "WITNESS is built in but off (PANICSTOP_WITNESS=-1)";
  return nullptr;
}

Next cmd_threads(const Console& c, const char*) noexcept {
  const ProcessSnapshot* snap = snapshot_or_say(c);
  if (snap == nullptr) return Next::kPrompt;
  ReportOut out(c.out);
  out.line("%u threads (this console runs on thread %d):", snap->thread_count, snap->panicking_tid);
  for (uint32_t i = 0; i < snap->thread_count; ++i) {
    const SnapshotThread& t = snap->threads[i];
    char wait[1024];
    sys::FixedWriter w(wait, sizeof wait);
    bool waits = describe_wait(w, *snap, t);
    out.line("  %-7d %-16s [%s] %c%s%s", t.tid, t.name[0] != '\0' ? t.name : "?", thread_state_name(*session_record(c.session), t, false),
             t.kernel_state, waits ? "  " : "", wait);
  }
  return Next::kPrompt;
}

Next cmd_bt(const Console& c, const char* arg) noexcept {
  uint64_t tid = 0;
  bool all = sys::equals(arg, "all");
  if (!all && !sys::parse_u64(arg, sys::bounded_strlen(arg, 32), &tid)) {
    sys::write_line(c.out, "usage: bt TID | bt all");
    return Next::kPrompt;
  }
  const ProcessSnapshot* snap = snapshot_or_say(c);
  if (snap == nullptr) return Next::kPrompt;
  const SnapshotThread* t = all ? nullptr : find_thread(*snap, int(tid));
  if (!all && t == nullptr) {
    sys::write_line(c.out, "bt: no thread %llu in this process; type threads", static_cast<unsigned long long>(tid));
    return Next::kPrompt;
  }
  ReportOut out(c.out);
  symbolizer_begin(*snap);
  const CrashRecord& rec = *session_record(c.session);
  if (all) write_thread_blocks(out, rec, false);
  else write_thread_block(out, rec, *t, false);
  symbolizer_end();
  return Next::kPrompt;
}

Next cmd_locks(const Console& c, const char*) noexcept {
  const ProcessSnapshot* snap = snapshot_or_say(c);
  if (snap == nullptr) return Next::kPrompt;
  ReportOut out(c.out);
  if (snap->lock_count == 0) out.line("no thread waits for a panicstop lock");
  else write_locks_section(out, *snap);
  const char* why_not = witness_unavailable();
  if (why_not != nullptr) {
    out.line("held locks: unknown except for the owners above: %s", why_not);
    return Next::kPrompt;
  }
  out.line("held locks (WITNESS):");
  write_held_by_thread(out, *snap);
  return Next::kPrompt;
}

Next cmd_witness(const Console& c, const char*) noexcept {
  const char* why_not = witness_unavailable();
  if (why_not != nullptr) {
    sys::write_line(c.out, "%s", why_not);
    return Next::kPrompt;
  }
  const ProcessSnapshot* snap = snapshot_or_say(c);
  if (snap == nullptr) return Next::kPrompt;
  ReportOut out(c.out);
  out.line("WITNESS: mode %s, action %s, %llu reports so far",
           witness_mode() == WitnessMode::kOn ? "on (order checks)" : "on without order checks (PANICSTOP_WITNESS=0)",
           witness_action() == WitnessAction::kPanic ? "panic" : "warn",
           static_cast<unsigned long long>(witness_report_count()));
  write_held_by_thread(out, *snap);
  return Next::kPrompt;
}

Next cmd_lockprof(const Console& c, const char*) noexcept {
  if (!lockprof_enabled()) {
    LockProfileRow row;
    if (lockprof_report(&row, 1) == 0) {
      sys::write_line(c.out, "lock profiling is off (PANICSTOP_LOCKPROF=1 or lockprof_enable(true) turns it on)");
      return Next::kPrompt;
    }
    sys::write_line(c.out, "lock profiling is off; the statistics gathered while it was on:");
  }
  if (!lockprof_write_report(c.out)) sys::write_line(c.out, "lockprof: the table could not be written");
  return Next::kPrompt;
}

Next cmd_dump(const Console& c, const char* dir) noexcept {
  if (dir[0] != '\0' && dir[0] != '/') {
    sys::write_line(c.out,
                    "dump: '%s' is relative; give an absolute directory (the process's working directory is not yours)",
                    dir);
    return Next::kPrompt;
  }
  int written = session_write_dumps(c.session, dir[0] != '\0' ? dir : nullptr, c.out);
  sys::write_line(c.out, "dump: %d file%s written", written, written == 1 ? "" : "s");
  return Next::kPrompt;
}

Next cmd_panic(const Console& c, const char* message) noexcept {
  sys::write_line(c.out, "panicking: the panic path takes over; this process will not continue");
  panicstop::panic("kdb: %s", message[0] != '\0' ? message : "panic command at the console");
}

Next cmd_continue(const Console& c, const char*) noexcept {
  sys::write_line(c.out, "continuing");
  return Next::kContinue;
}

Next cmd_help(const Console& c, const char*) noexcept;

struct CommandSpec {
  const char* name;
  const char* args;
  const char* help;
  bool needs_full_name;  // never run from an abbreviation
  Next (*run)(const Console& c, const char* args) noexcept;
};

const CommandSpec kCommands[] = {
    {"threads", "", "every thread: tid, name, [state], kernel state, the lock it waits for", false, cmd_threads},
    {"bt", "TID|all", "a thread's block as the text report prints it (bt all: every thread)", false, cmd_bt},
    {"locks", "", "locks threads wait for, with owner and waiters; with WITNESS, the locks each thread holds",
     false, cmd_locks},
    {"witness", "", "WITNESS's mode, report count and each thread's held locks", false, cmd_witness},
    {"lockprof", "", "the lock-profiling table (PANICSTOP_LOCKPROF)", false, cmd_lockprof},
    {"dump", "[DIR]", "write the dumps (.txt, .core) of the stopped process to DIR (absolute) or the dump directory",
     false, cmd_dump},
    {"panic", "[MESSAGE]", "panic with \"kdb: MESSAGE\": dumps as a crash would; the process does not continue",
     true, cmd_panic},
    {"continue", "", "restart the stopped threads and leave the console", false, cmd_continue},
    {"help", "", "this list", false, cmd_help},
};

Next cmd_help(const Console& c, const char*) noexcept {
  ReportOut out(c.out);
  out.line("commands (a unique prefix is enough, e.g. th for threads; panic must be typed in full):");
  for (const CommandSpec& spec : kCommands) {
    char usage[64];
    sys::format(usage, sizeof usage, "%s %s", spec.name, spec.args);
    out.line("  %-18s %s", usage, spec.help);
  }
  out.line("the console also continues by itself when its input ends or stays quiet (PANICSTOP_KDB_IDLE_MS)");
  return Next::kPrompt;
}

// The command a word names: itself, or the one command it is a prefix of.
// nullptr after saying why.
const CommandSpec* find_command(int out, const char* word, size_t len) noexcept {
  const CommandSpec* found = nullptr;
  uint32_t matches = 0;
  for (const CommandSpec& spec : kCommands) {
    size_t name_len = sys::bounded_strlen(spec.name, 32);
    if (len > name_len) continue;
    bool prefix = true;
    for (size_t i = 0; i < len && prefix; ++i) prefix = spec.name[i] == word[i];
    if (!prefix) continue;
    if (len == name_len) return &spec;  // exact: wins over longer names ("bt")
    if (spec.needs_full_name) continue;
    found = &spec;
    ++matches;
  }
  if (matches == 1) return found;
  if (matches == 0) sys::write_line(out, "unknown command '%.*s'; type help", int(len), word);
  else sys::write_line(out, "ambiguous command '%.*s'; type help", int(len), word);
  return nullptr;
}

// Runs one line (NUL-terminated, no newline).
Next run_line(const Console& c, char* line) noexcept {
  while (is_space(*line)) ++line;
  size_t end = sys::bounded_strlen(line, kMaxLine);
  while (end > 0 && is_space(line[end - 1])) line[--end] = '\0';
  if (line[0] == '\0') return Next::kPrompt;
  size_t word = 0;
  while (line[word] != '\0' && !is_space(line[word])) ++word;
  const char* args = line + word;
  while (is_space(*args)) ++args;
  const CommandSpec* spec = find_command(c.out, line, word);
  return spec != nullptr ? spec->run(c, args) : Next::kPrompt;
}

// --- input -----------------------------------------------------------------

enum class Input { kLine, kEnd, kIdle };

// Moves the first complete line of g_pending into `line` (NUL-terminated).
// An over-long line is reported and dropped, through its newline.
bool take_line(int out, char* line) noexcept {
  for (;;) {
    size_t nl = 0;
    while (nl < g_pending_used && g_pending[nl] != '\n') ++nl;
    if (nl == g_pending_used) {
      if (g_pending_used < kMaxLine) return false;
      if (!g_skipping) sys::write_line(out, "kdb: line longer than %zu bytes ignored", kMaxLine);
      g_skipping = true;
      g_pending_used = 0;
      return false;
    }
    bool skipped = g_skipping;
    g_skipping = false;
    if (!skipped) {
      for (size_t i = 0; i < nl; ++i) line[i] = g_pending[i];
      line[nl] = '\0';
    }
    g_pending_used -= nl + 1;
    for (size_t i = 0; i < g_pending_used; ++i) g_pending[i] = g_pending[nl + 1 + i];
    if (!skipped) return true;
  }
}

// The next line, waiting at most until `deadline_ns` (< 0: no limit). At the
// end of input a last unterminated line is still returned as a line.
Input next_line(int in, int out, char* line, int64_t deadline_ns) noexcept {
  for (;;) {
    if (take_line(out, line)) return Input::kLine;
    int64_t left = -1;
    if (deadline_ns >= 0) {
      left = deadline_ns - sys::monotonic_ns();
      if (left <= 0) return Input::kIdle;
    }
    long ready = sys::wait_readable(in, left);
    if (ready == 0) return Input::kIdle;
    long n = ready < 0 ? ready : sys::read(in, g_pending + g_pending_used, kMaxLine - g_pending_used);
    if (n == -4 /* EINTR */ || n == -11 /* EAGAIN */) continue;
    if (n <= 0) {
      if (g_pending_used == 0 || g_skipping) return Input::kEnd;
      for (size_t i = 0; i < g_pending_used; ++i) line[i] = g_pending[i];
      line[g_pending_used] = '\0';
      g_pending_used = 0;
      return Input::kLine;
    }
    g_pending_used += size_t(n);
  }
}

// The process's comm without its newline; "?" if unreadable.
void read_comm(char* comm, size_t cap) noexcept {
  sys::copy_string(comm, cap, "?");
  long fd = proc_open(ProcScope::kProcess, "comm", O_RDONLY);
  if (fd < 0) return;
  long n = sys::read(int(fd), comm, cap - 1);
  sys::close(int(fd));
  if (n <= 0) {
    sys::copy_string(comm, cap, "?");
    return;
  }
  while (n > 0 && (comm[n - 1] == '\n' || comm[n - 1] == '\0')) --n;
  comm[n] = '\0';
}

void banner(const Console& c) noexcept {
  char comm[32];
  read_comm(comm, sizeof comm);
  const StopResult& stop = c.session->stop;
  sys::write_line(c.out,
                  "kdb: process %d (%s) stopped: %s; %u threads stopped, %u not stopped; type help for commands",
                  sys::getpid(), comm, c.session->why, stop.stopped, stop.not_stopped);
  if (stop.refused != 0)
    sys::write_line(c.out, "kdb: the stop signal could not be sent to %u threads (%s): they run on", stop.refused,
                    stop_refusal_reason(stop.refused_errno));
}

// "60 s", or "250 ms" when not whole seconds.
void describe_duration(char* out, size_t cap, int64_t ns) noexcept {
  int64_t ms = ns / 1000000;
  if (ms % 1000 == 0) sys::format(out, cap, "%lld s", static_cast<long long>(ms / 1000));
  else sys::format(out, cap, "%lld ms", static_cast<long long>(ms));
}

}  // namespace

ConsoleEnd run_console(KdbSession* s, int in_fd, int out_fd, int64_t idle_timeout_ns) noexcept {
  Console c{s, out_fd};
  g_pending_used = 0;
  g_skipping = false;
  banner(c);
  static char line[kMaxLine + 1];
  for (;;) {
    prompt(out_fd);
    int64_t deadline = idle_timeout_ns >= 0 ? sys::monotonic_ns() + idle_timeout_ns : -1;
    switch (next_line(in_fd, out_fd, line, deadline)) {
      case Input::kIdle: {
        char quiet[32];
        describe_duration(quiet, sizeof quiet, idle_timeout_ns);
        sys::write_line(out_fd, "\nkdb: no input for %s; continuing", quiet);
        return ConsoleEnd::kIdle;
      }
      case Input::kEnd:
        sys::write_line(out_fd, "\nkdb: end of input; continuing");
        return ConsoleEnd::kHangup;
      case Input::kLine:
        if (run_line(c, line) == Next::kContinue) return ConsoleEnd::kContinue;
        break;
    }
  }
}

}  // namespace panicstop::detail
