// Where a lock was taken, and how a site is printed: shared by WITNESS's
// reports and the lock profile. Signal-safe formatting, raw reads of
// /proc/self/maps, no allocation.
#pragma once

#include <cstdint>

#include "sys/format.hpp"

namespace panicstop::detail {

// A macro's file:line, or a return address.
struct Site {
  const char* file = nullptr;
  uint32_t line = 0;
  uintptr_t return_address = 0;
};

// "file:line", or "0xADDR (module+0xOFF)" for a return address, or
// "(unknown site)".
void write_site(sys::FixedWriter& w, const Site& site) noexcept;
// "0xADDR (module+0xOFF)"; the module is found in /proc/self/maps.
void write_address(sys::FixedWriter& w, uintptr_t addr) noexcept;

}  // namespace panicstop::detail
