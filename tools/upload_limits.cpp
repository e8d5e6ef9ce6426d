#include "upload_limits.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace panicstop::tool {

namespace {

constexpr int kSignatureFrames = 5;

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// "  #3 0x55f4bab03453 name+0x7 (lib.so)" -> "name+0x7 (lib.so)"
std::string frame_without_address(const std::string& line) {
  std::istringstream in(line);
  std::string index, address, rest;
  in >> index >> address;
  std::getline(in, rest);
  size_t start = rest.find_first_not_of(' ');
  return start == std::string::npos ? "" : rest.substr(start);
}

}  // namespace

std::string crash_signature(const std::string& report_path) {
  std::ifstream in(report_path);
  if (!in) return "";
  std::string line, executable, frames;
  bool in_panicking = false, have_panicking = false;
  int taken = 0;
  while (std::getline(in, line)) {
    if (line.rfind("thread ", 0) == 0) {
      in_panicking = line.find("[panicking]") != std::string::npos;
      have_panicking = have_panicking || in_panicking;
      continue;
    }
    if (in_panicking && taken < kSignatureFrames && line.rfind("  #", 0) == 0) {
      frames += frame_without_address(line) + "\n";
      ++taken;
    }
    if (line.find(" (executable)") != std::string::npos) {
      size_t id = line.find("build-id=");
      if (id != std::string::npos) executable = line.substr(id + 9, line.find(' ', id) - id - 9);
    }
  }
  if (!have_panicking) return "";
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a(executable + "\n" + frames)));
  return hex;
}

UploadLog::UploadLog(const std::string& dir) : path_(dir + "/.panicstop-uploads") {}

std::vector<UploadLog::Entry> UploadLog::read() const {
  std::vector<Entry> entries;
  std::ifstream in(path_);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    Entry e;
    if (fields >> e.seconds >> e.what >> e.signature) entries.push_back(e);
  }
  return entries;
}

int UploadLog::sent_within(const std::string& signature, long window, time_t now) const {
  int n = 0;
  for (const Entry& e : read())
    if (e.what == "sent" && e.signature == signature && e.seconds > now - window) ++n;
  return n;
}

int UploadLog::held_since_last_sent(const std::string& signature) const {
  int n = 0;
  for (const Entry& e : read()) {
    if (e.signature != signature) continue;
    if (e.what == "sent") n = 0;
    else if (e.what == "held") ++n;
  }
  return n;
}

bool UploadLog::record(const std::string& signature, const char* what, time_t now) const {
  int fd = open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  std::string line = std::to_string(static_cast<long long>(now)) + " " + what + " " + signature + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == ssize_t(line.size());
  close(fd);
  return ok;
}

}  // namespace panicstop::tool
