#include "read/symbolize.hpp"

#include <cxxabi.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string_view>

#include "read/guarded_open.hpp"
#include "read/text_report_parser.hpp"

namespace panicstop::read {
namespace {

// libdw keeps a pointer to this for the session: it must outlive every Dwfl.
char* g_debuginfo_path = nullptr;

const Dwfl_Callbacks kOfflineCallbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &g_debuginfo_path,
};

constexpr size_t kMaxUnwoundFrames = 256;

struct DwflDeleter {
  void operator()(Dwfl* d) const { dwfl_end(d); }
};
using DwflPtr = std::unique_ptr<Dwfl, DwflDeleter>;

std::string dwfl_error() {
  const char* msg = dwfl_errmsg(-1);
  return msg != nullptr ? msg : "unknown libdw error";
}

// elfutils before 0.189 finds a pc's compile unit only through
// .debug_aranges, which clang does not emit: walk the units instead.
void source_line_by_walking_units(Dwfl_Module* module, uint64_t lookup, Frame& frame) {
  Dwarf_Addr bias = 0;
  Dwarf_Die* unit = nullptr;
  while ((unit = dwfl_module_nextcu(module, unit, &bias)) != nullptr) {
    if (dwarf_haspc(unit, lookup - bias) != 1) continue;
    Dwarf_Line* line = dwarf_getsrc_die(unit, lookup - bias);
    int line_number = 0;
    const char* file = line != nullptr ? dwarf_linesrc(line, nullptr, nullptr) : nullptr;
    if (file != nullptr && dwarf_lineno(line, &line_number) == 0 && line_number > 0) {
      frame.file = file;
      frame.line = line_number;
    }
    return;
  }
}

// Whether the compile unit libdwfl picks for `lookup` holds it. libdwfl
// takes .debug_aranges to be whole: a gap between two units' ranges is
// credited to the unit before it. A Go binary with cgo has ranges only for
// its C units, one of them split into a hot and a cold part, so every Go pc
// after the cold part was named after that C file ("gcc_mmap.c:37" for
// main.main, as eu-addr2line says too).
bool unit_holds(Dwfl_Module* module, uint64_t lookup) {
  Dwarf_Addr bias = 0;
  Dwarf_Die* unit = dwfl_module_addrdie(module, lookup, &bias);
  return unit != nullptr && dwarf_haspc(unit, lookup - bias) == 1;
}

// Names `frame` from the module holding `lookup`: function, offset from the
// function start (of `frame.pc`, the address as shown), module, file:line.
void describe_address(Dwfl* dwfl, uint64_t lookup, Frame& frame) {
  Dwfl_Module* module = dwfl_addrmodule(dwfl, lookup);
  if (module == nullptr) return;
  const char* main_file = nullptr;
  Dwarf_Addr module_start = 0;
  const char* module_name =
      dwfl_module_info(module, nullptr, &module_start, nullptr, nullptr, nullptr, &main_file, nullptr);
  if (frame.module.empty()) {
    frame.module = main_file != nullptr ? main_file : (module_name != nullptr ? module_name : "");
    frame.module_offset = frame.pc - module_start;
  }
  GElf_Off offset = 0;
  GElf_Sym sym;
  const char* name = dwfl_module_addrinfo(module, lookup, &offset, &sym, nullptr, nullptr, nullptr);
  if (name != nullptr && frame.function.empty()) {
    frame.function = demangle(name);
    frame.offset = offset + (frame.pc - lookup);
  }
  Dwfl_Line* line = dwfl_module_getsrc(module, lookup);
  if (line != nullptr && unit_holds(module, lookup)) {
    int line_number = 0;
    const char* file = dwfl_lineinfo(line, nullptr, &line_number, nullptr, nullptr, nullptr);
    if (file != nullptr && line_number > 0) {
      frame.file = file;
      frame.line = line_number;
    }
    return;
  }
  source_line_by_walking_units(module, lookup, frame);
}

// "main.poke+0x0 (nil)", as the text report writes a code site: the
// function and the module's file name, or the module and the offset in it.
// "" when libdw knows nothing of pc, or pc is in a module of another build.
std::string code_site(Dwfl* dwfl, uint64_t pc, const std::set<Dwfl_Module*>& different_build) {
  if (different_build.count(dwfl_addrmodule(dwfl, pc)) != 0) return "";
  Frame f;
  f.pc = pc;
  describe_address(dwfl, pc, f);
  std::string module = f.module.substr(f.module.rfind('/') + 1);
  char offset[32];
  if (!f.function.empty()) {
    std::snprintf(offset, sizeof offset, "+0x%llx", static_cast<unsigned long long>(f.offset.value_or(0)));
    return f.function + offset + (module.empty() ? "" : " (" + module + ")");
  }
  if (module.empty() || !f.module_offset) return "";
  std::snprintf(offset, sizeof offset, "+0x%llx", static_cast<unsigned long long>(*f.module_offset));
  return "?? (" + module + offset + ")";
}

// The core's and the minidump's earlier-fault line gives its two sites as
// bare addresses ("at 0x482c80; the program's handler resumed the thread at
// 0x45eba0 instead ..."): each is named as the text report names it. A
// text report's line, already named, is left as it is.
void name_earlier_fault_sites(Dwfl* dwfl, Thread& t, const std::set<Dwfl_Module*>& different_build = {}) {
  if (t.earlier_fault_pc == 0) return;
  for (std::string& note : t.notes) {
    if (earlier_fault_pc_in(note) != t.earlier_fault_pc) continue;
    for (std::string_view before : {", at 0x", "resumed the thread at 0x"}) {
      size_t at = note.find(before);
      if (at == std::string::npos) continue;
      size_t digits = at + before.size(), end = note.find_first_not_of("0123456789abcdef", digits);
      if (end == std::string::npos || end == digits || end - digits > 16 ||
          (note[end] != ';' && note.compare(end, 8, " instead") != 0))
        continue;  // named already, or not this line's shape
      uint64_t pc = std::stoull(note.substr(digits, end - digits), nullptr, 16);
      std::string site = code_site(dwfl, pc, different_build);
      if (!site.empty()) note.insert(end, " " + site);
    }
    return;
  }
}

// One module reported offline at its link-time addresses, with its function
// symbols by name.
struct OfflineModule {
  DwflPtr dwfl;
  Dwfl_Module* module = nullptr;
  std::map<std::string, uint64_t> functions;  // raw and demangled names
};

std::unique_ptr<OfflineModule> open_offline(const std::string& path, std::string& error) {
  auto m = std::make_unique<OfflineModule>();
  m->dwfl.reset(dwfl_begin(&kOfflineCallbacks));
  if (!m->dwfl) {
    error = dwfl_error();
    return nullptr;
  }
  m->module = dwfl_report_offline(m->dwfl.get(), path.c_str(), path.c_str(), -1);
  dwfl_report_end(m->dwfl.get(), nullptr, nullptr);
  if (m->module == nullptr) {
    error = dwfl_error();
    return nullptr;
  }
  int count = dwfl_module_getsymtab(m->module);
  for (int i = 0; i < count; ++i) {
    GElf_Sym sym;
    GElf_Addr addr = 0;
    const char* name = dwfl_module_getsym_info(m->module, i, &sym, &addr, nullptr, nullptr, nullptr);
    if (name == nullptr || *name == '\0' || GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF) continue;
    m->functions.emplace(name, addr);
    m->functions.emplace(demangle(name), addr);
  }
  return m;
}

// "" when path is a regular file that can be read, else why not.
std::string unusable_module(const std::string& path) {
  int fd = open_regular_file(path);
  if (fd < 0) return errno == ENXIO ? "not a regular file" : "not found";
  close(fd);
  return "";
}

struct UnwindContext {
  Report* report;
  Dwfl* dwfl;
  std::set<int> unwound;
  std::map<int, size_t> thread_index;  // tid -> index in report->threads
  // Threads with the same unwound pcs (a pool parked in one place) share one
  // described list: described once, held once.
  std::map<std::vector<std::pair<uint64_t, bool>>, FrameList> stacks;
};

int on_frame(Dwfl_Frame* state, void* arg) {
  auto* frames = static_cast<std::vector<Frame>*>(arg);
  Dwarf_Addr pc = 0;
  bool is_activation = false;
  if (!dwfl_frame_pc(state, &pc, &is_activation)) return DWARF_CB_ABORT;
  Frame f;
  f.pc = pc;
  frames->push_back(f);
  // A return address points after the call: look up the call itself.
  frames->back().line = is_activation ? 0 : -1;
  return frames->size() >= kMaxUnwoundFrames ? DWARF_CB_ABORT : DWARF_CB_OK;
}

int on_thread(Dwfl_Thread* thread, void* arg) {
  auto* ctx = static_cast<UnwindContext*>(arg);
  int tid = static_cast<int>(dwfl_thread_tid(thread));
  std::vector<Frame> frames;
  int rc = dwfl_thread_getframes(thread, on_frame, &frames);
  if (rc != 0 && frames.size() < kMaxUnwoundFrames && frames.size() <= 1) {
    ctx->report->warnings.push_back("thread " + std::to_string(tid) + ": unwinding stopped: " + dwfl_error());
  }
  auto found = ctx->thread_index.find(tid);
  if (found == ctx->thread_index.end() || frames.empty()) return DWARF_CB_OK;
  // The faulting instruction a runtime entered its crash handling from, as
  // if called: its pc is where the fault was, not after a call.
  if (uint64_t faulting = ctx->report->threads[found->second].earlier_fault_pc; faulting != 0) {
    for (Frame& f : frames)
      if (f.pc == faulting) f.line = 0;
  }
  std::vector<std::pair<uint64_t, bool>> key;
  for (const Frame& f : frames) key.emplace_back(f.pc, f.line == -1);
  auto [stack, is_new] = ctx->stacks.try_emplace(std::move(key));
  if (is_new) {
    for (Frame& f : frames) {
      bool return_address = f.line == -1;
      f.line = 0;
      describe_address(ctx->dwfl, return_address && f.pc > 0 ? f.pc - 1 : f.pc, f);
    }
    stack->second = FrameList(std::move(frames));
  }
  ctx->report->threads[found->second].frames = stack->second;
  ctx->unwound.insert(tid);
  return DWARF_CB_OK;
}

std::string hex_bytes(const unsigned char* bytes, int n) {
  static const char digits[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < n; ++i) {
    s += digits[bytes[i] >> 4];
    s += digits[bytes[i] & 15];
  }
  return s;
}

// The pcs that are faulting instructions in whichever frame holds them:
// the panicking thread's earlier fault, when a runtime entered its crash
// handling as if called from it (Thread::earlier_fault_pc).
std::set<uint64_t> faulting_pcs(const Report& report) {
  std::set<uint64_t> pcs;
  for (const Thread& t : report.threads)
    if (t.earlier_fault_pc != 0) pcs.insert(t.earlier_fault_pc);
  return pcs;
}

// Frames past the first hold return addresses, whose call is the byte
// before: looked up there, a call that ends a function is named after it,
// not after the next one. A faulting instruction is looked up as it is.
bool is_return_address(size_t frame_index, uint64_t pc, const std::set<uint64_t>& faulting) {
  return frame_index > 0 && faulting.count(pc) == 0;
}

// The report lists each module's path, start address and build-id: report
// the files at those addresses and look every pc up directly (frames without
// a symbol get one from the debug info too). A file whose build-id differs
// from the dump's is a different build: it gives no file:line.
void symbolize_with_modules(Report& report) {
  DwflPtr dwfl(dwfl_begin(&kOfflineCallbacks));
  if (!dwfl) {
    report.warnings.push_back("libdw: " + dwfl_error());
    return;
  }
  std::set<Dwfl_Module*> different_build;
  for (const Module& m : report.modules) {
    if (m.path.empty() || m.path[0] != '/') continue;  // [vdso] and the like
    if (std::string why = unusable_module(m.path); !why.empty()) {
      report.warnings.push_back("module " + m.path + ": " + why + " (no file:line for its frames)");
      continue;
    }
    Dwfl_Module* module = dwfl_report_elf(dwfl.get(), m.path.c_str(), m.path.c_str(), -1, m.start, false);
    if (module == nullptr) {
      report.warnings.push_back("module " + m.path + ": " + dwfl_error());
      continue;
    }
    const unsigned char* bits = nullptr;
    GElf_Addr vaddr = 0;
    int n = dwfl_module_build_id(module, &bits, &vaddr);
    if (!m.build_id.empty() && n > 0 && hex_bytes(bits, n) != m.build_id) {
      report.warnings.push_back("module " + m.path + ": build-id on disk differs from the dump's (no file:line)");
      different_build.insert(module);
    }
  }
  dwfl_report_end(dwfl.get(), nullptr, nullptr);
  // Threads grouped under one stack repeat the same frames: resolve each once.
  std::map<std::pair<uint64_t, uint64_t>, Frame> resolved;
  std::set<uint64_t> faulting = faulting_pcs(report);
  for_each_frame_list(report, [&](std::vector<Frame>& frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      Frame& f = frames[i];
      uint64_t lookup = is_return_address(i, f.pc, faulting) && f.pc > 0 ? f.pc - 1 : f.pc;
      auto [it, is_new] = resolved.try_emplace({f.pc, lookup}, f);
      if (is_new) {
        Dwfl_Module* module = dwfl_addrmodule(dwfl.get(), lookup);
        if (module != nullptr && different_build.count(module) == 0) describe_address(dwfl.get(), lookup, it->second);
      }
      if (f.function.empty()) {
        f.function = it->second.function;
        f.offset = it->second.offset;
      }
      f.file = it->second.file;
      f.line = it->second.line;
    }
  });
  for (Thread& t : report.threads) name_earlier_fault_sites(dwfl.get(), t, different_build);
}

}  // namespace

