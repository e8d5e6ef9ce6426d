// Finding glibc's rseq area (thread/rseq.hpp). Setup only: dlsym.
#include <dlfcn.h>

#include <cstdint>

#include "thread/rseq.hpp"

#if __has_include(<sys/rseq.h>)
#include <sys/rseq.h>
#endif

namespace panicstop::detail {

namespace {

// The length glibc 2.35 to 2.39 registered whatever __rseq_size said, and the
// least any later one registers.
constexpr uint32_t kFirstAreaSize = 32;

}  // namespace

void find_rseq_layout() noexcept {
#ifdef RSEQ_SIG
  const auto* offset = static_cast<const ptrdiff_t*>(dlsym(RTLD_DEFAULT, "__rseq_offset"));
  const auto* size = static_cast<const unsigned int*>(dlsym(RTLD_DEFAULT, "__rseq_size"));
  // __rseq_size is 0 where glibc registers none (the glibc.pthread.rseq=0
  // tunable, a kernel without rseq).
  if (offset == nullptr || size == nullptr || *size == 0) return;
  g_rseq_layout.offset = *offset;
  g_rseq_layout.size = *size < kFirstAreaSize ? kFirstAreaSize : *size;
  g_rseq_layout.signature = RSEQ_SIG;
#endif
}

}  // namespace panicstop::detail
