// The minidump's small streams: system and process information, the
// requested-dump marker, the panic as an assertion and as Crashpad
// annotations, and the raw Linux files readers parse (dump/minidump.hpp).
#include <elf.h>
#include <sys/utsname.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "dump/minidump_streams.hpp"
#include "dump/text_sections.hpp"
#include "snapshot/proc_file.hpp"
#include "sys/format.hpp"
#include "sys/signal_names.hpp"
#include "sys/syscall.hpp"

namespace panicstop::detail::md {

namespace {

constexpr size_t kMaxStringUnits = 1024;  // Breakpad rejects longer MDStrings
uint16_t g_units[kMaxStringUnits];

}  // namespace

size_t utf16_from_utf8(const char* s, size_t n, uint16_t* out, size_t cap) noexcept {
  size_t used = 0, i = 0;
  auto emit = [&](uint32_t cp) {
    if (cp >= 0x10000) {
      if (used + 2 > cap) return false;
      cp -= 0x10000;
      out[used++] = uint16_t(0xD800 + (cp >> 10));
      out[used++] = uint16_t(0xDC00 + (cp & 0x3ff));
      return true;
    }
    if (used + 1 > cap) return false;
    out[used++] = uint16_t(cp);
    return true;
  };
  while (i < n && s[i] != '\0') {
    unsigned char c = static_cast<unsigned char>(s[i]);
    uint32_t cp = 0xFFFD;
    size_t len = 1;
    size_t want = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 4;
    if (want == 0) {
      cp = c;
    } else if (want < 4 && i + want < n) {
      uint32_t v = c & (0x3f >> want);
      bool ok = true;
      for (size_t k = 1; k <= want; ++k) {
        unsigned char d = static_cast<unsigned char>(s[i + k]);
        if ((d & 0xC0) != 0x80) {
          ok = false;
          break;
        }
        v = (v << 6) | (d & 0x3f);
      }
      static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
      if (ok && v >= kMin[want] && v <= 0x10FFFF && (v < 0xD800 || v > 0xDFFF)) {
        cp = v;
        len = want + 1;
      }
    }
    if (!emit(cp)) break;
    i += len;
  }
  return used;
}

uint32_t Out::string16(const char* s, size_t max_bytes) noexcept {
  align8();
  uint32_t at = rva();
  size_t n = utf16_from_utf8(s != nullptr ? s : "", max_bytes, g_units, kMaxStringUnits);
  uint32_t bytes = uint32_t(2 * n);
  put(&bytes, 4);
  put(g_units, bytes);
  zeros(2);
  return at;
}

uint32_t Out::string8(const char* s, size_t n) noexcept {
  align8();
  uint32_t at = rva();
  uint32_t len = uint32_t(n);
  put(&len, 4);
  put(s, n);
  zeros(1);
  return at;
}

void Out::add_stream(uint32_t type, uint32_t at, uint32_t size) noexcept {
  if (count_ >= kMaxStreams) return;
  dir_[count_++] = {type, {size, at}};
}

void Out::end_stream(uint32_t type, uint32_t begin) noexcept { add_stream(type, begin, rva() - begin); }

namespace {

// The value after "key" up to the end of its line in a /proc text, e.g.
// "cpu family\t: 6" gives 6. Returns false if the key is absent.
bool find_number(const char* text, size_t len, const char* key, uint64_t* out) noexcept {
  size_t klen = sys::bounded_strlen(key, 64);
  for (size_t i = 0; i + klen < len; ++i) {
    if ((i != 0 && text[i - 1] != '\n') || __builtin_memcmp(text + i, key, klen) != 0) continue;
    size_t j = i + klen;
    while (j < len && (text[j] == ' ' || text[j] == '\t' || text[j] == ':')) ++j;
    size_t k = j;
    while (k < len && text[k] >= '0' && text[k] <= '9') ++k;
    if (k > j && sys::parse_u64(text + j, k - j, out)) return true;
  }
  return false;
}

uint32_t count_processors(const char* text, size_t len) noexcept {
  uint32_t n = 0;
  for (size_t i = 0; i + 9 < len; ++i)
    if ((i == 0 || text[i - 1] == '\n') && __builtin_memcmp(text + i, "processor", 9) == 0) ++n;
  return n;
}

}  // namespace

void write_system_info(Out& out, char* buf, size_t cap) noexcept {
  SystemInfo si{};
  si.platform_id = kPlatformLinux;
  long len = read_proc_file(ProcScope::kSystem, "cpuinfo", buf, cap);
  uint32_t cpus = len > 0 ? count_processors(buf, size_t(len)) : 0;
  si.number_of_processors = uint8_t(cpus > 255 ? 255 : cpus);
#if defined(__x86_64__)
  si.processor_architecture = kArchAmd64;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0, &eax, &ebx, &ecx, &edx)) {
    si.cpu[0] = ebx;  // "Genu" "ineI" "ntel", as CPUID returns them
    si.cpu[1] = edx;
    si.cpu[2] = ecx;
  }
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx)) {
    uint32_t family = (eax >> 8) & 0xf, model = (eax >> 4) & 0xf;
    if (family == 0xf) family += (eax >> 20) & 0xff;
    if (family == 6 || family >= 0xf) model += ((eax >> 16) & 0xf) << 4;
    si.processor_level = uint16_t(family);
    si.processor_revision = uint16_t((model << 8) | (eax & 0xf));
    si.cpu[3] = eax;
    si.cpu[4] = edx;
  }
  if (__get_cpuid(0x80000001, &eax, &ebx, &ecx, &edx)) si.cpu[5] = edx;
