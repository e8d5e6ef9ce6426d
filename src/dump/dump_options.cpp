#include "dump/dump_options.hpp"

#include "dump/writer.hpp"

namespace panicstop::detail {

namespace {
DumpOptions g_options;
bool g_options_set = false;  // by install, or by the first read before it
}  // namespace

DumpOptions default_dump_options() noexcept {
  DumpOptions o;
  size_t count = 0;
  const DumpWriter* writers = dump_writers(&count);
  for (size_t i = 0; i < count && o.order_count < kMaxDumpWriters; ++i)
    if (writers[i].on_by_default) o.order[o.order_count++] = uint8_t(i);
  return o;
}

DumpOptions& dump_options_storage() noexcept {
  g_options_set = true;
  return g_options;
}

const DumpOptions& dump_options() noexcept {
  if (!g_options_set) {
    g_options = default_dump_options();
    g_options_set = true;
  }
  return g_options;
}

}  // namespace panicstop::detail
