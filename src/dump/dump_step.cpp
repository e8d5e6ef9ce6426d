#include "dump/dump_step.hpp"

#include <sys/prctl.h>
#include <sys/resource.h>

#include <cstdint>

#include "dump/core_limit.hpp"
#include "dump/dump_files.hpp"
#include "dump/elf_core.hpp"
#include "dump/minidump.hpp"
#include "dump/text_report.hpp"
#include "dump/upload_step.hpp"
#include "panic/panic_state.hpp"
#include "snapshot/snapshot.hpp"
#include "sys/format.hpp"
#include "sys/syscall.hpp"

namespace panicstop::detail {

namespace {

bool text_enabled(const Tunables& t) noexcept { return t.dump_text; }
bool core_enabled(const Tunables& t) noexcept {
  if (!t.dump_core) return false;
  const char* why = core_refused_by_process();
  if (why == nullptr) return true;
  sys::write_line(2, "panicstop: no core: %s (PANICSTOP_CORE_LIMIT=ignore writes one)", why);
  return false;
}

bool minidump_enabled(const Tunables& t) noexcept { return t.dump_minidump; }

// Adding a dump format means adding a line here.
constexpr DumpWriter kWriters[] = {
    {".txt", text_enabled, write_text_report},
    {".core", core_enabled, write_elf_core},
    {".dmp", minidump_enabled, write_minidump},
};

}  // namespace

bool g_core_limit_ignored = false;

const char* core_refused_by_process() noexcept {
  if (g_core_limit_ignored) return nullptr;
  if (sys::raw_syscall(SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0) != 1)
    return "the process is not dumpable (prctl PR_SET_DUMPABLE 0)";
  struct rlimit64_raw {
    uint64_t cur, max;
  } limit{~uint64_t(0), ~uint64_t(0)};
  if (sys::raw_syscall(SYS_prlimit64, 0, RLIMIT_CORE, nullptr, &limit) == 0 && limit.cur == 0)
    return "RLIMIT_CORE is 0 (ulimit -c 0)";
  return nullptr;
}

const DumpWriter* dump_writers(size_t* count) noexcept {
  *count = sizeof kWriters / sizeof kWriters[0];
  return kWriters;
}

void register_dump_step() noexcept {
  read_core_limit_tunable();
  // Reserving now keeps mmap out of the crash path; if it fails here, the
  // capture tries again at the panic.
  reserve_snapshot();
  reserve_elf_core();
  reserve_minidump();
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
  // With PANICSTOP_UPLOAD_URL set, the files just written leave the machine
  // before the process dies (upload_step.hpp); bounded by its own timeout.
  run_upload_step();
}

}  // namespace panicstop::detail