#elif defined(__aarch64__)
  si.processor_architecture = kArchArm64Old;
#endif
  // "Linux RELEASE VERSION MACHINE", as `uname -srvm` prints it: readers
  // take the OS version from this string.
  struct utsname u;
  char csd[4 * 65 + 4] = "Linux";
  if (sys::raw_syscall(SYS_uname, &u) == 0)
    sys::format(csd, sizeof csd, "%s %s %s %s", u.sysname, u.release, u.version, u.machine);
  si.csd_version_rva = out.string16(csd, sizeof csd);
  uint32_t begin = out.begin_stream();
  out.put(&si, sizeof si);
  out.end_stream(kSystemInfo, begin);
}

void write_misc_info(Out& out, const ProcessSnapshot& snap, char* buf, size_t cap) noexcept {
  MiscInfo mi{};
  mi.size_of_info = sizeof mi;
  mi.flags1 = kMiscProcessId;
  mi.process_id = uint32_t(snap.pid);
  uint64_t ticks = 0;
  for (uint32_t i = 0; i + 1 < snap.auxv_words && snap.auxv[i] != AT_NULL; i += 2)
    if (snap.auxv[i] == AT_CLKTCK) ticks = snap.auxv[i + 1];
  // /proc/self/stat after the ")" that ends comm: field 3 is the state, 14
  // and 15 user and system time, 22 the start time, all in clock ticks.
  long len = ticks != 0 ? read_proc_file(ProcScope::kProcess, "stat", buf, cap) : -1;
  const char* p = nullptr;
  for (long i = len - 1; i >= 0 && p == nullptr; --i)
    if (buf[i] == ')') p = buf + i + 1;
  uint64_t fields[23] = {};
  for (int field = 3; p != nullptr && field <= 22; ++field) {
    while (*p == ' ') ++p;
    const char* end = p;
    while (*end != ' ' && *end != '\0') ++end;
    if (end == p) break;
    // Only the times are parsed: other fields may be negative (tpgid -1).
    bool wanted = field == 14 || field == 15 || field == 22;
    if (wanted && !sys::parse_u64(p, size_t(end - p), &fields[field])) break;
    p = end;
    if (field == 22) {
      uint64_t btime = 0;
      long slen = read_proc_file(ProcScope::kSystem, "stat", buf, cap);
      if (slen > 0 && find_number(buf, size_t(slen), "btime", &btime)) {
        mi.flags1 |= kMiscProcessTimes;
        mi.process_create_time = uint32_t(btime + fields[22] / ticks);
        mi.process_user_time = uint32_t(fields[14] / ticks);
        mi.process_kernel_time = uint32_t(fields[15] / ticks);
      }
    }
  }
  uint32_t begin = out.begin_stream();
  out.put(&mi, sizeof mi);
  out.end_stream(kMiscInfo, begin);
}

// A live dump: no Exception stream, and the thread that asked for it. The
// "dump thread" bit stays off: readers would leave that thread out.
void write_breakpad_info(Out& out, const DumpFacts& facts) noexcept {
  if (facts.crashed) return;
  BreakpadInfo bi{kBreakpadRequestingThreadValid, 0, uint32_t(facts.lead_tid)};
  uint32_t begin = out.begin_stream();
  out.put(&bi, sizeof bi);
  out.end_stream(kBreakpadInfo, begin);
}

