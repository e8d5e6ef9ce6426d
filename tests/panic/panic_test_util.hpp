// Small helpers shared by the panic tests. Hooks run on the panicking thread
// with every other thread stopped (maybe inside malloc or stdio), so they report
// with raw writes only.
#pragma once

#include <atomic>
#include <cstdarg>
#include <string>

#include "stop/stop.hpp"
#include "sys/format.hpp"
#include "sys/syscall.hpp"

namespace panicstop::testing {

inline void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline void say(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  size_t n = sys::vformat(buf, sizeof buf, fmt, ap);
  va_end(ap);
  sys::write_all(2, buf, n);
}

inline int thread_count() {
  int n = 0;
  detail::for_each_thread([](int, void* c) noexcept { ++*static_cast<int*>(c); }, &n);
  return n;
}

inline void wait_for_threads(int n) {
  while (thread_count() < n) sys::sched_yield();
}

// Parks the calling thread for good (until the process ends).
[[noreturn]] inline void park() {
  static std::atomic<uint32_t> never{0};
  for (;;) sys::futex_wait(&never, 0);
}

inline size_t count_of(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1)) ++n;
  return n;
}

}  // namespace panicstop::testing
