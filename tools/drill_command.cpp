#include "drill_command.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "read/dump_file.hpp"

namespace panicstop::tool {
namespace {

constexpr std::string_view kDrillHelp = R"(Crashes a built-in multithreaded workload and checks the dump it leaves.

The workload (panicstop-drill-workload, found beside this program or at
$PANICSTOP_DRILL_WORKLOAD) runs worker threads contending on Mutexes, an
RwLock and a CondVar queue, a consumer thread, and a logger thread that holds
the "log" Mutex most of the time while it "flushes". Its PreDump hook takes
"log" and writes a final line. After a random delay (from the seed) a random
worker crashes. Each trial runs in a child process with its own dump
directory and a deadline; a child still running at the deadline is killed
and counted as a hang. The dumps are then read back with the same reader as
`panicstop show`.

Options:
  --threads N        worker threads (default 8; the process has N+3 threads)
  --crash KIND       segv (default): write through a null pointer
                     panic: panicstop::panic() with a message
                     abort: abort()
                     overflow: unbounded recursion in a worker thread
                     double: two workers fault at the same moment
                     hook: segv, and a fault inside a PreDump hook as well
  --trials N         run N trials (default 1)
  --seed S           seed of the first trial (default 1; trial i uses S+i)
  --no-stop          do not stop the other threads (PANICSTOP_STOP_ON_PANIC=0),
                     the world before FreeBSD's 2011 change
  --compare N        N trials stopping and N with --no-stop, then a table:
                     complete dumps, hangs, median time from crash to exit,
                     threads captured
  --dump-dir DIR     keep each trial's files in DIR/trial-K (default: a new
                     directory under /tmp, printed at the end)
  --deadline-ms MS   kill a trial still running after MS (default 10000)

Per trial it prints: the crash and the panicking thread; threads captured
(in the text report: stopped, or the panicking thread; a
"running" thread's stack was read while it ran) out of threads alive (counted by
the workload in /proc/self/task before the crash); whether the hook finished
and who held "log" then; the dump files and sizes; the time from the crash
to the process's exit; and, when gdb is installed, how many threads
`gdb -batch -ex 'info threads' WORKLOAD CORE` lists.

A trial is complete when the process ended before the deadline, wrote a text
report and a core, the report reads back, and every live thread is captured.

Exit status: 0 every trial was complete (with --compare: every trial that
stopped); 1 otherwise, or the workload could not be run; 2 usage error.

Examples:
  panicstop drill
  panicstop drill --crash overflow --threads 32 --trials 20
  panicstop drill --compare 10 --deadline-ms 3000
)";

const std::vector<std::string> kCrashKinds = {"segv", "panic", "abort", "overflow", "double", "hook"};

struct Options {
  int threads = 8;
  std::string crash = "segv";
  int trials = 1;
  unsigned long seed = 1;
  bool no_stop = false;
  int compare = 0;
  std::string dump_dir;
  long deadline_ms = 10000;
};

struct DumpFile {
  std::string path;
  long long size = 0;
};

struct Trial {
  bool no_stop = false;
  bool started = false;
  bool hung = false;
  int exit_status = 0;     // raw waitpid status
  int threads_alive = 0;   // 0: the workload never said
  long crash_ns = 0;       // CLOCK_MONOTONIC, 0: not reached
  long exit_ns = 0;
  std::string hook_line;   // what the hook said, "" if it never finished
  std::vector<DumpFile> files;
  bool report_read = false;
  std::string read_error;
  std::string message, panicking_name, header;
  int panicking_tid = 0;
  int threads_captured = 0, threads_in_report = 0;
  int nested = 0;          // faults after the first, as the report lists them
  int gdb_threads = -1;    // -1: gdb not run
  bool complete = false;
};

long monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return long(ts.tv_sec) * 1000000000L + ts.tv_nsec;
}

