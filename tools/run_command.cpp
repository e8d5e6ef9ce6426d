#include "run_command.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <gelf.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <string>
#include <vector>

namespace panicstop::tool {

namespace {

constexpr std::string_view kRunHelp = R"(Runs PROG with panicstop loaded through LD_PRELOAD, so a program that was
never built with panicstop gets the same crash handling as one that calls
panicstop::install(): on a crash in any thread (stack overflow in a thread
the program made included) every thread is stopped and the text report and
ELF core are written. The shim interposes pthread_create, to give each new
thread an alternate signal stack, and the C library's signal functions
(sigaction, signal, the mask functions, ...), so that PROG's own handlers
and masks live beside panicstop's; see preload/preload.cpp.

A server that starts as root and runs its workers as another user (nginx's
`user www-data`, apache2's, sshd's) writes a worker's crash dumps as that
user: give them a DIR they may write (chmod 1777 DIR, as /tmp is, or make
it theirs). Otherwise a worker's dumps fall back to /tmp, and the line on
its stderr says so. `panicstop kdb` and `panicstop dump` run as root reach
such workers anyway.

Options (each sets the tunable of the same meaning for PROG):
  --dump-dir DIR     where dumps go (PANICSTOP_DUMP_DIR; default: PROG's
                     current directory, then /tmp)
  --dump FORMATS     none, or a comma list of text, core, minidump (default
                     text,core; PANICSTOP_DUMP)
  --core KIND        mini (default) or full (PANICSTOP_CORE)
  --no-stop          do not stop the other threads (PANICSTOP_STOP_ON_PANIC=0),
                     the world before FreeBSD's 2011 change, for comparison
  --preload PATH     the shim to load (default: found beside this program or
                     in the library directory; also $PANICSTOP_PRELOAD)
  --upload-url URL   send each crash's dumps to this collector before PROG
                     dies (PANICSTOP_UPLOAD_URL; see `panicstop help upload`)
Other PANICSTOP_* variables in the environment pass through unchanged. With
an upload URL and no PANICSTOP_UPLOADER, this program is PROG's uploader.

Exit status: PROG's own; 128+N if PROG was killed by signal N (as a shell
reports it); 1 if PROG could not be started; 2 for a usage error.
When a crash signal or SIGKILL ends PROG itself and no finished dump of it
is in the dump directory or /tmp, run says so on stderr, and names the
unfinished one if the writing was cut short: a missing dump is never silent.
The loader cannot bring the shim into a statically linked program, and
ignores LD_PRELOAD for one that runs set-user-ID, set-group-ID or with file
capabilities (and for a script whose interpreter is such a program): run
says so on stderr and runs PROG anyway, unprotected. Link such a program
with the library instead.
A program built with Go (with cgo, so dynamically linked) ends a fatal
error with exit status 2 and no signal, which leaves nothing to catch: run
it with GOTRACEBACK=crash, and it ends with SIGABRT and gets the dump.

Examples:
  panicstop run -- ./server --port 8080
  panicstop run --dump-dir /var/crash --core full -- redis-server
)";

bool is_file(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// The shim: --preload, $PANICSTOP_PRELOAD, the build tree beside this binary,
// then the installed library directories.
std::string find_preload(const std::string& option) {
  if (!option.empty()) return option;
  if (const char* env = getenv("PANICSTOP_PRELOAD"); env != nullptr && *env != '\0') return env;
  std::vector<std::string> candidates;
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
    std::string dir(self);
    dir.erase(dir.rfind('/'));
    candidates.push_back(dir + "/../preload/libpanicstop_preload.so");  // build tree
    candidates.push_back(dir + "/../lib/libpanicstop_preload.so");
  }
#ifdef PANICSTOP_INSTALL_LIBDIR
  candidates.push_back(std::string(PANICSTOP_INSTALL_LIBDIR) + "/libpanicstop_preload.so");
#endif
  for (const auto& c : candidates)
    if (is_file(c)) {
      char resolved[4096];
      return realpath(c.c_str(), resolved) != nullptr ? std::string(resolved) : c;
    }
  return "";
}