namespace {

void field16(uint16_t* out, const char* s) noexcept {
  size_t n = utf16_from_utf8(s, kCrashMessageMax, out, 127);
  out[n] = 0;
}

}  // namespace

void write_assertion(Out& out, const DumpFacts& facts) noexcept {
  if (!facts.crashed || facts.message == nullptr) return;
  static AssertionInfo ai;
  __builtin_memset(&ai, 0, sizeof ai);
  field16(ai.expression, facts.message);
  field16(ai.function, "panic");
  field16(ai.file, "");
  uint32_t begin = out.begin_stream();
  out.put(&ai, sizeof ai);
  out.end_stream(kAssertionInfo, begin);
}

namespace {

constexpr uint32_t kMaxAnnotations = 256;
uint32_t g_annotations[kMaxAnnotations][2];  // key and value RVAs

struct Annotations {
  Out& out;
  uint32_t count = 0;
  void add(const char* key, const char* value, size_t max) noexcept {
    if (count >= kMaxAnnotations || value == nullptr) return;
    g_annotations[count][0] = out.string8(key, sys::bounded_strlen(key, 64));
    g_annotations[count][1] = out.string8(value, sys::bounded_strlen(value, max));
    ++count;
  }
};

void describe_signal(sys::FixedWriter& w, int sig, int code, uintptr_t address, bool with_code) noexcept {
  const char* name = sys::signal_name(sig);
  if (name != nullptr)
    w.str(name);
  else
    w.format("signal %d", sig);
  if (!with_code) return;
  if (const char* cname = sys::si_code_name(sig, code))
    w.format(" (%s)", cname);
  else
    w.format(" (code %d)", code);
  if (code > 0) w.format(", fault address 0x%lx", static_cast<unsigned long>(address));
}

void add_locks(Annotations& a, const ProcessSnapshot& snap) noexcept {
  char key[32], line[1024];
  for (uint32_t i = 0; i < snap.lock_count; ++i) {
    const SnapshotLock& l = snap.locks[i];
    sys::FixedWriter w(line, sizeof line);
    w.format("%p kind=%s name=", static_cast<const void*>(l.lock), report_kind_name(l.kind));
    w.escaped(l.name != nullptr ? l.name : "?", 200);
    w.format(" owner=%d readers=%u waiters=", l.owner_tid, l.readers);
    bool first = true;
    for (uint32_t t = 0; t < snap.thread_count; ++t) {
      if (snap.threads[t].waiting_on != l.lock) continue;
      w.format(first ? "%d" : ",%d", snap.threads[t].tid);
      first = false;
    }
    sys::format(key, sizeof key, "lock_%u", i);
    a.add(key, line, sizeof line);
  }
}

}  // namespace

