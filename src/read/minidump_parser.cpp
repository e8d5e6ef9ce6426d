#include "read/minidump_parser.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "read/text_report_parser.hpp"

namespace panicstop::read {
namespace {

// Stream types and offsets of the minidump format (little-endian).
constexpr uint32_t kThreadList = 3, kModuleList = 4, kMemoryList = 5, kException = 6, kSystemInfo = 7,
                   kMiscInfo = 15, kThreadNameList = 24, kBreakpadInfo = 0x47670001, kProcStatus = 0x47670004,
                   kCrashpadInfo = 0x43500001;
constexpr uint16_t kArchAmd64 = 9, kArchArm64 = 12, kArchArm64Old = 0x8003;
constexpr size_t kMaxThreads = 1 << 20, kMaxWalk = 256;

std::string hex(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

class Image {
 public:
  explicit Image(std::span<const unsigned char> b) : b_(b) {}
  size_t size() const { return b_.size(); }
  bool fits(uint64_t off, uint64_t n) const { return off <= b_.size() && n <= b_.size() - off; }
  void need(uint64_t off, uint64_t n, const char* what) const {
    if (!fits(off, n))
      throw ReadError(std::string(what) + " at offset " + std::to_string(off) + " runs past the end of the file (" +
                      std::to_string(b_.size()) + " bytes)");
  }
  template <typename T>
  T get(uint64_t off, const char* what) const {
    need(off, sizeof(T), what);
    T v;
    memcpy(&v, b_.data() + off, sizeof v);
    return v;
  }
  uint32_t u32(uint64_t off, const char* what) const { return get<uint32_t>(off, what); }
  uint64_t u64(uint64_t off, const char* what) const { return get<uint64_t>(off, what); }
  const unsigned char* at(uint64_t off) const { return b_.data() + off; }

  // An MDString (UTF-16LE) as UTF-8; "" when the RVA is 0 or out of range.
  std::string string16(uint64_t rva) const {
    if (rva == 0 || !fits(rva, 4)) return "";
    uint32_t bytes = u32(rva, "string");
    if (!fits(rva + 4, bytes)) return "";
    std::string out;
    for (uint32_t i = 0; i + 1 < bytes; i += 2) {
      uint32_t cp = uint32_t(b_[rva + 4 + i]) | uint32_t(b_[rva + 5 + i]) << 8;
      if (cp >= 0xD800 && cp < 0xDC00 && i + 3 < bytes) {
        uint32_t lo = uint32_t(b_[rva + 6 + i]) | uint32_t(b_[rva + 7 + i]) << 8;
        if (lo >= 0xDC00 && lo < 0xE000) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          i += 2;
        }
      }
      if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD;
      if (cp < 0x80) {
        out += char(cp);
      } else if (cp < 0x800) {
        out += char(0xC0 | cp >> 6);
        out += char(0x80 | (cp & 0x3f));
      } else if (cp < 0x10000) {
        out += char(0xE0 | cp >> 12);
        out += char(0x80 | ((cp >> 6) & 0x3f));
        out += char(0x80 | (cp & 0x3f));
      } else {
        out += char(0xF0 | cp >> 18);
        out += char(0x80 | ((cp >> 12) & 0x3f));
        out += char(0x80 | ((cp >> 6) & 0x3f));
        out += char(0x80 | (cp & 0x3f));
      }
    }
    return out;
  }
  // A Crashpad UTF-8 string: length, bytes.
  std::string string8(uint64_t rva) const {
    if (rva == 0 || !fits(rva, 4)) return "";
    uint32_t n = u32(rva, "string");
    if (!fits(rva + 4, n)) return "";
    return std::string(reinterpret_cast<const char*>(b_.data() + rva + 4), n);
  }

 private:
  std::span<const unsigned char> b_;
};

struct Stream {
  uint32_t rva = 0, size = 0;
};

struct MemoryRange {
  uint64_t start, size, rva;
};

class Memory {
 public:
  void add(uint64_t start, uint64_t size, uint64_t rva) {
    if (size > 0) ranges_.push_back({start, size, rva});
  }
  std::optional<uint64_t> u64(const Image& img, uint64_t addr) const {
    for (const MemoryRange& r : ranges_)
      if (r.size >= 8 && addr >= r.start && addr - r.start <= r.size - 8)
        return img.u64(r.rva + (addr - r.start), "memory");
    return std::nullopt;
  }

