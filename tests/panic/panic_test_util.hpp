// Small helpers shared by the panic tests. Hooks run on the panicking thread
// with every other thread stopped (maybe inside malloc or stdio), so they report
// with raw writes only.
#pragma once

#include <atomic>
#include <cstdarg>
#include <cstdlib>
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

// exit(0) from `levels` frames of 512 written bytes below the caller: a
// program's exit from further down its stack than its signal handlers ran
// (SBCL's), where a handler that is gone must not be taken for one running.
inline void (*volatile g_exit_function)(int) = exit;
__attribute__((noinline)) inline void exit_from_deep_down(int levels) {
  volatile char scratch[512];
  for (size_t i = 0; i < sizeof scratch; ++i) scratch[i] = char(i + size_t(levels));
  if (levels == 0) return g_exit_function(0);  // through a pointer: the recursion's end is a call it cannot see
  exit_from_deep_down(levels - 1);
  scratch[0] = 1;
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
