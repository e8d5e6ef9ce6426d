#include "panicstop/version.hpp"

#define PANICSTOP_STRINGIFY2(x) #x
#define PANICSTOP_STRINGIFY(x) PANICSTOP_STRINGIFY2(x)

namespace panicstop {
const char* version_string() noexcept {
  return PANICSTOP_STRINGIFY(PANICSTOP_VERSION_MAJOR) "." PANICSTOP_STRINGIFY(PANICSTOP_VERSION_MINOR) "." PANICSTOP_STRINGIFY(
      PANICSTOP_VERSION_PATCH);
}
}  // namespace panicstop
