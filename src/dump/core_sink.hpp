// The byte stream of a core file: buffered writes to a file descriptor through
// caller-reserved memory, or (fd < 0) counting only, so the same code that
// writes the notes also measures them before the headers are written.
#pragma once

#include <cstddef>
#include <cstdint>

namespace panicstop::detail::core {

class CoreSink {
 public:
  // fd < 0 counts bytes and writes nothing. buf may be null when fd < 0.
  CoreSink(int fd, unsigned char* buf, size_t cap) noexcept : fd_(fd), buf_(buf), cap_(cap) {}

  void put(const void* p, size_t n) noexcept;
  void zeros(size_t n) noexcept;
  // Copies n bytes of this process's memory at addr. Pages the kernel cannot
  // read (unmapped since the snapshot, PROT_NONE, past the end of a mapped
  // file) become zeros instead of faulting: write() reports EFAULT for them.
  void memory(uintptr_t addr, size_t n) noexcept;
  // n zero bytes as a hole in the file (lseek) where the file allows it, else
  // written zeros: never-touched anonymous memory costs no disk space.
  void hole(size_t n) noexcept;
  // Writes out what is buffered. Returns ok().
  bool flush() noexcept;
  // Flushes and gives the file its full size even if it ends in a hole.
  bool finish() noexcept;

  uint64_t offset() const noexcept { return offset_; }
  bool ok() const noexcept { return ok_; }
  bool counting() const noexcept { return fd_ < 0; }
  // Pages of memory() that could not be read.
  uint64_t unreadable_pages() const noexcept { return unreadable_pages_; }

 private:
  int fd_;
  unsigned char* buf_;
  size_t cap_;
  size_t used_ = 0;
  uint64_t offset_ = 0;
  uint64_t unreadable_pages_ = 0;
  bool ok_ = true;
  bool seekable_ = true;
};

}  // namespace panicstop::detail::core
