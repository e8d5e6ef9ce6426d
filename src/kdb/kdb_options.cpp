#include "kdb/kdb_options.hpp"

namespace panicstop::detail {

namespace {
KdbOptions g_options;
}  // namespace

KdbOptions& kdb_options_storage() noexcept { return g_options; }
const KdbOptions& kdb_options() noexcept { return g_options; }

}  // namespace panicstop::detail
