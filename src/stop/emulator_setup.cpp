// Finding an emulator's own tasks (emulator.hpp): setup only.
#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "stop/emulator.hpp"
#include "stop/emulator_tasks.hpp"
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

}  // namespace

void note_emulator_tasks() noexcept {
  if (g_emulator_tasks.count.load(std::memory_order_acquire) != 0) return;
  char program[4096], host[4096], path[64];
  int self = sys::gettid();
  std::snprintf(path, sizeof path, "/proc/self/task/%d/exe", self);
  if (!read_link("/proc/self/exe", program, sizeof program) || !read_link(path, host, sizeof host)) return;
  if (std::strcmp(program, host) == 0) return;  // not emulated
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return;
  int n = 0;
  while (dirent* e = readdir(dir)) {
    int tid = std::atoi(e->d_name);
    if (tid <= 0 || tid == self || n == EmulatorTasks::kMax) continue;
    if (task_blocks(tid, hard_stop_signal()) && task_blocks(tid, soft_stop_signal())) g_emulator_tasks.tids[n++] = tid;
  }
  closedir(dir);
  g_emulator_tasks.count.store(n, std::memory_order_release);
}

}  // namespace panicstop::detail
