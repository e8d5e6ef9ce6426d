// Reading /proc files on the crash path: raw syscalls into caller-owned
// buffers, no allocation, no stdio.
#pragma once

#include <cstddef>

#include "stop/proc_dir.hpp"

namespace panicstop::detail {

// Reads the whole of /proc/self/PATH or /proc/thread-self/PATH (see
// stop/proc_dir.hpp) or as much as fits in cap - 1 bytes into buf,
// NUL-terminates it and returns the length; a negative errno if the file
// cannot be opened (buf is then "").
long read_proc_file(ProcScope scope, const char* path, char* buf, size_t cap) noexcept;
// The same for a file outside /proc, by its absolute path (/etc/os-release).
long read_small_file(const char* path, char* buf, size_t cap) noexcept;

// Hands out the lines of a file one at a time, refilling a fixed buffer from
// the descriptor. A line longer than the buffer comes back in pieces (callers
// that parse fields simply reject such pieces).
class LineReader {
 public:
  LineReader(int fd, char* buf, size_t cap) noexcept : fd_(fd), buf_(buf), cap_(cap) {}
  // The next line without its '\n', NUL-terminated in place; nullptr at the end
  // of the file or on a read error. Valid until the next call.
  char* next(size_t* len) noexcept;

 private:
  int fd_;
  char* buf_;
  size_t cap_;
  size_t begin_ = 0, end_ = 0;
  bool eof_ = false;
};

}  // namespace panicstop::detail
