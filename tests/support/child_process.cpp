#include "support/child_process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace panicstop::testing {

namespace {

using Clock = std::chrono::steady_clock;

void apply_options_in_child(const ChildOptions& options) {
  // Tests run where `ulimit -c` is often 0, and most expect a core: a test
  // of the limit itself sets or unsets this.
  setenv("PANICSTOP_CORE_LIMIT", "ignore", 1);
  for (const auto& name : options.unset_env) unsetenv(name.c_str());
  for (const auto& [name, value] : options.set_env) setenv(name.c_str(), value.c_str(), 1);
  if (!options.cwd.empty() && chdir(options.cwd.c_str()) != 0) _exit(127);
}

ChildResult run(const std::function<void()>& child_main, const ChildOptions& options) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return ChildResult{};
  auto start = Clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    // Own process group, so a deadline kill also takes any grandchildren.
    setpgid(0, 0);
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    apply_options_in_child(options);
    child_main();
    _exit(0);
  }
  close(fds[1]);
  ChildResult result;
  if (pid < 0) {
    close(fds[0]);
    result.output = "fork failed";
    return result;
  }
  setpgid(pid, pid);
  auto deadline = start + options.deadline;
  bool eof = false;
  int status = 0;
  bool reaped = false;
  char buf[4096];
  while (!reaped) {
    auto now = Clock::now();
    if (now >= deadline) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      result.hung = true;
      reaped = true;
      break;
    }
    if (!eof) {
      int wait_ms = int(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count()) + 1;
      pollfd p{fds[0], POLLIN, 0};
      int r = poll(&p, 1, std::min(wait_ms, 50));
      if (r > 0) {
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n > 0) result.output.append(buf, size_t(n));
        else if (n == 0 || errno != EINTR) eof = true;
      }
    } else {
      // Output closed (grandchildren may still hold it open otherwise); poll
      // the exit without blocking past the deadline.
      struct timespec ts{0, 2 * 1000 * 1000};
      nanosleep(&ts, nullptr);
    }
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) reaped = true;
  }
  // Drain what is left without blocking.
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  for (;;) {
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    result.output.append(buf, size_t(n));
  }
  close(fds[0]);
  if (!result.hung) {
    // Kill leftovers in the group (a test child's stray threads are gone with
    // it, but grandchildren are not).
    kill(-pid, SIGKILL);
  }
  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  if (!result.hung) {
    if (WIFEXITED(status)) {
      result.exited = true;
      result.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
      result.signaled = true;
      result.term_signal = WTERMSIG(status);
    }
  }
  return result;
}

}  // namespace

int run_in_fork_child(void (*body)()) {
  pid_t pid = fork();
  if (pid == 0) {
    body();
    _exit(0);
  }
  if (pid < 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string ChildResult::describe() const {
  std::ostringstream out;
  if (hung) out << "hung (killed at the deadline after " << elapsed.count() << " ms)";
  else if (exited) out << "exited " << exit_code;
  else if (signaled) out << "killed by " << (sigabbrev_np(term_signal) ? sigabbrev_np(term_signal) : "?") << " (" << term_signal << ")";
  else out << "did not run";
  out << "; output:\n" << output;
  return out.str();
}

ChildResult run_in_child(const std::function<void()>& body, const ChildOptions& options) {
  return run(body, options);
}

ChildResult run_command(const std::vector<std::string>& argv, const ChildOptions& options) {
  return run(
      [&argv] {
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execvp(args[0], args.data());
        _exit(127);
      },
      options);
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/panicstop-test-XXXXXX";
  const char* p = mkdtemp(tmpl);
  path_ = p ? p : "/tmp";
}

TempDir::~TempDir() {
  if (path_ == "/tmp") return;
  std::string cmd = "rm -rf '" + path_ + "'";
  if (system(cmd.c_str()) != 0) {
  }
}

std::vector<std::string> TempDir::list() const {
  std::vector<std::string> names;
  if (DIR* d = opendir(path_.c_str())) {
    while (dirent* e = readdir(d))
      if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string TempDir::file_ending(const std::string& suffix) const {
  for (const std::string& name : list())
    if (name[0] != '.' && name.size() > suffix.size() && name.ends_with(suffix)) return path_ + "/" + name;
  return "";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool have_program(const std::string& program) {
  std::string cmd = "command -v '" + program + "' >/dev/null 2>&1";
  return system(cmd.c_str()) == 0;
}

void raw_sigmask(int how, const sigset_t* set, sigset_t* old) {
  syscall(SYS_rt_sigprocmask, how, set, old, 8);  // the kernel's sigset is 8 bytes
}

void* kernel_handler(int sig) {
  struct {
    void* handler;
    unsigned long flags;
    void* restorer;
    uint64_t mask;
  } kernel{};
  syscall(SYS_rt_sigaction, sig, nullptr, &kernel, 8);
  return kernel.handler;
}

void say(const std::string& line) {
  std::string l = line + "\n";
  if (write(2, l.data(), l.size()) < 0) {
  }
}

long long value_of(const std::string& output, const std::string& key) {
  size_t at = output.find(key + "=");
  if (at == std::string::npos) return -1;
  return std::stoll(output.substr(at + key.size() + 1));
}

}  // namespace panicstop::testing
