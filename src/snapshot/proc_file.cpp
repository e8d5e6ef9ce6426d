#include "snapshot/proc_file.hpp"

#include <cerrno>
#include <fcntl.h>

#include "sys/syscall.hpp"

namespace panicstop::detail {

namespace {
long read_whole(long fd, char* buf, size_t cap) noexcept {
  if (fd < 0) {
    buf[0] = '\0';
    return fd;
  }
  size_t used = 0;
  while (used + 1 < cap) {
    long r = sys::read(int(fd), buf + used, cap - 1 - used);
    if (r == -EINTR) continue;
    if (r <= 0) break;
    used += size_t(r);
  }
  buf[used] = '\0';
  sys::close(int(fd));
  return long(used);
}
}  // namespace

long read_proc_file(ProcScope scope, const char* path, char* buf, size_t cap) noexcept {
  if (cap == 0) return -EINVAL;
  return read_whole(proc_open(scope, path, O_RDONLY), buf, cap);
}

long read_small_file(const char* path, char* buf, size_t cap) noexcept {
  if (cap == 0) return -EINVAL;
  return read_whole(sys::openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC), buf, cap);
}

char* LineReader::next(size_t* len) noexcept {
  for (;;) {
    for (size_t i = begin_; i < end_; ++i) {
      if (buf_[i] == '\n') {
        char* line = buf_ + begin_;
        buf_[i] = '\0';
        *len = i - begin_;
        begin_ = i + 1;
        return line;
      }
    }
    bool full = begin_ == 0 && end_ + 1 >= cap_;
    if (eof_ || full) {
      if (begin_ == end_) return nullptr;
      // The last line without a newline, or a piece of an overlong one.
      char* line = buf_ + begin_;
      buf_[end_] = '\0';
      *len = end_ - begin_;
      begin_ = end_ = 0;
      return line;
    }
    // Move the partial line to the front and refill behind it.
    size_t keep = end_ - begin_;
    for (size_t i = 0; i < keep; ++i) buf_[i] = buf_[begin_ + i];
    begin_ = 0;
    end_ = keep;
    long r;
    do {
      r = sys::read(fd_, buf_ + end_, cap_ - 1 - end_);
    } while (r == -EINTR);
    if (r <= 0)
      eof_ = true;
    else
      end_ += size_t(r);
  }
}

}  // namespace panicstop::detail
