// Storage shared by emulator.cpp (crash path) and emulator_setup.cpp.
#pragma once

#include <atomic>

namespace panicstop::detail {

struct EmulatorTasks {
  static constexpr int kMax = 8;  // qemu-user starts one; room for a few more
  int tids[kMax] = {};
  std::atomic<int> count{0};
};
extern EmulatorTasks g_emulator_tasks;

}  // namespace panicstop::detail