std::string demangle(const std::string& name) {
  if (name.size() < 2 || name[0] != '_' || name[1] != 'Z') return name;
  int status = 0;
  char* out = abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status);
  if (status != 0 || out == nullptr) {
    std::free(out);
    return name;
  }
  std::string result(out);
  std::free(out);
  return result;
}

void symbolize_text_report(Report& report) {
  GuardedOpens no_fifos;
  for_each_frame_list(report, [](std::vector<Frame>& frames) {
    for (Frame& f : frames) f.function = demangle(f.function);
  });
  if (!report.modules.empty()) {
    symbolize_with_modules(report);
    return;
  }
  // No modules section: find each frame's function by name in its module file.
  std::map<std::string, std::unique_ptr<OfflineModule>> modules;
  std::set<std::string> warned;
  std::set<uint64_t> faulting = faulting_pcs(report);
  for_each_frame_list(report, [&](std::vector<Frame>& frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      Frame& f = frames[i];
      if (f.module.empty() || f.function.empty() || !f.offset || f.line > 0) continue;
      auto it = modules.find(f.module);
      if (it == modules.end()) {
        std::string error;
        std::unique_ptr<OfflineModule> m;
        error = unusable_module(f.module);
        if (error.empty()) {
          m = open_offline(f.module, error);
        }
        if (!m && warned.insert(f.module).second) {
          report.warnings.push_back("module " + f.module + ": " + error + " (no file:line for its frames)");
        }
        it = modules.emplace(f.module, std::move(m)).first;
      }
      if (!it->second) continue;
      auto fn = it->second->functions.find(f.function);
      if (fn == it->second->functions.end()) continue;
      uint64_t address = fn->second + *f.offset;
      uint64_t lookup = is_return_address(i, f.pc, faulting) && *f.offset > 0 ? address - 1 : address;
      Frame resolved;
      resolved.pc = address;
      resolved.function = f.function;  // keep the report's name and offset
      resolved.module = f.module;
      describe_address(it->second->dwfl.get(), lookup, resolved);
      f.file = resolved.file;
      f.line = resolved.line;
    }
  });
}