 private:
  std::vector<MemoryRange> ranges_;
};

// A stream's list of `entry`-byte records after a u32 count (and the 4 pad
// bytes some writers put there).
uint64_t list_entries(const Image& img, const Stream& s, uint64_t entry, const char* what, uint32_t* count) {
  *count = img.u32(s.rva, what);
  uint64_t need = uint64_t(*count) * entry;
  if (s.size == 8 + need) return s.rva + 8;  // 4 pad bytes after the count
  if (s.size < 4 + need)
    throw ReadError(std::string(what) + ": " + std::to_string(*count) + " entries do not fit in " +
                    std::to_string(s.size) + " bytes");
  return s.rva + 4;
}

struct Regs {
  bool control = false, integer = false;
  uint64_t pc = 0, sp = 0, fp = 0;
};

Regs context_regs(const Image& img, uint16_t arch, uint32_t rva, uint32_t size) {
  Regs r;
  if (!img.fits(rva, size)) return r;
  if (arch == kArchAmd64 && size >= 1232) {
    uint32_t flags = img.u32(rva + 48, "context");
    r.control = (flags & 1) != 0;
    r.integer = (flags & 2) != 0;
    r.sp = img.u64(rva + 152, "context");
    r.fp = img.u64(rva + 160, "context");
    r.pc = img.u64(rva + 248, "context");
  } else if ((arch == kArchArm64 || arch == kArchArm64Old) && size >= 796) {
    // Both layouts keep x29, sp and pc at 240, 256, 264. The new layout has
    // 32-bit flags, the old 64-bit ones; in both INTEGER is bit 1.
    uint32_t flags = img.u32(rva, "context");
    r.integer = (flags & 2) != 0;
    r.control = r.integer || (arch == kArchArm64 && (flags & 1) != 0);
    r.fp = img.u64(rva + 240, "context");
    r.sp = img.u64(rva + 256, "context");
    r.pc = img.u64(rva + 264, "context");
  }
  return r;
}

Frame frame_at(uint64_t pc) {
  Frame f;
  f.pc = pc;
  return f;
}

std::vector<Frame> walk_frames(const Image& img, const Memory& mem, const Regs& r) {
  std::vector<Frame> frames;
  if (!r.control || r.pc == 0) return frames;
  frames.push_back(frame_at(r.pc));
  uint64_t fp = r.fp;
  while (r.integer && frames.size() < kMaxWalk && fp != 0 && fp % 8 == 0) {
    std::optional<uint64_t> next = mem.u64(img, fp), ret = mem.u64(img, fp + 8);
    if (!next || !ret || *ret == 0) break;
    frames.push_back(frame_at(*ret));
    if (*next <= fp) break;  // frames go up the stack, or the chain is broken
    fp = *next;
  }
  return frames;
}

// "key=value" fields of an annotation value ("0x... kind=mutex name=x owner=3").
std::string field(const std::string& text, const std::string& key) {
  size_t at = text.find(" " + key + "=");
  if (at == std::string::npos) return "";
  at += key.size() + 2;
  size_t end = text.find(' ', at);
  return text.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

// The earlier_fault annotation ("12 ms before the panic: signal SIGSEGV
// ..."): the panicking thread's line, worded as the core's note reads.
void add_earlier_fault(const std::string& annotation, Thread& t) {
  static constexpr std::string_view kBefore = " ms before the panic: ";
  size_t at = annotation.find(kBefore);
  std::string line = at == std::string::npos
                         ? "earlier fault: " + annotation
                         : annotation.substr(0, at) + " ms before: " + annotation.substr(at + kBefore.size());
  t.earlier_fault_pc = earlier_fault_pc_in(line);
  t.notes.push_back(std::move(line));
}

}  // namespace

bool looks_like_minidump(std::string_view data) noexcept { return data.size() >= 4 && data.substr(0, 4) == "MDMP"; }

Report parse_minidump(std::span<const unsigned char> bytes) {
  Image img(bytes);
  if (!looks_like_minidump({reinterpret_cast<const char*>(bytes.data()), bytes.size()}))
    throw ReadError("not a minidump (no MDMP signature)");
  if ((img.u32(4, "header") & 0xffff) != 0xA793) throw ReadError("minidump version is not 0xA793");
  uint32_t count = img.u32(8, "header"), dir = img.u32(12, "header");
  img.need(dir, uint64_t(count) * 12, "stream directory");
  std::map<uint32_t, Stream> streams;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t type = img.u32(dir + 12 * i, "directory"), size = img.u32(dir + 12 * i + 4, "directory"),
             rva = img.u32(dir + 12 * i + 8, "directory");
    if (type == 0 && size == 0) continue;
    img.need(rva, size, ("stream " + std::to_string(type)).c_str());
    streams.emplace(type, Stream{rva, size});
  }
  auto find = [&](uint32_t type) -> const Stream* {
    auto it = streams.find(type);
    return it == streams.end() ? nullptr : &it->second;
  };
  if (find(kThreadList) == nullptr) throw ReadError("minidump has no thread list");

