// Storage shared by emulator.cpp (crash path) and emulator_setup.cpp.
#pragma once

#include <atomic>

namespace panicstop::detail {

struct EmulatorTasks {
  static constexpr int kMax = 8;  // qemu-user starts one; room for a few more
  int tids[kMax] = {};
  std::atomic<int> count{0};
  std::atomic<bool> noted{false};  // set once the emulator's tasks are recorded
};
extern EmulatorTasks g_emulator_tasks;

}  // namespace panicstop::detail