bool is_executable(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

std::string self_dir() {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return "";
  self[n] = '\0';
  std::string dir(self);
  return dir.substr(0, dir.rfind('/'));
}

std::string find_workload() {
  if (const char* env = getenv("PANICSTOP_DRILL_WORKLOAD"); env != nullptr && *env != '\0') return env;
  std::string path = self_dir() + "/panicstop-drill-workload";
  return is_executable(path) ? path : "";
}

std::string find_gdb() {
  const char* path = getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');)
    if (!dir.empty() && is_executable(dir + "/gdb")) return dir + "/gdb";
  return "";
}

struct ChildResult {
  bool started = false, hung = false;
  int status = 0;
  long end_ns = 0;
};

// Runs argv with stdout and stderr to `output`, extra environment `env`
// (NAME=VALUE), killed with SIGKILL at the deadline.
ChildResult run_with_deadline(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                              const std::string& output, long deadline_ms) {
  ChildResult r;
  pid_t pid = fork();
  if (pid < 0) return r;
  if (pid == 0) {
    int fd = open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int null = open("/dev/null", O_RDONLY);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    if (null >= 0) dup2(null, 0);
    for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> cargv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  r.started = true;
  long deadline = monotonic_ns() + deadline_ms * 1000000L;
  for (;;) {
    pid_t w = waitpid(pid, &r.status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) break;
    if (monotonic_ns() >= deadline) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &r.status, 0) < 0 && errno == EINTR) {
      }
      r.hung = true;
      break;
    }
    usleep(1000);  // polling keeps the end time within a millisecond
  }
  r.end_ns = monotonic_ns();
  return r;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<DumpFile> list_dumps(const std::string& dir) {
  std::vector<DumpFile> files;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      auto ends = [&](const char* suffix) {
        size_t n = strlen(suffix);
        return name.size() > n && name.compare(name.size() - n, n, suffix) == 0;
      };
      if (!ends(".txt") && !ends(".core")) continue;
      struct stat st;
      std::string path = dir + "/" + name;
      if (stat(path.c_str(), &st) == 0) files.push_back({path, (long long)st.st_size});
    }
    closedir(d);
  }
  std::sort(files.begin(), files.end(), [](const DumpFile& a, const DumpFile& b) { return a.path < b.path; });
  return files;
}

void read_workload_log(const std::string& log, Trial* t) {
  std::smatch m;
  static const std::regex alive(R"(drill-workload: threads alive: (\d+))");
  static const std::regex crash(R"(drill-workload: crash at (\d+))");
  static const std::regex hook(R"(drill-workload: (hook finished[^\n]*))");
  if (std::regex_search(log, m, alive)) t->threads_alive = std::stoi(m[1]);
  if (std::regex_search(log, m, crash)) t->crash_ns = std::stol(m[1]);
  if (std::regex_search(log, m, hook)) t->hook_line = m[1];
  // The panic path says so on stderr; text reports list them too, but the
  // reader keeps that section as plain lines.
  for (size_t at = log.find("panicstop: nested panic"); at != std::string::npos;
       at = log.find("panicstop: nested panic", at + 1))
    ++t->nested;
}

void read_report(const std::string& path, Trial* t) {
  try {
    read::Report report = read::read_dump_file(path);
    t->report_read = true;
    t->message = report.message;
    t->panicking_tid = report.panicking_tid;
    t->threads_in_report = int(report.threads.size());
    t->nested = std::max(t->nested, int(report.nested.size()));
    for (const read::Thread& th : report.threads) {
      if (th.state == "stopped" || th.state == "panicking") ++t->threads_captured;
      if (th.tid == report.panicking_tid) t->panicking_name = th.name;
    }
    for (const std::string& line : report.header_lines)
      if (line.find(" threads: ") != std::string::npos) t->header = line;
  } catch (const std::exception& e) {
    t->read_error = e.what();
  }
}

int count_gdb_threads(const std::string& gdb_output) {
  static const std::regex thread_line(R"(^\*?\s+\d+\s+(Thread|LWP|process)\b)");
  std::stringstream in(gdb_output);
  int n = 0;
  for (std::string line; std::getline(in, line);)
    if (std::regex_search(line, thread_line)) ++n;
  return n;
}

