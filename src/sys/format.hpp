// Signal-safe text formatting into caller-owned buffers.
//
// The crash path cannot call snprintf (it may allocate and is not
// async-signal-safe), so this is the one formatter used everywhere on that path:
// panic messages, the stderr banner, the text report. Output is always
// NUL-terminated and silently truncated at the buffer's end.
#pragma once

#include <cstdarg>
#include <cstddef>
#include <cstdint>

namespace panicstop::sys {

class FixedWriter {
 public:
  FixedWriter(char* buf, size_t cap) noexcept : buf_(buf), cap_(cap) {
    if (cap_ > 0) buf_[0] = '\0';
  }

  FixedWriter& str(const char* s) noexcept;
  FixedWriter& str(const char* s, size_t n) noexcept;
  FixedWriter& ch(char c) noexcept;
  // Text the program supplied (messages, thread and lock names, paths, its
  // command line), made one line: \n \r \t and backslash as two characters,
  // other control bytes as \xHH, at most max bytes of s. Reports stay one
  // record per line whatever the program wrote.
  FixedWriter& escaped(const char* s, size_t max = ~size_t(0)) noexcept;
  FixedWriter& dec(int64_t v) noexcept;
  FixedWriter& udec(uint64_t v, int width = 0, char pad = ' ') noexcept;
  FixedWriter& hex(uint64_t v, int width = 0) noexcept;  // without 0x
  FixedWriter& addr(uint64_t v) noexcept { return str("0x").hex(v); }
  // printf subset: %s %c %d %i %u %x %X %p %% with l/ll/z/j/t length, '-', '0',
  // width and precision (for %s and %.*s). Unknown conversions print verbatim.
  FixedWriter& vformat(const char* fmt, va_list ap) noexcept;
  FixedWriter& format(const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));

  const char* data() const noexcept { return buf_; }
  size_t size() const noexcept { return len_; }
  bool truncated() const noexcept { return truncated_; }
  void clear() noexcept {
    len_ = 0;
    truncated_ = false;
    if (cap_ > 0) buf_[0] = '\0';
  }

 private:
  char* buf_;
  size_t cap_;
  size_t len_ = 0;
  bool truncated_ = false;
};

// s escaped as FixedWriter::escaped() does, in a buffer that lives as long as
// the expression it appears in: out.line("panic: %s", Escaped<1024>(msg).text).
template <size_t N>
struct Escaped {
  explicit Escaped(const char* s, size_t max = ~size_t(0)) noexcept { FixedWriter(text, N).escaped(s, max); }
  char text[N];
};

// Formats into buf (NUL-terminated); returns the length written.
size_t format(char* buf, size_t cap, const char* fmt, ...) noexcept __attribute__((format(printf, 3, 4)));
size_t vformat(char* buf, size_t cap, const char* fmt, va_list ap) noexcept;
// Formats one line into buf and ends it with '\n' (not NUL-terminated; a long
// line is cut, never its newline). Returns the length with the newline.
size_t vformat_line(char* buf, size_t cap, const char* fmt, va_list ap) noexcept;
// Formats one line (at most kLineMax bytes) and writes it whole to fd, with
// send_all(): a socket whose peer hung up gives false, never SIGPIPE. Lines to
// fd 2 go through write_stderr() instead: bounded, maybe dropped.
inline constexpr size_t kLineMax = 4096 + 256;
bool write_line(int fd, const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));

// Length of a NUL-terminated string, bounded by max.
size_t bounded_strlen(const char* s, size_t max) noexcept;
// Copies at most cap-1 bytes and terminates; returns the length copied.
size_t copy_string(char* dst, size_t cap, const char* src) noexcept;
bool starts_with(const char* s, const char* prefix) noexcept;
bool equals(const char* a, const char* b) noexcept;
// Parses a decimal number; returns false on any non-digit or overflow.
bool parse_u64(const char* s, size_t n, uint64_t* out) noexcept;
bool parse_hex_u64(const char* s, size_t n, uint64_t* out) noexcept;

}  // namespace panicstop::sys
