#include "support/reports.hpp"

#include <cxxabi.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "dump/text_report.hpp"
#include "dump/dump_options.hpp"
#include "support/child_process.hpp"

namespace panicstop::testing {

std::string thread_block(const std::string& report, int tid) {
  size_t at = report.find("\nthread " + std::to_string(tid) + " ");
  if (at == std::string::npos) return "";
  size_t end = report.find("\n\n", at + 1);
  size_t next = report.find("\nthread ", at + 1);
  if (next < end) end = next;
  return report.substr(at + 1, end == std::string::npos ? std::string::npos : end - at - 1);
}

int control_connect(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int error = errno;
    close(fd);
    errno = error;
    return -1;
  }
  return fd;
}

std::string control_request(const std::string& path, const std::string& line, int pass_fd) {
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGRTMAX - 5);
  raw_sigmask(SIG_BLOCK, &block);
  int fd = control_connect(path);
  if (fd < 0) return "connect failed: " + std::string(strerror(errno));
  std::string l = line + "\n";
  iovec iov{l.data(), l.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (pass_fd >= 0) {  // as `panicstop dump --dir` passes its directory
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &pass_fd, sizeof pass_fd);
  }
  if (sendmsg(fd, &msg, MSG_NOSIGNAL) != ssize_t(l.size())) {
    close(fd);
    return "write failed";
  }
  std::string reply;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) reply.append(buf, size_t(n));
  close(fd);
  return reply;
}

std::string render_text_report(const detail::CrashRecord& rec) {
  int fd = memfd_create("report", 0);
  if (fd < 0) return "";
  bool ok = detail::write_text_report(rec, detail::dump_options(), fd);
  off_t size = lseek(fd, 0, SEEK_END);
  std::string text(size > 0 ? size_t(size) : 0, '\0');
  if (!ok || pread(fd, text.data(), text.size(), 0) != size) text = "(the text report could not be written)";
  close(fd);
  if (getenv("PANICSTOP_TEST_SHOW_REPORT") != nullptr) fputs(text.c_str(), stderr);
  return text;
}

std::string cxa_demangled(const std::string& mangled) {
  int status = 0;
  char* r = abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status);
  std::string out = status == 0 && r != nullptr ? r : "";
  std::free(r);
  return out;
}

std::vector<std::string> nm_defined_symbols(const std::string& path, const char* flags) {
  std::vector<std::string> names;
  std::string cmd = std::string("nm ") + flags + " --defined-only '" + path + "' 2>/dev/null";
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) return names;
  char line[8192];
  while (fgets(line, sizeof line, f) != nullptr) {
    std::string l(line);
    while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.pop_back();
    std::string n = l.substr(l.rfind(' ') + 1);
    size_t at = n.find('@');
    if (at != std::string::npos) n.resize(at);
    if (!n.empty()) names.push_back(n);
  }
  pclose(f);
  return names;
}

}  // namespace panicstop::testing
