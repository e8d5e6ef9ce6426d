// The library's capture_part_reached() (snapshot.hpp): nothing. It is weak so
// that a test program's own definition replaces it at link time, and alone in
// this file so that a static link which already has one never pulls this
// object in. A compiler does not inline a weak definition, whatever the
// optimization level, so the capture always calls the definition the linker
// chose.
#include "snapshot/snapshot.hpp"

namespace panicstop::detail {

__attribute__((weak)) void capture_part_reached(const char*) noexcept {}

}  // namespace panicstop::detail
