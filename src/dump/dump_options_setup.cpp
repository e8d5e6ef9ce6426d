// Parsing the dump layer's options at install (dump_options.hpp): getenv.
#include <unistd.h>

#include <cstring>

#include "dump/dump_options.hpp"
#include "dump/writer.hpp"
#include "sys/env_options.hpp"
#include "sys/format.hpp"
#include "sys/syscall.hpp"

namespace panicstop::detail {

DumpOptions& dump_options_storage() noexcept;

namespace {

// "none, or a comma-separated list of text, core, minidump (...; default
// text,core)", from the table.
void accepted_dump_values(char* out, size_t cap) noexcept {
  size_t count = 0;
  const DumpWriter* writers = dump_writers(&count);
  sys::FixedWriter w(out, cap);
  w.str("none, or a comma-separated list of ");
  for (size_t i = 0; i < count; ++i) w.format(i == 0 ? "%s" : ", %s", writers[i].name);
  w.str(" (each at most once, written in that order; default ");
  bool first = true;
  for (size_t i = 0; i < count; ++i)
    if (writers[i].on_by_default) {
      w.format(first ? "%s" : ",%s", writers[i].name);
      first = false;
    }
  w.str(")");
}

bool parse_dump_list(DumpOptions* o, char* err, size_t err_size) noexcept {
  const char* v = sys::env_value("PANICSTOP_DUMP");
  if (v == nullptr) return true;
  char accepted[256];
  accepted_dump_values(accepted, sizeof accepted);
  o->order_count = 0;
  if (sys::equals(v, "none")) return true;
  size_t count = 0;
  const DumpWriter* writers = dump_writers(&count);
  const char* p = v;
  for (;;) {
    const char* end = strchr(p, ',');
    size_t len = end != nullptr ? size_t(end - p) : strlen(p);
    size_t found = count;
    for (size_t i = 0; i < count; ++i)
      if (strlen(writers[i].name) == len && memcmp(writers[i].name, p, len) == 0) found = i;
    if (found == count) return sys::env_reject("PANICSTOP_DUMP", v, accepted, err, err_size);
    for (uint32_t k = 0; k < o->order_count; ++k)
      if (o->order[k] == found) return sys::env_reject("PANICSTOP_DUMP", v, accepted, err, err_size);
    o->order[o->order_count++] = uint8_t(found);
    if (end == nullptr) return true;
    p = end + 1;
  }
}

// Setting PANICSTOP_UPLOAD_URL is enough on its own: collectors take
// minidumps, so one is written unless the list says "none".
void add_minidump_for_upload(DumpOptions* o) noexcept {
  const char* url = sys::env_value("PANICSTOP_UPLOAD_URL");
  if (url == nullptr || o->order_count == 0 || o->order_count >= kMaxDumpWriters) return;
  size_t count = 0;
  const DumpWriter* writers = dump_writers(&count);
  for (size_t i = 0; i < count; ++i) {
    if (!sys::equals(writers[i].name, "minidump")) continue;
    for (uint32_t k = 0; k < o->order_count; ++k)
      if (o->order[k] == i) return;
    o->order[o->order_count++] = uint8_t(i);
  }
}

}  // namespace

bool parse_dump_options(DumpOptions* out, char* err, size_t err_size) noexcept {
  DumpOptions o = default_dump_options();
  if (const char* dir = sys::env_value("PANICSTOP_DUMP_DIR")) {
    // A relative path is taken from the current directory now, at install:
    // a daemon's chdir("/") afterwards must not move where its dumps go.
    char cwd[sizeof o.dir];
    const bool relative = dir[0] != '\0' && dir[0] != '/';
    if (relative && getcwd(cwd, sizeof cwd) == nullptr)
      return sys::env_reject("PANICSTOP_DUMP_DIR", dir, "an absolute path (the current directory is unknown)", err,
                             err_size);
    const size_t n = (relative ? strlen(cwd) + 1 : 0) + sys::bounded_strlen(dir, sizeof o.dir);
    if (n >= sizeof o.dir)
      return sys::env_reject("PANICSTOP_DUMP_DIR", dir, "a directory path shorter than 512 bytes", err, err_size);
    if (relative) sys::format(o.dir, sizeof o.dir, "%s/%s", cwd, dir);
    else sys::copy_string(o.dir, sizeof o.dir, dir);
  }
  if (!parse_dump_list(&o, err, err_size)) return false;
  static constexpr sys::EnvChoice kCore[] = {{"mini", int(CoreKind::kMini)}, {"full", int(CoreKind::kFull)}};
  int core = int(o.core);
  if (!sys::env_choice("PANICSTOP_CORE", kCore, "mini, full", &core, err, err_size)) return false;
  o.core = CoreKind(core);
  static constexpr sys::EnvChoice kLimit[] = {{"respect", 0}, {"ignore", 1}};
  int ignore = 0;
  if (!sys::env_choice("PANICSTOP_CORE_LIMIT", kLimit, "respect, ignore", &ignore, err, err_size)) return false;
  o.core_limit_ignored = ignore != 0;
  if (!sys::env_bool("PANICSTOP_MINIDUMP_ENVIRON", &o.minidump_environ, err, err_size)) return false;
  add_minidump_for_upload(&o);
  o.installed_euid = int64_t(geteuid());
  *out = o;
  return true;
}

void install_dump_options() noexcept { sys::env_install(parse_dump_options, &dump_options_storage()); }

}  // namespace panicstop::detail