void unwind_core(const std::string& core_path, Report& report) {
  // The core names module files, and libdw opens them itself.
  GuardedOpens no_fifos;
  elf_version(EV_CURRENT);
  int fd = open(core_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    report.warnings.push_back("cannot reopen the core for unwinding");
    return;
  }
  Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  DwflPtr dwfl(dwfl_begin(&kOfflineCallbacks));
  UnwindContext ctx{&report, dwfl.get(), {}, {}, {}};
  for (size_t i = 0; i < report.threads.size(); ++i) ctx.thread_index.try_emplace(report.threads[i].tid, i);
  if (elf == nullptr || !dwfl) {
    report.warnings.push_back(std::string("libdw cannot open the core: ") + elf_errmsg(-1));
  } else if (dwfl_core_file_report(dwfl.get(), elf, nullptr) < 0) {
    report.warnings.push_back("libdw cannot report the core's modules: " + dwfl_error());
  } else {
    dwfl_report_end(dwfl.get(), nullptr, nullptr);
    if (dwfl_core_file_attach(dwfl.get(), elf) < 0) {
      report.warnings.push_back("libdw cannot attach to the core's threads: " + dwfl_error());
    } else {
      dwfl_getthreads(dwfl.get(), on_thread, &ctx);
    }
  }
  // Threads libdw did not unwind still show where they were.
  for (Thread& t : report.threads) {
    if (dwfl) name_earlier_fault_sites(dwfl.get(), t);
    if (ctx.unwound.count(t.tid) != 0 || !t.has_registers) continue;
    Frame f;
    f.pc = t.pc;
    if (dwfl) describe_address(dwfl.get(), t.pc, f);
    t.frames.assign(1, f);
  }
  dwfl.reset();
  if (elf != nullptr) elf_end(elf);
  close(fd);
}

}  // namespace panicstop::read
