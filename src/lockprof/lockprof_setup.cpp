// Setup-time code: getenv, sigaction and stdio are fine here.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "panicstop/lockprof.hpp"
#include "lockprof/lockprof.hpp"

namespace panicstop {

namespace {
int g_report_fd = 2;

void report_handler(int) { lockprof_write_report(g_report_fd); }

__attribute__((constructor)) void read_lockprof_settings_at_load() { detail::lockprof_read_environment(); }
}  // namespace

bool lockprof_report_on_signal(int signo, int fd) noexcept {
  g_report_fd = fd;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = report_handler;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  return sigaction(signo, &sa, nullptr) == 0;
}

namespace detail {
void lockprof_read_environment() noexcept {
  const char* v = std::getenv("PANICSTOP_LOCKPROF");
  if (v == nullptr || *v == '\0') return;
  if (std::strcmp(v, "1") == 0)
    lockprof_enable(true);
  else if (std::strcmp(v, "0") == 0)
    lockprof_enable(false);
  else
    std::fprintf(stderr, "panicstop: PANICSTOP_LOCKPROF=%s: expected 0 or 1\n", v);
}
}  // namespace detail

}  // namespace panicstop
