// Runs a piece of a test in a child process with a deadline.
//
// Every crash test goes through here: the crash happens in the child, the
// parent collects the exit status and everything the child wrote to stderr and
// stdout, and a child still running at the deadline is killed (with its whole
// process group) and reported as hung. A hang is a test failure, never a reason
// to raise the deadline.
#pragma once

#include <csignal>
#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace panicstop::testing {

struct ChildResult {
  bool hung = false;         // killed at the deadline
  bool exited = false;       // normal exit; exit_code valid
  int exit_code = -1;
  bool signaled = false;     // killed by a signal; term_signal valid
  int term_signal = 0;
  std::string output;        // stdout and stderr, interleaved as written
  std::chrono::milliseconds elapsed{0};

  // "exited 3", "killed by SIGSEGV", "hung (killed at the deadline)": for messages.
  std::string describe() const;
};

struct ChildOptions {
  std::chrono::milliseconds deadline{20000};
  // Environment changes applied in the child before the body runs.
  std::vector<std::pair<std::string, std::string>> set_env;
  std::vector<std::string> unset_env;
  // Working directory for the child ("" keeps the parent's).
  std::string cwd;
};

// Options that set these environment variables in the child, with a deadline.
inline ChildOptions with_env(std::vector<std::pair<std::string, std::string>> env, int deadline_ms = 20000) {
  ChildOptions o;
  o.set_env = std::move(env);
  o.deadline = std::chrono::milliseconds(deadline_ms);
  return o;
}

// Forks; the child runs body() and then _exit(0). The body may crash, panic or
// hang: that is what is being tested.
ChildResult run_in_child(const std::function<void()>& body, const ChildOptions& options = {});

// For tests of what the child of a fork() inherits (call it inside a
// run_in_child body): forks, runs body() in the new process, _exit(0)s there,
// and returns its exit status (128 + the signal if a signal ended it). A
// hang there hangs the caller too, which run_in_child's deadline reports.
int run_in_fork_child(void (*body)());

// Forks and execs argv[0] (searched in PATH) with the same rules.
ChildResult run_command(const std::vector<std::string>& argv, const ChildOptions& options = {});

// A fresh empty directory under /tmp, removed with its contents by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Names of the entries in the directory, sorted.
  std::vector<std::string> list() const;
  // The full path of the first entry (in list() order) whose name ends with
  // suffix and is longer than it, skipping hidden names (a writer's
  // ".tmp" files start with '.'); "" if there is none.
  std::string file_ending(const std::string& suffix) const;

 private:
  std::string path_;
};

std::string read_file(const std::string& path);

// Sets the calling thread's signal mask with the raw system call, as a program
// that bypasses the C library does. panicstop interposes pthread_sigmask and
// sigprocmask and never lets them block its reserved signals; a test that
// needs a thread which really blocks them (unstoppable, or deaf to the
// control socket) uses this.
void raw_sigmask(int how, const sigset_t* set, sigset_t* old = nullptr);
// The handler the kernel runs for sig (nullptr: SIG_DFL), read with the raw
// system call, past the interposed sigaction() that reports the program's.
void* kernel_handler(int sig);
// Is `program` on PATH?
bool have_program(const std::string& program);
// Writes `line` and a newline to stderr in one write(2), no stdio: safe in a
// child between fork and _exit, and lines from several threads do not mix.
void say(const std::string& line);
// The number after the first "key=" in a child's output (what it said), or
// -1 if the key is not there.
long long value_of(const std::string& output, const std::string& key);

}  // namespace panicstop::testing
