// Test support: run a crashing child with both writers into a fresh
// directory, and read back what it wrote (report text, core size).
#pragma once

#include <elf.h>
#include <sys/stat.h>

#include <cstdint>
#include <fstream>
#include <iterator>

#include <regex>
#include <string>
#include <vector>

#include "support/child_process.hpp"

namespace panicstop::testing {

struct CrashDumps {
  ChildResult child;
  std::string report_path, core_path;
  std::string report;        // the text report, "" if none was written
  long long core_bytes = 0;  // size of the ELF core, 0 if none
};

// Runs body in a child (it installs panicstop and crashes) with dumps in dir.
inline CrashDumps crash_with_dumps(const std::string& dir, const std::function<void()>& body,
                                   std::vector<std::pair<std::string, std::string>> env = {},
                                   int deadline_ms = 60000) {
  ChildOptions opts;
  opts.deadline = std::chrono::milliseconds(deadline_ms);
  opts.set_env = {{"PANICSTOP_DUMP_DIR", dir}};
  for (auto& e : env) opts.set_env.push_back(e);
  opts.unset_env = {"PANICSTOP_DUMP", "PANICSTOP_CORE"};
  CrashDumps d;
  d.child = run_in_child(body, opts);
  std::regex wrote(R"(panicstop: wrote (\S+))");
  for (std::sregex_iterator it(d.child.output.begin(), d.child.output.end(), wrote), end; it != end; ++it) {
    std::string path = (*it)[1];
    if (path.size() > 4 && path.substr(path.size() - 4) == ".txt") d.report_path = path;
    if (path.size() > 5 && path.substr(path.size() - 5) == ".core") d.core_path = path;
  }
  if (!d.report_path.empty()) d.report = read_file(d.report_path);
  struct stat st;
  if (!d.core_path.empty() && stat(d.core_path.c_str(), &st) == 0) d.core_bytes = st.st_size;
  return d;
}

// The lines of the report's "modules:" section.
inline std::vector<std::string> report_modules(const std::string& report) {
  std::vector<std::string> out;
  size_t at = report.find("\nmodules:\n");
  if (at == std::string::npos) return out;
  size_t pos = at + 10;
  while (pos < report.size() && report[pos] == ' ') {
    size_t end = report.find('\n', pos);
    if (end == std::string::npos) end = report.size();
    out.push_back(report.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

inline bool lists_module(const std::string& report, const std::string& name) {
  for (const std::string& m : report_modules(report))
    if (m.find(name) != std::string::npos) return true;
  return false;
}

// The stack printed for thread tid: its own, or the one its group shares
// (threads with identical stacks have consecutive headers and one stack).
inline std::string stack_of(const std::string& report, int tid) {
  size_t at = report.find("\nthread " + std::to_string(tid) + " ");
  if (at == std::string::npos) return "";
  size_t frames = report.find("\n  #0 ", at);
  if (frames == std::string::npos) return "";
  size_t end = report.find("\nthread ", frames);
  size_t blank = report.find("\n\n", frames);
  if (blank < end) end = blank;
  return report.substr(frames + 1, end == std::string::npos ? std::string::npos : end - frames - 1);
}

// How many "#N" frame lines the block of thread tid has.
inline int frame_lines(const std::string& block) {
  static const std::regex frame(R"(\n  #\d+ 0x)");
  return int(std::distance(std::sregex_iterator(block.begin(), block.end(), frame), std::sregex_iterator()));
}

// Does the ELF core at path hold the contents of addr (a PT_LOAD segment with
// file data covering it)?
inline bool core_has_memory_at(const std::string& path, uintptr_t addr) {
  std::ifstream f(path, std::ios::binary);
  Elf64_Ehdr eh{};
  if (!f.read(reinterpret_cast<char*>(&eh), sizeof eh) || eh.e_phentsize != sizeof(Elf64_Phdr)) return false;
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph{};
    f.seekg(std::streamoff(eh.e_phoff + uint64_t(i) * sizeof ph));
    if (!f.read(reinterpret_cast<char*>(&ph), sizeof ph)) return false;
    if (ph.p_type == PT_LOAD && addr >= ph.p_vaddr && addr < ph.p_vaddr + ph.p_filesz) return true;
  }
  return false;
}

}  // namespace panicstop::testing
