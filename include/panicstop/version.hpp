// The version of panicstop these headers belong to. The CMake package
// (find_package(panicstop 0.1)) and panicstop.pc carry the same numbers: the
// build reads them from this file, so there is one place to change.
//
// Compatibility: within one MAJOR.MINOR, the headers and the library's exported
// symbols only grow. A program may check at compile time:
//   static_assert(PANICSTOP_VERSION >= PANICSTOP_MAKE_VERSION(0, 1, 0));
// and at run time, against the library it was linked with, version_string().
#pragma once

#include "panicstop/export.hpp"

#define PANICSTOP_VERSION_MAJOR 0
#define PANICSTOP_VERSION_MINOR 1
#define PANICSTOP_VERSION_PATCH 0

#define PANICSTOP_MAKE_VERSION(major, minor, patch) ((major) * 10000 + (minor) * 100 + (patch))
#define PANICSTOP_VERSION \
  PANICSTOP_MAKE_VERSION(PANICSTOP_VERSION_MAJOR, PANICSTOP_VERSION_MINOR, PANICSTOP_VERSION_PATCH)

namespace panicstop {
// "MAJOR.MINOR.PATCH" of the library the program runs with (which may differ
// from the headers it was compiled against when the shared library was
// replaced). Static storage.
PANICSTOP_EXPORT const char* version_string() noexcept;
}  // namespace panicstop
