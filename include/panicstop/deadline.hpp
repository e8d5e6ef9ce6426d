// Conversion of std::chrono durations and time points to the absolute
// CLOCK_MONOTONIC deadlines the timed waits of SxLock and CondVar sleep with.
// Internal to those headers.
#pragma once

#include <chrono>
#include <cstdint>
#include <type_traits>

namespace panicstop::detail {

// No deadline: wait until the event.
inline constexpr int64_t kNoDeadline = -1;

// Nanoseconds of std::chrono::steady_clock, which is CLOCK_MONOTONIC on Linux
// (the clock the futex deadlines use).
inline int64_t steady_now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The absolute monotonic deadline `d` from now. A duration of zero or less is
// a deadline already passed (the wait makes one attempt); one longer than a
// century is no deadline at all, which also keeps the arithmetic from
// overflowing for duration::max().
template <class Rep, class Period>
int64_t deadline_after(const std::chrono::duration<Rep, Period>& d) noexcept {
  using namespace std::chrono;
  const int64_t now = steady_now_ns();
  if (d <= d.zero()) return now;
  if (duration_cast<duration<double>>(d).count() > 100.0 * 365 * 24 * 3600) return kNoDeadline;
  return now + ceil<nanoseconds>(d).count();
}

// The absolute monotonic deadline of a time point of any clock. Points of
// steady_clock are used as they are; any other clock (system_clock included)
// is read once and the remaining time added to the monotonic now, as
// std::condition_variable does, so a later change of that clock is not followed.
template <class Clock, class Duration>
int64_t deadline_at(const std::chrono::time_point<Clock, Duration>& tp) noexcept {
  using namespace std::chrono;
  if constexpr (std::is_same_v<Clock, steady_clock>) {
    if (tp.time_since_epoch() <= tp.time_since_epoch().zero()) return 0;
    if (duration_cast<duration<double>>(tp.time_since_epoch()).count() > 1e11) return kNoDeadline;
    return ceil<nanoseconds>(tp.time_since_epoch()).count();
  } else {
    return deadline_after(tp - Clock::now());
  }
}

}  // namespace panicstop::detail
