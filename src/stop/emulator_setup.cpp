// Finding an emulator's own tasks (emulator.hpp): setup only.
#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "stop/emulator.hpp"
#include "stop/emulator_tasks.hpp"
#include "stop/proc_dir.hpp"
#include "sys/syscall.hpp"
#include "thread/signal_sections.hpp"

namespace panicstop::detail {

namespace {

bool read_link(const char* path, char* out, size_t size) {
  ssize_t n = readlink(path, out, size - 1);
  if (n <= 0) return false;
  out[n] = '\0';
  return true;
}

// True if the task's kernel signal mask blocks signal sig.
bool task_blocks(int tid, int sig) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
  FILE* f = std::fopen(path, "re");
  if (f == nullptr) return false;
  char line[256];
  bool blocked = false;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, "SigBlk:", 7) != 0) continue;
    unsigned long long mask = std::strtoull(line + 7, nullptr, 16);
    blocked = sig >= 1 && sig <= 64 && (mask >> (sig - 1) & 1) != 0;
    break;
  }
  std::fclose(f);
  return blocked;
}

// The kernel's comm for a binary: its base name, cut to 15 bytes.
void comm_of(const char* binary, char* out, size_t size) {
  const char* base = std::strrchr(binary, '/');
  size_t n = size < 16 ? size : 16;
  std::snprintf(out, n, "%.15s", base != nullptr ? base + 1 : binary);
}

// Renames task tid to `name` if its comm is still the emulator's `host_name`.
void rename_from_emulator(int tid, const char* host_name, const char* name) {
  char path[64], comm[32] = {};
  std::snprintf(path, sizeof path, "/proc/self/task/%d/comm", tid);
  FILE* f = std::fopen(path, "r+e");
  if (f == nullptr) return;
  if (std::fgets(comm, sizeof comm, f) != nullptr) {
    comm[std::strcspn(comm, "\n")] = '\0';
    if (std::strcmp(comm, host_name) == 0) {
      std::rewind(f);
      std::fputs(name, f);
    }
  }
  std::fclose(f);
}

}  // namespace

void note_emulator_tasks() noexcept {
  if (g_emulator_tasks.noted.load(std::memory_order_acquire)) return;
  if (!open_proc_dir() || !proc_emulated()) return;
  char program[4096], host[4096], path[64];
  int self = sys::gettid();
  std::snprintf(path, sizeof path, "/proc/self/task/%d/exe", self);  // not rewritten: the emulator
  if (!read_link("/proc/self/exe", program, sizeof program) || !read_link(path, host, sizeof host)) return;
  char host_name[16], program_name[16];
  comm_of(host, host_name, sizeof host_name);
  comm_of(program, program_name, sizeof program_name);
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return;
  int n = 0;
  while (dirent* e = readdir(dir)) {
    int tid = std::atoi(e->d_name);
    if (tid <= 0) continue;
    if (tid != self && n < EmulatorTasks::kMax && task_blocks(tid, hard_stop_signal()) &&
        task_blocks(tid, soft_stop_signal()))
      g_emulator_tasks.tids[n++] = tid;
    else
      rename_from_emulator(tid, host_name, program_name);
  }
  closedir(dir);
  g_emulator_tasks.count.store(n, std::memory_order_release);
  g_emulator_tasks.noted.store(true, std::memory_order_release);
}

}  // namespace panicstop::detail