  Report report;
  report.kind = Report::Kind::kMinidump;
  uint16_t arch = 0;
  if (const Stream* s = find(kSystemInfo); s != nullptr && s->size >= 56) arch = img.get<uint16_t>(s->rva, "system info");

  Memory mem;
  if (const Stream* s = find(kMemoryList)) {
    uint32_t n;
    uint64_t at = list_entries(img, *s, 16, "memory list", &n);
    for (uint32_t i = 0; i < n; ++i) {
      uint64_t start = img.u64(at + 16 * i, "memory list");
      uint32_t size = img.u32(at + 16 * i + 8, "memory list"), rva = img.u32(at + 16 * i + 12, "memory list");
      if (img.fits(rva, size)) mem.add(start, size, rva);
    }
  }

  std::map<uint32_t, std::string> names;
  if (const Stream* s = find(kThreadNameList)) {
    uint32_t n;
    uint64_t at = list_entries(img, *s, 12, "thread name list", &n);
    for (uint32_t i = 0; i < n; ++i)
      names[img.u32(at + 12 * i, "thread name list")] = img.string16(img.u64(at + 12 * i + 4, "thread name list"));
  }

  int exception_tid = 0, requesting_tid = 0;
  uint64_t fault_address = 0;
  uint32_t exception_context_rva = 0, exception_context_size = 0;
  if (const Stream* s = find(kException); s != nullptr && s->size >= 168) {
    exception_tid = int(img.u32(s->rva, "exception"));
    report.signal = int(img.u32(s->rva + 8, "exception"));
    fault_address = img.u64(s->rva + 24, "exception");
    exception_context_size = img.u32(s->rva + 160, "exception");
    exception_context_rva = img.u32(s->rva + 164, "exception");
    report.panicking_tid = exception_tid;
  }
  if (const Stream* s = find(kBreakpadInfo); s != nullptr && s->size >= 12) {
    if (img.u32(s->rva, "breakpad info") & 2) requesting_tid = int(img.u32(s->rva + 8, "breakpad info"));
  }
  if (const Stream* s = find(kMiscInfo); s != nullptr && s->size >= 24 && (img.u32(s->rva + 4, "misc info") & 1))
    report.pid = int(img.u32(s->rva + 8, "misc info"));
  if (const Stream* s = find(kProcStatus); s != nullptr && report.pid == 0) {
    std::string status(reinterpret_cast<const char*>(img.at(s->rva)), s->size);
    size_t at = status.find("\nPid:");
    if (at != std::string::npos) report.pid = std::atoi(status.c_str() + at + 5);
  }

  std::map<std::string, std::string> annotations;
  if (const Stream* s = find(kCrashpadInfo); s != nullptr && s->size >= 44) {
    uint32_t size = img.u32(s->rva + 36, "crashpad info"), rva = img.u32(s->rva + 40, "crashpad info");
    if (size >= 4 && img.fits(rva, size)) {
      uint32_t n = img.u32(rva, "annotations");
      for (uint32_t i = 0; i < n && 4 + 8 * uint64_t(i + 1) <= size; ++i)
        annotations[img.string8(img.u32(rva + 4 + 8 * i, "annotations"))] =
            img.string8(img.u32(rva + 8 + 8 * i, "annotations"));
    }
  }

