// INTERIM: replaced by the panic path (issue 3). Prints the message and aborts.
#include "panicstop/panic.hpp"

#include <atomic>
#include <csignal>

#include "sys/format.hpp"
#include "sys/syscall.hpp"

namespace panicstop {

namespace {
char g_message[1024];
std::atomic<bool> g_panicking{false};
}  // namespace

bool install() noexcept { return true; }

void vpanic(const char* fmt, va_list ap) noexcept {
  g_panicking.store(true);
  sys::vformat(g_message, sizeof g_message, fmt, ap);
  char line[1100];
  size_t n = sys::format(line, sizeof line, "panic: %s\n", g_message);
  sys::write_all(2, line, n);
  sys::tgkill(sys::getpid(), sys::gettid(), SIGABRT);
  sys::exit_group(134);
}

void panic(const char* fmt, ...) noexcept {
  va_list ap;
  va_start(ap, fmt);
  vpanic(fmt, ap);
}

bool panicking() noexcept { return g_panicking.load(); }
const char* panic_message() noexcept { return g_panicking.load() ? g_message : nullptr; }
bool on_panic(Stage, void (*)(void*), void*) noexcept { return false; }

namespace detail {
void assert_failed(const char* cond, const char* file, int line, const char* fmt, ...) noexcept {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  sys::vformat(msg, sizeof msg, fmt, ap);
  va_end(ap);
  panic("assertion failed: %s (%s:%d)%s%s", cond, file, line, msg[0] ? ": " : "", msg);
}
}  // namespace detail

}  // namespace panicstop