// PROG as execvp would find it, or "" if it would not.
std::string find_program(const std::string& prog) {
  if (prog.find('/') != std::string::npos) return access(prog.c_str(), X_OK) == 0 ? prog : "";
  const char* path = getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + prog;
    if (is_file(candidate) && access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

// Why the loader will not bring the shim into the program at `path`, or ""
// when nothing says it will not. `depth`: how many "#!" lines led here.
std::string preload_refusal(const std::string& path, int depth = 0) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  char head[256] = {};
  ssize_t n = pread(fd, head, sizeof head - 1, 0);
  if (n > 2 && head[0] == '#' && head[1] == '!') {
    close(fd);
    if (depth > 0) return "";  // the kernel does not follow a second "#!"
    std::string line(head + 2, size_t(n - 2));
    line = line.substr(0, line.find('\n'));
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos) return "";
    std::string interpreter = line.substr(start, line.find_first_of(" \t", start) - start);
    std::string why = preload_refusal(interpreter, depth + 1);
    return why.empty() ? "" : "runs under " + interpreter + ", which " + why;
  }
  struct stat st {};
  std::string why;
  if (fstat(fd, &st) == 0 && (((st.st_mode & S_ISUID) != 0 && st.st_uid != getuid()) ||
                              ((st.st_mode & S_ISGID) != 0 && st.st_gid != getgid())))
    why = "runs set-user-ID or set-group-ID: the loader ignores LD_PRELOAD for it";
  else if (getuid() != 0 && fgetxattr(fd, "security.capability", nullptr, 0) > 0)
    why = "has file capabilities: the loader ignores LD_PRELOAD for it";
  if (why.empty() && elf_version(EV_CURRENT) != EV_NONE) {
    if (Elf* elf = elf_begin(fd, ELF_C_READ, nullptr)) {
      size_t count = 0;
      bool interpreter = false;
      if (elf_kind(elf) == ELF_K_ELF && elf_getphdrnum(elf, &count) == 0) {
        for (size_t i = 0; i < count; ++i) {
          GElf_Phdr ph;
          if (gelf_getphdr(elf, int(i), &ph) != nullptr && ph.p_type == PT_INTERP) interpreter = true;
        }
        if (!interpreter) why = "is statically linked: LD_PRELOAD cannot bring panicstop into it";
      }
      elf_end(elf);
    }
  }
  close(fd);
  return why;
}

// What the dump directories hold of process `pid`, crashed at or after
// `since`: a finished dump, only a temporary file (the writing was cut
// short), or nothing. Names are dump_files.hpp's:
// [.]panicstop-COMM-PID-SECONDS[-N].SUFFIX[.tmp].
struct DumpsFound {
  bool finished = false;
  std::string unfinished;  // the first temporary file's path
};

DumpsFound dumps_of(pid_t pid, time_t since, const std::vector<std::string>& dirs) {
  DumpsFound found;
  const std::string mark = "-" + std::to_string(pid) + "-";
  for (const std::string& dir : dirs) {
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) continue;
    while (dirent* e = readdir(d)) {
      std::string_view name = e->d_name;
      bool temporary = name.starts_with(".panicstop-");
      if (!temporary && !name.starts_with("panicstop-")) continue;
      size_t at = name.rfind(mark);
      if (at == std::string_view::npos) continue;
      // A dump of an earlier process that had the same pid is older.
      if (strtoll(std::string(name.substr(at + mark.size())).c_str(), nullptr, 10) < since - 1) continue;
      if (!temporary) {
        found.finished = true;
      } else if (found.unfinished.empty()) {
        found.unfinished = dir + "/" + std::string(name);
      }
    }
    closedir(d);
  }
  return found;
}

// A crash signal or SIGKILL ended PROG and no finished dump of it is where
// panicstop writes them: say so, so that a missing dump is never silent. The
// usual causes: SIGKILL (an OOM kill, a supervisor), or a signal the kernel
// forces where no handler can run (a thread whose stack or rseq area it
// cannot use).
void say_when_no_dump(const std::string& program, pid_t pid, int sig, time_t since) {
  static constexpr int kCrashSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS, SIGKILL};
  if (std::find(std::begin(kCrashSignals), std::end(kCrashSignals), sig) == std::end(kCrashSignals)) return;
  const char* formats = getenv("PANICSTOP_DUMP");
  if (formats != nullptr && strcmp(formats, "none") == 0) return;
  const char* dir_env = getenv("PANICSTOP_DUMP_DIR");
  const bool chosen = dir_env != nullptr && *dir_env != '\0';
  // A relative directory is taken from the directory current at install:
  // PROG's first one, which is this program's.
  char cwd[4096];
  std::string dir = chosen ? std::string(dir_env) : getcwd(cwd, sizeof cwd) != nullptr ? std::string(cwd) : ".";
  std::vector<std::string> dirs{dir};
  if (dir != "/tmp") dirs.push_back("/tmp");
  DumpsFound found = dumps_of(pid, since, dirs);
  if (found.finished) return;
  std::string who = "panicstop: run: " + program + " (pid " + std::to_string(pid) + ") was killed by SIG" +
                    (sigabbrev_np(sig) != nullptr ? sigabbrev_np(sig) : std::to_string(sig));
  if (!found.unfinished.empty()) {
    std::cerr << who << " while panicstop wrote its dump; what was written is in " << found.unfinished << "\n";
    return;
  }
  std::cerr << who << (sig == SIGKILL ? ", which no handler can catch" : "")
            << "; panicstop found no dump of it in " << dir << (dirs.size() > 1 ? " or /tmp" : "");
  if (sig != SIGKILL) {
    std::cerr << ": the kernel ended it where no handler could run (a signal it forces on a thread whose stack "
                 "or rseq area it cannot use, a handler taken back past the shim)";
    if (!chosen) std::cerr << ", or the dump is in a directory it changed to";
  }
  std::cerr << "\n";
}