// Global simple annotations: Sentry shows them as the "crashpad" context and
// Breakpad's minidump_dump prints them.
void write_crashpad_info(Out& out, const ProcessSnapshot& snap, const DumpFacts& f) noexcept {
  Annotations a{out};
  char line[1024];
  if (f.crashed) {
    a.add("panic_message", f.message, kCrashMessageMax);
    sys::FixedWriter w(line, sizeof line);
    describe_signal(w, f.signo, f.si_code, f.fault_address, true);
    a.add("signal", line, sizeof line);
  } else {
    a.add("dump_requested", f.live_reason != nullptr ? f.live_reason : "live dump", 1024);
  }
  sys::format(line, sizeof line, "%d", f.lead_tid);
  a.add(f.crashed ? "panicking_thread" : "dumping_thread", line, sizeof line);
  for (uint32_t i = 0; i < f.nested_count; ++i) {
    const CrashNested& n = f.nested[i];
    sys::FixedWriter w(line, sizeof line);
    w.format("thread %d%s: ", n.tid, n.same_thread ? " (the panicking thread)" : "");
    if (n.signo != 0) describe_signal(w, n.signo, 0, 0, false);
    else w.str("panic");
    w.format(" during %s", n.step_name);
    if (n.message[0] != '\0') w.str(": ").str(n.message, sys::bounded_strlen(n.message, sizeof n.message));
    char key[32];
    sys::format(key, sizeof key, "nested_panic_%u", i);
    a.add(key, line, sizeof line);
  }
  if (f.note != nullptr && f.note[0] != '\0') a.add("note", f.note, 256);
  if (const ResumedFault* e = f.earlier_fault) {
    sys::FixedWriter w(line, sizeof line);
    // Worded as the core's note reads back (`panicstop show`), with "the
    // panic" where a thread's block would give the context.
    w.format("%lld ms before the panic: %s", static_cast<long long>((f.start_ns - e->at_ns) / 1000000),
             sys::signal_name(e->sig) != nullptr ? "signal " : "");
    describe_signal(w, e->sig, e->code, e->address, true);
    w.format(", at 0x%lx; the program's handler resumed the thread at 0x%lx instead of returning to it",
             static_cast<unsigned long>(e->pc), static_cast<unsigned long>(e->resumed_pc));
    a.add("earlier_fault", line, sizeof line);
  }
  sys::FixedWriter overflow(line, sizeof line);
  if (describe_stack_overflow(overflow, f.fault_address, f.overflowed_stack_lo, f.overflowed_stack_hi))
    a.add("stack_overflow", line, sizeof line);
  if (f.not_stopped_count > 0) {
    sys::format(line, sizeof line, "%u", f.not_stopped_count);
    a.add("threads_not_stopped", line, sizeof line);
  }
  add_locks(a, snap);

  uint32_t dict = out.begin_stream();
  out.put(&a.count, 4);
  out.put(g_annotations, sizeof g_annotations[0] * a.count);
  uint32_t dict_size = out.rva() - dict;
  out.align8();
  uint32_t modules = out.rva();
  uint32_t none = 0;
  out.put(&none, 4);  // an empty per-module list: some readers need its count

  CrashpadInfo ci{};
  ci.version = 1;
  ci.simple_annotations = {dict_size, dict};
  ci.module_list = {4, modules};
  uint32_t begin = out.begin_stream();
  out.put(&ci, sizeof ci);
  out.end_stream(kCrashpadInfo, begin);
}

namespace {

// Where a stream's file is read: /proc through the descriptor kept from
// install (stop/proc_dir.hpp), anything else by its path.
struct Source {
  const char* path;
  ProcScope scope;
  bool in_proc;
};
constexpr Source proc_source(ProcScope scope, const char* path) noexcept { return {path, scope, true}; }
constexpr Source file_source(const char* path) noexcept { return {path, ProcScope::kProcess, false}; }

// One raw file as a stream; nothing when it cannot be read. A file larger
// than the buffer is cut after its last complete line.
void file_stream(Out& out, uint32_t type, Source src, char* buf, size_t cap, bool text) noexcept {
  long len = src.in_proc ? read_proc_file(src.scope, src.path, buf, cap) : read_small_file(src.path, buf, cap);
  if (len < 0) return;
  if (text && size_t(len) + 1 >= cap) {
    while (len > 0 && buf[len - 1] != '\n') --len;
  }
  uint32_t begin = out.begin_stream();
  out.put(buf, size_t(len));
  out.end_stream(type, begin);
}

}  // namespace

void write_linux_streams(Out& out, bool with_environ, char* buf, size_t cap) noexcept {
  file_stream(out, kLinuxCpuInfo, proc_source(ProcScope::kSystem, "cpuinfo"), buf, cap, true);
  file_stream(out, kLinuxProcStatus, proc_source(ProcScope::kProcess, "status"), buf, cap, true);
  // Debian has no lsb-release; readers take os-release's keys from the same stream.
  if (read_small_file("/etc/lsb-release", buf, cap) >= 0)
    file_stream(out, kLinuxLsbRelease, file_source("/etc/lsb-release"), buf, cap, true);
  else
    file_stream(out, kLinuxLsbRelease, file_source("/etc/os-release"), buf, cap, true);
  // The memory views through thread-self: they still read after main() left
  // through pthread_exit(), when /proc/self's are empty.
  file_stream(out, kLinuxCmdLine, proc_source(ProcScope::kThread, "cmdline"), buf, cap, false);
  // The environment holds secrets (tokens, passwords): only when asked for.
  if (with_environ) file_stream(out, kLinuxEnviron, proc_source(ProcScope::kThread, "environ"), buf, cap, false);
  file_stream(out, kLinuxAuxv, proc_source(ProcScope::kThread, "auxv"), buf, cap, false);
  file_stream(out, kLinuxMaps, proc_source(ProcScope::kThread, "maps"), buf, cap, true);
}

}  // namespace panicstop::detail::md
