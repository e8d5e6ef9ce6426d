#include "dump/core_sink.hpp"

#include <cerrno>
#include <unistd.h>

#include "sys/syscall.hpp"

namespace panicstop::detail::core {

void CoreSink::put(const void* p, size_t n) noexcept {
  offset_ += n;
  if (counting() || !ok_) return;
  const unsigned char* src = static_cast<const unsigned char*>(p);
  while (n > 0) {
    if (used_ == cap_ && !flush()) return;
    size_t chunk = cap_ - used_ < n ? cap_ - used_ : n;
    __builtin_memcpy(buf_ + used_, src, chunk);
    used_ += chunk;
    src += chunk;
    n -= chunk;
  }
}

void CoreSink::zeros(size_t n) noexcept {
  offset_ += n;
  if (counting() || !ok_) return;
  while (n > 0) {
    if (used_ == cap_ && !flush()) return;
    size_t chunk = cap_ - used_ < n ? cap_ - used_ : n;
    __builtin_memset(buf_ + used_, 0, chunk);
    used_ += chunk;
    n -= chunk;
  }
}

void CoreSink::memory(uintptr_t addr, size_t n) noexcept {
  if (counting() || !ok_) {
    offset_ += n;
    return;
  }
  if (!flush()) return;
  // Straight from memory to the file: no copy, and the kernel turns a fault on
  // the source into EFAULT instead of a signal.
  constexpr uintptr_t kPage = 4096;
  while (n > 0) {
    long r = sys::write(fd_, reinterpret_cast<const void*>(addr), n);
    if (r == -EINTR) continue;
    if (r > 0) {
      addr += uintptr_t(r);
      n -= size_t(r);
      offset_ += uint64_t(r);
      continue;
    }
    if (r != -EFAULT) {
      ok_ = false;
      return;
    }
    size_t gap = size_t(((addr & ~(kPage - 1)) + kPage) - addr);
    if (gap > n) gap = n;
    ++unreadable_pages_;
    zeros(gap);
    if (!flush()) return;
    addr += gap;
    n -= gap;
  }
}

void CoreSink::hole(size_t n) noexcept {
  if (counting() || !ok_ || n == 0) {
    offset_ += n;
    return;
  }
  if (seekable_ && flush()) {
    if (sys::lseek(fd_, long(n), SEEK_CUR) >= 0) {
      offset_ += n;
      return;
    }
    seekable_ = false;  // a pipe or socket: zeros it is
  }
  zeros(n);
}

bool CoreSink::finish() noexcept {
  if (!flush() || counting()) return ok_;
  // A trailing hole has no size until something extends the file.
  if (seekable_) sys::raw_syscall(SYS_ftruncate, fd_, long(offset_));
  return ok_;
}

bool CoreSink::flush() noexcept {
  if (counting() || !ok_) return ok_;
  if (used_ > 0 && !sys::write_all(fd_, buf_, used_)) ok_ = false;
  used_ = 0;
  return ok_;
}

}  // namespace panicstop::detail::core