  // Threads: the stack each one's descriptor names is memory too (lldb and
  // Breakpad differ on where they look; writers put it in both).
  const Stream& tl = *find(kThreadList);
  uint32_t nthreads;
  uint64_t at = list_entries(img, tl, 48, "thread list", &nthreads);
  if (nthreads > kMaxThreads) throw ReadError("thread list of " + std::to_string(nthreads) + " threads");
  for (uint32_t i = 0; i < nthreads; ++i) {
    uint64_t e = at + 48 * uint64_t(i);
    uint32_t size = img.u32(e + 32, "thread"), rva = img.u32(e + 36, "thread");
    if (img.fits(rva, size)) mem.add(img.u64(e + 24, "thread"), size, rva);
  }
  size_t short_walks = 0;
  for (uint32_t i = 0; i < nthreads; ++i) {
    uint64_t e = at + 48 * uint64_t(i);
    Thread t;
    t.tid = int(img.u32(e, "thread"));
    uint32_t csize = img.u32(e + 40, "thread"), crva = img.u32(e + 44, "thread");
    // The crashing thread's registers are the exception's context.
    if (t.tid == exception_tid && exception_context_rva != 0) csize = exception_context_size, crva = exception_context_rva;
    Regs r = context_regs(img, arch, crva, csize);
    t.name = names.count(uint32_t(t.tid)) ? names[uint32_t(t.tid)] : "";
    t.has_registers = r.control;
    t.pc = r.pc;
    t.sp = r.sp;
    t.frames = walk_frames(img, mem, r);
    if (t.tid == exception_tid) {
      t.state = "panicking";
      t.signal = report.signal;
      if (fault_address != 0) t.notes.push_back("fault address " + hex(fault_address));
      if (auto o = annotations.find("stack_overflow"); o != annotations.end())
        t.notes.push_back("stack overflow: " + o->second);
      if (auto e = annotations.find("earlier_fault"); e != annotations.end()) add_earlier_fault(e->second, t);
    } else if (t.tid == requesting_tid) {
      t.state = "dumping";
    } else if (!r.control) {
      t.state = "not_stopped";
      t.did_not_stop = true;
      t.register_source = "none";
      t.no_registers = "no registers in the minidump";
    } else if (!r.integer) {
      t.state = "not_stopped";
      t.did_not_stop = true;
      t.register_source = "kernel";
    } else {
      t.state = "stopped";
    }
    if (t.did_not_stop) report.not_stopped.push_back(t.tid);
    if (r.integer && t.frames.size() == 1) short_walks++;
    report.threads.push_back(std::move(t));
  }

  if (short_walks > 0)
    report.warnings.push_back(std::to_string(short_walks) +
                              " threads show only their pc: minidump stacks are walked by frame pointers, and "
                              "their innermost function keeps none");
  if (const Stream* s = find(kModuleList)) {
    uint32_t n;
    uint64_t mat = list_entries(img, *s, 108, "module list", &n);
    for (uint32_t i = 0; i < n; ++i) {
      uint64_t e = mat + 108 * uint64_t(i);
      Module m;
      m.start = img.u64(e, "module");
      m.end = m.start + img.u32(e + 8, "module");
      m.path = img.string16(img.u32(e + 20, "module"));
      m.is_executable = i == 0;
      uint32_t cv_size = img.u32(e + 76, "module"), cv = img.u32(e + 80, "module");
      if (cv_size > 4 && img.fits(cv, cv_size) && img.u32(cv, "codeview") == 0x4270454C) {
        static const char kHex[] = "0123456789abcdef";
        for (uint32_t k = 4; k < cv_size; ++k) {
          m.build_id += kHex[img.at(cv)[k] >> 4];
          m.build_id += kHex[img.at(cv)[k] & 15];
        }
      }
      report.modules.push_back(std::move(m));
    }
    if (!report.modules.empty()) report.executable = report.modules[0].path;
  }

  for (const auto& [key, value] : annotations) {
    if (key.rfind("lock_", 0) == 0) {
      Lock l;
      l.address = value.substr(0, value.find(' '));
      l.kind = field(value, "kind");
      l.name = field(value, "name");
      l.owner = std::atoi(field(value, "owner").c_str());
      l.readers = unsigned(std::atoi(field(value, "readers").c_str()));
      l.text = value;
      report.locks.push_back(std::move(l));
    } else if (key.rfind("nested_panic_", 0) == 0) {
      NestedPanic n;
      if (value.rfind("thread ", 0) == 0) n.tid = std::atoi(value.c_str() + 7);
      n.message = value;
      report.nested.push_back(std::move(n));
    }
  }
  // What the stop had to repair first, where the text report says it.
  if (auto n = annotations.find("note"); n != annotations.end()) report.other_lines.push_back("note: " + n->second);
  if (annotations.count("panic_message")) {
    report.message = annotations["panic_message"];
  } else if (annotations.count("dump_requested")) {
    report.message = "(none) " + annotations["dump_requested"];
  } else if (requesting_tid != 0 && exception_tid == 0) {
    report.message = "(none) requested dump";
  } else {
    report.message = "no panicstop annotations: minidump of " + std::to_string(report.pid) + " (signal " +
                     std::to_string(report.signal) + ")";
  }
  // No exception and a requesting thread: a dump taken without a crash
  // (panicstop's live dumps; Breakpad's WriteMinidump on request).
  if (exception_tid == 0 && requesting_tid != 0) mark_live_dump(report, requesting_tid);
  std::string head = "minidump: pid " + std::to_string(report.pid);
  if (report.signal != 0) head += ", signal " + std::to_string(report.signal);
  if (!report.executable.empty()) head += ", executable " + report.executable;
  head += ", " + std::to_string(report.threads.size()) + " threads";
  report.header_lines.push_back(head);
  return report;
}

}  // namespace panicstop::read