Trial run_trial(const Options& o, const std::string& workload, const std::string& gdb, const std::string& dir,
                unsigned long seed, bool no_stop) {
  Trial t;
  t.no_stop = no_stop;
  mkdir(dir.c_str(), 0755);
  std::vector<std::string> argv = {workload, "--threads", std::to_string(o.threads), "--crash", o.crash,
                                   "--seed", std::to_string(seed)};
  if (no_stop) argv.push_back("--no-stop");
  // The drill reads the core back: a shell's `ulimit -c 0` (the usual
  // default) would rightly keep panicstop from writing one.
  ChildResult r = run_with_deadline(argv, {"PANICSTOP_DUMP_DIR=" + dir, "PANICSTOP_CORE_LIMIT=ignore"},
                                    dir + "/workload.log", o.deadline_ms);
  t.started = r.started;
  t.hung = r.hung;
  t.exit_status = r.status;
  t.exit_ns = r.end_ns;
  read_workload_log(read_text(dir + "/workload.log"), &t);
  t.files = list_dumps(dir);
  std::string text, core;
  for (const DumpFile& f : t.files) (f.path.size() > 4 && f.path.ends_with(".txt") ? text : core) = f.path;
  if (!text.empty()) read_report(text, &t);
  if (!gdb.empty() && !core.empty()) {
    ChildResult g = run_with_deadline({gdb, "-nx", "-batch", "-ex", "info threads", workload, core}, {},
                                      dir + "/gdb.txt", 30000);
    if (g.started && !g.hung) t.gdb_threads = count_gdb_threads(read_text(dir + "/gdb.txt"));
  }
  t.complete = !t.hung && !text.empty() && !core.empty() && t.report_read && t.threads_alive > 0 &&
               t.threads_captured >= t.threads_alive;
  return t;
}

std::string human_size(long long bytes) {
  std::ostringstream s;
  if (bytes < 1024) s << bytes << " B";
  else if (bytes < 1024 * 1024) s << std::fixed << std::setprecision(1) << double(bytes) / 1024 << " KiB";
  else s << std::fixed << std::setprecision(1) << double(bytes) / (1024 * 1024) << " MiB";
  return s.str();
}

std::string base_name(const std::string& path) { return path.substr(path.rfind('/') + 1); }

std::optional<long> crash_to_exit_ms(const Trial& t) {
  if (t.hung || t.crash_ns == 0 || t.exit_ns < t.crash_ns) return std::nullopt;
  return (t.exit_ns - t.crash_ns) / 1000000L;
}

std::string describe_end(const Trial& t) {
  if (!t.started) return "could not start the workload";
  if (t.hung) return "HUNG: killed at the deadline";
  if (WIFSIGNALED(t.exit_status)) return std::string("killed by ") + sigabbrev_np(WTERMSIG(t.exit_status));
  if (WIFEXITED(t.exit_status)) return "exited with status " + std::to_string(WEXITSTATUS(t.exit_status));
  return "ended";
}

