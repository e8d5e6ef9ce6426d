#include "show_command.hpp"

#include <iostream>
#include <new>

#include "read/dump_file.hpp"
#include "read/render.hpp"

namespace panicstop::tool {
namespace {

// The dump was printed, but it is a core cut short: what it still holds is
// shown, what it lost is said (stderr, and "truncated" in JSON).
constexpr int kExitIncomplete = 3;

int run_show(const std::vector<std::string>& args) {
  bool json = false;
  std::vector<std::string> files;
  bool options_done = false;
  for (const std::string& arg : args) {
    if (!options_done && arg == "--") {
      options_done = true;
    } else if (!options_done && arg == "--json") {
      json = true;
    } else if (!options_done && (arg == "--help" || arg == "-h")) {
      std::cout << "Usage: " << kShowCommand.usage << "\n\n" << kShowCommand.help;
      return kExitOk;
    } else if (!options_done && arg.size() > 1 && arg[0] == '-') {
      return usage_error("show", "show: unknown option '" + arg + "'");
    } else {
      files.push_back(arg);
    }
  }
  if (files.empty()) return usage_error("show", "show: missing FILE");
  if (files.size() > 1) return usage_error("show", "show: takes one FILE, got " + std::to_string(files.size()));

  const std::string& file = files.front();
  read::Report report;
  try {
    report = read::read_dump_file(file);
  } catch (const read::ReadError& e) {
    std::cerr << "panicstop: " << file << ": " << e.what() << "\n";
    return kExitFailure;
  } catch (const std::bad_alloc&) {
    std::cerr << "panicstop: " << file << ": out of memory reading the dump\n";
    return kExitFailure;
  } catch (const std::exception& e) {
    // A reader bug, not a property of the file; still one line and exit 1.
    std::cerr << "panicstop: " << file << ": internal error reading the dump: " << e.what() << "\n";
    return kExitFailure;
  }
  if (json) {
    read::render_json(report, file, std::cout);
  } else {
    read::render_text(report, std::cout);
    for (const std::string& w : report.warnings) std::cerr << "panicstop: " << file << ": warning: " << w << "\n";
  }
  std::cout.flush();
  if (!std::cout) {
    std::cerr << "panicstop: " << file << ": cannot write the output\n";
    return kExitFailure;
  }
  return report.truncated ? kExitIncomplete : kExitOk;
}

constexpr std::string_view kShowHelp = R"help(Reads one dump that panicstop wrote, or any Linux core, and prints it.

FILE may be:
  - a text report (*.txt, first line "panic: MESSAGE"): printed back in the
    same layout, each frame given "at FILE:LINE" when its module file is on
    this machine with debug info;
  - a panicstop core (*.core, ELF core with a PANICSTOP note): the panic
    message, each thread with its name, state, pc and sp and a backtrace
    unwound with libdw (function, module, file:line), then the lock table,
    waiters, nested panics and threads that did not stop;
  - a kernel or gdb `gcore` core: the same, with the message "no panicstop
    note: core of PID (signal N)";
  - a minidump (*.dmp, ours or Breakpad's/Crashpad's, x86-64 or aarch64):
    the panic message, locks, nested panics, the earlier fault and the
    stop's note from its annotations, each thread with its
    name and registers and a stack walked by frame pointers through the
    dump's memory (code without frame pointers ends a walk), named from the
    module files its module list names.
The kind of file is told from its first bytes, not its name. Modules and
debug info are looked up at the paths the dump names (for cores: the
NT_FILE table and the loader's link_map, like eu-stack). Only regular
files are read: FILE being a FIFO, socket or device is an error, and a
module path naming one is skipped with a warning (never waited on).

Options:
  --json   print one JSON object instead of text (schema below)
  --help   this text

Text output: "panic: MESSAGE", then one block per thread
  thread TID (name) [state]
    #N 0xADDR function+0xOFF (module) at FILE:LINE
threads with identical stacks share one stack ("(N threads with this stack)"),
then "locks:" and, for text reports, the report's other sections and "modules:".
An abort that a runtime raised after its handler resumed a fault elsewhere
(Mono's crash reporter, Go's sigpanic) has that fault in the panicking
thread's block, "N ms before: signal SIGSEGV (...), at 0xPC; ...", from the
text report, the core and the minidump alike; the frame at 0xPC is looked
up as the faulting instruction, not as a return address.
A live dump (panicstop dump PID, live_dump(), kdb: the process was frozen,
dumped and went on) is said as such on the second line, "live dump: the
process kept running; thread TID (NAME) took the dump", and that thread is
[dumping], never [panicking]; no signal is given as its cause (a live core
gives that thread SIGSTOP only so that debuggers see a stopped process).
Problems that only limit the output (a module not found, a
thread libdw could not unwind) are printed on stderr as
"panicstop: FILE: warning: ..." and do not change the exit status.

JSON output, schema version 1 (null where unknown):
  {"format":"panicstop-show", "version":1, "kind":"text-report"|"core"|"minidump",
   "file":S, "message":S, "pid":N, "signal":N, "panicking_tid":N,
   "live_dump":B, "dumping_tid":N (a live dump: true and the thread that
   took it; "signal" and "panicking_tid" are then null), "executable":S,
   "threads":[{"tid":N, "name":S, "state":S, "kernel_state":S, "signal":N,
               "notes":[S] (the block's other lines: fault, waiting for ...),
               "registers":{"pc":"0x..","sp":"0x.."} (cores only),
               and for a thread that did not stop only: "stopped":false,
               "register_source":"kernel" (pc and sp from /proc) | "none",
               "syscall":N, "syscall_name":S, "wchan":S (what /proc showed),
               "no_registers":S (why it has no stack),
               "frames":[{"index":N, "pc":"0x..", "function":S, "offset":N,
                          "module":S, "module_offset":N, "file":S, "line":N}]}],
   "locks":[{"address":S, "kind":S, "name":S, "owner":N, "readers":N,
             "text":S (the report's line, text reports only)}],
   "waits":[{"tid":N, "lock":S, "mode":"exclusive"|"shared"|"condvar"}],
   "nested":[{"tid":N, "signal":N, "step":N, "message":S}],
   "not_stopped":[N],
   "modules":[{"start":"0x..", "end":"0x..", "path":S, "build_id":S,
               "executable":true|false}] (text reports),
   "header_lines":[S], "other_lines":[S] (text-report lines kept as written),
   "truncated":null, or for a core cut short {"file_bytes":N,
               "expected_bytes":N, "segments":N, "segments_cut":N,
               "segments_missing":N, "notes_cut":B, "notes_read":N,
               "unreadable_stacks":[N] (tids whose stack memory is lost)},
   "warnings":[S]}
The panicking thread (a live dump's dumping thread) comes first; frames
innermost first. Fields are only
ever added within a version.

Examples:
  panicstop show panicstop-app-4242-1764000000.txt
  panicstop show --json panicstop-app-4242-1764000000.core |
      jq '.threads[] | {tid, name, top: .frames[0].function}'
  gcore -o core 4242 && panicstop show core.4242

A core cut short (a full disk, a writer killed mid-way, a partial copy) is
shown as far as it goes: every thread whose registers lie before the cut,
with the stack that the remaining memory allows. A line after "core:" and a
warning on stderr say what is missing: "core truncated at N of M bytes: K of
L memory segments cut (J wholly missing); notes cut after note P (later
threads and notes lost); stacks of threads X, Y unreadable".

Exit status: 0 printed; 3 printed, but the core is truncated (above);
1 the file cannot be read or is not a valid dump, or a core is cut before
any thread's registers (one line on stderr: "panicstop: FILE: what is
wrong"); 2 usage error.
)help";

}  // namespace

const Command kShowCommand = {
    "show",
    "print a text report, core dump or minidump with file:line, or as JSON",
    "panicstop show [--json] FILE",
    kShowHelp,
    run_show,
};

}  // namespace panicstop::tool
