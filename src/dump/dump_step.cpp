#include "dump/dump_step.hpp"

#include "dump/dump_files.hpp"
#include "dump/elf_core.hpp"
#include "dump/text_report.hpp"
#include "panic/panic_state.hpp"
#include "snapshot/snapshot.hpp"
#include "sys/syscall.hpp"

namespace panicstop::detail {

namespace {

bool text_enabled(const Tunables& t) noexcept { return t.dump_text; }
bool core_enabled(const Tunables& t) noexcept { return t.dump_core; }

// Adding a dump format means adding a line here.
constexpr DumpWriter kWriters[] = {
    {".txt", text_enabled, write_text_report},
    {".core", core_enabled, write_elf_core},
};

}  // namespace

const DumpWriter* dump_writers(size_t* count) noexcept {
  *count = sizeof kWriters / sizeof kWriters[0];
  return kWriters;
}

void register_dump_step() noexcept {
  // Reserving now keeps mmap out of the crash path; if it fails here, the
  // capture tries again at the panic.
  reserve_snapshot();
  reserve_elf_core();
  set_dump_step(&run_dump_step);
}

void run_dump_step() noexcept {
  ProcessSnapshot* snap = capture_snapshot();
  if (snap == nullptr) {
    static const char msg[] = "panicstop: no dump: the snapshot memory could not be reserved\n";
    sys::write_stderr(msg, sizeof msg - 1);
    return;
  }
  write_dumps(*snap, nullptr);
}

}  // namespace panicstop::detail