void print_trial(const Options& o, const Trial& t, int index, int count, const std::string& dir) {
  std::cout << "trial " << index << "/" << count << (t.no_stop ? " (--no-stop)" : "") << ": " << o.crash
            << " with " << o.threads << " workers: " << (t.complete ? "COMPLETE dump" : "INCOMPLETE") << "\n";
  std::cout << "  crash:    ";
  if (t.report_read)
    std::cout << t.message << (t.message.find(" in thread ") != std::string::npos ? ""
                               : " in thread " + std::to_string(t.panicking_tid) + " (" + t.panicking_name + ")")
              << "\n";
  else if (t.crash_ns == 0)
    std::cout << "the workload never reached its crash\n";
  else
    std::cout << "no text report" << (t.read_error.empty() ? "" : " (" + t.read_error + ")") << "\n";
  std::cout << "  threads:  " << t.threads_captured << " of " << t.threads_alive << " alive captured";
  if (!t.header.empty()) std::cout << " (report: " << t.header << ")";
  if (t.nested > 0) std::cout << "\n  nested:   " << t.nested << " more fault(s) during the panic, in the report";
  std::cout << "\n  hook:     "
            << (t.hook_line.empty() ? "did NOT finish (\"log\" never came free)" : t.hook_line) << "\n";
  std::cout << "  dumps:    ";
  if (t.files.empty()) std::cout << "none";
  for (size_t i = 0; i < t.files.size(); ++i)
    std::cout << (i ? ", " : "") << base_name(t.files[i].path) << " (" << human_size(t.files[i].size) << ")";
  std::cout << "\n            in " << dir << "\n";
  auto ms = crash_to_exit_ms(t);
  std::cout << "  end:      " << describe_end(t);
  if (ms) std::cout << ", " << *ms << " ms after the crash";
  std::cout << "\n";
  if (t.gdb_threads >= 0) std::cout << "  gdb:      " << t.gdb_threads << " threads in the core\n";
}

struct Column {
  int trials = 0, complete = 0, hangs = 0, captured = 0, alive = 0;
  std::vector<long> ms;
};

Column summarize(const std::vector<Trial>& trials, bool no_stop) {
  Column c;
  for (const Trial& t : trials) {
    if (t.no_stop != no_stop) continue;
    ++c.trials;
    c.complete += t.complete;
    c.hangs += t.hung;
    c.captured += t.threads_captured;
    c.alive += t.threads_alive;
    if (auto ms = crash_to_exit_ms(t); ms && !t.files.empty()) c.ms.push_back(*ms);
  }
  std::sort(c.ms.begin(), c.ms.end());
  return c;
}

void print_table(const std::vector<Trial>& trials) {
  std::cout << "\n" << std::left << std::setw(16) << "" << std::setw(16) << "complete dumps" << std::setw(8)
            << "hangs" << std::setw(22) << "median crash->dump" << "threads captured\n";
  for (bool no_stop : {false, true}) {
    Column c = summarize(trials, no_stop);
    std::string median = c.ms.empty() ? "-" : std::to_string(c.ms[c.ms.size() / 2]) + " ms";
    std::cout << std::setw(16) << (no_stop ? "--no-stop" : "stop on panic") << std::setw(16)
              << (std::to_string(c.complete) + "/" + std::to_string(c.trials)) << std::setw(8) << c.hangs
              << std::setw(22) << median << c.captured << "/" << c.alive << "\n";
  }
}

bool parse_number(const std::string& text, long min, long max, long* out) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos || text.size() > 12) return false;
  long v = std::stol(text);
  if (v < min || v > max) return false;
  *out = v;
  return true;
}

