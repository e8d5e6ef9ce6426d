// The writer table (writer.hpp). Adding a dump format means adding a line.
#include "dump/core_limit.hpp"
#include "dump/elf_core.hpp"
#include "dump/minidump.hpp"
#include "dump/text_report.hpp"
#include "dump/writer.hpp"

namespace panicstop::detail {

namespace {

// Text first: it is the smallest and the one a person reads first.
constexpr DumpWriter kWriters[] = {
    {"text", ".txt", true, write_text_report, nullptr, true},
    {"core", ".core", true, write_elf_core, core_refusal, false},
    {"minidump", ".dmp", false, write_minidump, nullptr, false},
};
static_assert(sizeof kWriters / sizeof kWriters[0] <= kMaxDumpWriters);

}  // namespace

const DumpWriter* dump_writers(size_t* count) noexcept {
  *count = sizeof kWriters / sizeof kWriters[0];
  return kWriters;
}

}  // namespace panicstop::detail
