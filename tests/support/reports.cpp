#include "support/reports.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

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

std::string control_request(const std::string& path, const std::string& line) {
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGRTMAX - 5);
  raw_sigmask(SIG_BLOCK, &block);
  int fd = control_connect(path);
  if (fd < 0) return "connect failed: " + std::string(strerror(errno));
  std::string l = line + "\n";
  if (write(fd, l.data(), l.size()) != ssize_t(l.size())) {
    close(fd);
    return "write failed";
  }
  std::string reply;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) reply.append(buf, size_t(n));
  close(fd);
  return reply;
}

}  // namespace panicstop::testing