int run_drill(const std::vector<std::string>& args) {
  Options o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      std::cout << "Usage: " << kDrillCommand.usage << "\n\n" << kDrillCommand.help;
      return kExitOk;
    }
    if (a == "--no-stop") {
      o.no_stop = true;
      continue;
    }
    if (a != "--threads" && a != "--crash" && a != "--trials" && a != "--seed" && a != "--compare" &&
        a != "--dump-dir" && a != "--deadline-ms")
      return usage_error("drill", "drill: unknown " + std::string(a.starts_with("-") ? "option" : "argument") +
                                      " '" + a + "'");
    if (i + 1 >= args.size()) return usage_error("drill", "drill: " + a + " needs a value");
    const std::string& v = args[++i];
    long n = 0;
    auto bad = [&](const std::string& what) { return usage_error("drill", "drill: " + a + " takes " + what + ", not '" + v + "'"); };
    if (a == "--crash") {
      if (std::find(kCrashKinds.begin(), kCrashKinds.end(), v) == kCrashKinds.end())
        return bad("segv, panic, abort, overflow, double or hook");
      o.crash = v;
    } else if (a == "--dump-dir") {
      o.dump_dir = v;
    } else if (a == "--threads") {
      if (!parse_number(v, 2, 256, &n)) return bad("a number from 2 to 256");
      o.threads = int(n);
    } else if (a == "--trials") {
      if (!parse_number(v, 1, 100000, &n)) return bad("a number from 1 to 100000");
      o.trials = int(n);
    } else if (a == "--compare") {
      if (!parse_number(v, 1, 100000, &n)) return bad("a number from 1 to 100000");
      o.compare = int(n);
    } else if (a == "--seed") {
      if (!parse_number(v, 0, 4294967295L, &n)) return bad("a number");
      o.seed = (unsigned long)n;
    } else {
      if (!parse_number(v, 100, 3600000, &n)) return bad("milliseconds from 100 to 3600000");
      o.deadline_ms = n;
    }
  }
  if (o.compare > 0 && o.no_stop) return usage_error("drill", "drill: --compare already runs the --no-stop half");

  std::string workload = find_workload();
  if (workload.empty()) {
    std::cerr << "panicstop: drill: cannot find panicstop-drill-workload beside " << self_dir()
              << "/panicstop (set PANICSTOP_DRILL_WORKLOAD)\n";
    return kExitFailure;
  }
  std::string base = o.dump_dir;
  if (base.empty()) {
    char tmpl[] = "/tmp/panicstop-drill.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      std::cerr << "panicstop: drill: mkdtemp: " << strerror(errno) << "\n";
      return kExitFailure;
    }
    base = tmpl;
  } else if (mkdir(base.c_str(), 0755) != 0 && errno != EEXIST) {
    std::cerr << "panicstop: drill: " << base << ": " << strerror(errno) << "\n";
    return kExitFailure;
  }
  std::string gdb = find_gdb();

  std::vector<bool> plan;  // no_stop per trial
  if (o.compare > 0) {
    plan.assign(size_t(o.compare), false);
    plan.insert(plan.end(), size_t(o.compare), true);
  } else {
    plan.assign(size_t(o.trials), o.no_stop);
  }
  bool verbose = plan.size() <= 4;
  std::vector<Trial> trials;
  for (size_t k = 0; k < plan.size(); ++k) {
    if (!verbose) std::cerr << "panicstop: drill: trial " << k + 1 << "/" << plan.size() << "\r" << std::flush;
    std::string dir = base + "/trial-" + std::to_string(k + 1);
    Trial t = run_trial(o, workload, gdb, dir, o.seed + (o.compare > 0 ? k % size_t(o.compare) : k), plan[k]);
    if (verbose || !t.complete) print_trial(o, t, int(k + 1), int(plan.size()), dir);
    trials.push_back(t);
  }
  if (!verbose) std::cerr << "\n";
  if (o.compare > 0) {
    print_table(trials);
  } else if (!verbose) {
    Column c = summarize(trials, o.no_stop);
    std::cout << o.crash << ": " << c.complete << "/" << c.trials << " complete dumps, " << c.hangs
              << " hangs, median crash->dump "
              << (c.ms.empty() ? std::string("-") : std::to_string(c.ms[c.ms.size() / 2]) + " ms")
              << ", threads captured " << c.captured << "/" << c.alive << "\n";
  }
  if (gdb.empty()) std::cout << "(gdb not installed: no gdb verdict)\n";
  std::cout << "files: " << base << "\n";
  for (const Trial& t : trials)
    if (!t.no_stop && !t.complete) return kExitFailure;
  if (o.compare == 0)
    for (const Trial& t : trials)
      if (!t.complete) return kExitFailure;
  return kExitOk;
}

}  // namespace

const Command kDrillCommand = {
    "drill",
    "crash a built-in multithreaded workload and check the dump it leaves",
    "panicstop drill [--threads N] [--crash segv|panic|abort|overflow|double|hook] [--trials N] [--seed S] "
    "[--no-stop] [--compare N] [--dump-dir DIR] [--deadline-ms MS]",
    kDrillHelp,
    run_drill,
};

}  // namespace panicstop::tool