// PROG's crash path runs `panicstop upload` and finds it through PATH unless
// PANICSTOP_UPLOADER names it; this very program is the surest choice.
void offer_self_as_uploader() {
  const char* url = getenv("PANICSTOP_UPLOAD_URL");
  const char* uploader = getenv("PANICSTOP_UPLOADER");
  if (url == nullptr || *url == '\0' || (uploader != nullptr && *uploader != '\0')) return;
  char self[4096];
  if (realpath("/proc/self/exe", self) != nullptr) setenv("PANICSTOP_UPLOADER", self, 1);
}

int run_run(const std::vector<std::string>& args) {
  std::string dump_dir, dump, core, preload_option, upload_url;
  bool no_stop = false;
  size_t i = 0;
  auto value = [&](const std::string& opt, std::string* out) {
    if (i + 1 >= args.size()) return false;
    *out = args[++i];
    (void)opt;
    return true;
  };
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a == "-h" || a == "--help") {
      std::cout << "Usage: " << kRunCommand.usage << "\n\n" << kRunCommand.help;
      return kExitOk;
    }
    if (a == "--no-stop") {
      no_stop = true;
    } else if (a == "--dump-dir" || a == "--dump" || a == "--core" || a == "--preload" || a == "--upload-url") {
      std::string* out = a == "--dump-dir" ? &dump_dir
                         : a == "--dump"   ? &dump
                         : a == "--core"   ? &core
                         : a == "--preload" ? &preload_option
                                           : &upload_url;
      if (!value(a, out)) return usage_error("run", "run: " + a + " needs a value");
    } else if (a.size() > 1 && a[0] == '-') {
      return usage_error("run", "run: unknown option '" + a + "'");
    } else {
      break;  // PROG without "--"
    }
  }
  if (i >= args.size()) return usage_error("run", "run: missing PROG");
  if (!core.empty() && core != "mini" && core != "full")
    return usage_error("run", "run: --core takes mini or full, not '" + core + "'");

  std::vector<std::string> argv(args.begin() + long(i), args.end());
  const std::string program = find_program(argv[0]);
  if (program.empty()) {
    std::cerr << "panicstop: run: " << argv[0] << ": no such program (or not executable)\n";
    return kExitFailure;
  }
  const std::string refused = preload_refusal(program);
  if (!refused.empty())
    std::cerr << "panicstop: run: warning: " << program << " " << refused
              << "; it runs without panicstop, and its crashes get no dump (link it with the library)\n";
  std::string preload = find_preload(preload_option);
  if (preload.empty() || !is_file(preload)) {
    std::cerr << "panicstop: run: cannot find libpanicstop_preload.so"
              << (preload.empty() ? "" : " at " + preload) << " (use --preload PATH)\n";
    return kExitFailure;
  }

  std::string ld_preload = preload;
  if (const char* old = getenv("LD_PRELOAD"); old != nullptr && *old != '\0') ld_preload += std::string(":") + old;
  setenv("LD_PRELOAD", ld_preload.c_str(), 1);
  if (!dump_dir.empty()) setenv("PANICSTOP_DUMP_DIR", dump_dir.c_str(), 1);
  if (!dump.empty()) setenv("PANICSTOP_DUMP", dump.c_str(), 1);
  if (!core.empty()) setenv("PANICSTOP_CORE", core.c_str(), 1);
  if (no_stop) setenv("PANICSTOP_STOP_ON_PANIC", "0", 1);
  if (!upload_url.empty()) setenv("PANICSTOP_UPLOAD_URL", upload_url.c_str(), 1);
  offer_self_as_uploader();

  // Like system(): the terminal's interrupt and quit go to PROG, and this
  // process waits for it to decide.
  struct sigaction ignore {}, old_int {}, old_quit {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGINT, &ignore, &old_int);
  sigaction(SIGQUIT, &ignore, &old_quit);
  const time_t started = time(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    std::cerr << "panicstop: run: fork: " << strerror(errno) << "\n";
    return kExitFailure;
  }
  if (pid == 0) {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGQUIT, &old_quit, nullptr);
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    execvp(cargv[0], cargv.data());
    std::cerr << "panicstop: run: " << argv[0] << ": " << strerror(errno) << "\n";
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      std::cerr << "panicstop: run: waitpid: " << strerror(errno) << "\n";
      return kExitFailure;
    }
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) {
    if (refused.empty()) say_when_no_dump(argv[0], pid, WTERMSIG(status), started);
    return 128 + WTERMSIG(status);
  }
  return kExitFailure;
}

}  // namespace

const Command kRunCommand = {
    "run",
    "run an unmodified program with panicstop preloaded",
    "panicstop run [--dump-dir DIR] [--dump FORMATS] [--core mini|full] [--no-stop] [--preload PATH]\n"
    "              [--upload-url URL] -- PROG [ARGS...]",
    kRunHelp,
    run_run,
};

}  // namespace panicstop::tool
