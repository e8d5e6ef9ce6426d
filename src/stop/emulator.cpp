// The crash-path half of emulator.hpp: a fixed array filled at install.
#include "stop/emulator.hpp"

#include <atomic>

#include "stop/emulator_tasks.hpp"

namespace panicstop::detail {

EmulatorTasks g_emulator_tasks;

bool is_emulator_task(int tid) noexcept {
  int n = g_emulator_tasks.count.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i)
    if (g_emulator_tasks.tids[i] == tid) return true;
  return false;
}

int emulator_task_count() noexcept { return g_emulator_tasks.count.load(std::memory_order_acquire); }

}  // namespace panicstop::detail
