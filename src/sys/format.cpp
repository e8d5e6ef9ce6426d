#include "sys/format.hpp"

#include "sys/syscall.hpp"

namespace panicstop::sys {

FixedWriter& FixedWriter::str(const char* s, size_t n) noexcept {
  if (cap_ == 0) return *this;
  for (size_t i = 0; i < n; ++i) {
    if (len_ + 1 >= cap_) {
      truncated_ = true;
      break;
    }
    buf_[len_++] = s[i];
  }
  buf_[len_] = '\0';
  return *this;
}

FixedWriter& FixedWriter::str(const char* s) noexcept {
  if (s == nullptr) s = "(null)";
  return str(s, bounded_strlen(s, ~size_t(0)));
}

FixedWriter& FixedWriter::ch(char c) noexcept { return str(&c, 1); }

FixedWriter& FixedWriter::escaped(const char* s, size_t max) noexcept {
  if (s == nullptr) return str("(null)");
  static const char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < max && s[i] != '\0' && !truncated_; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    char pair = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : c == '\\' ? '\\' : '\0';
    char esc[4];
    size_t n = 0;
    if (pair != '\0') {
      esc[n++] = '\\';
      esc[n++] = pair;
    } else if (c < 0x20 || c == 0x7f) {
      esc[n++] = '\\';
      esc[n++] = 'x';
      esc[n++] = kHex[c >> 4];
      esc[n++] = kHex[c & 15];
    } else {
      esc[n++] = char(c);
    }
    // An escape is written whole or not at all: a cut one would read as
    // different text.
    if (len_ + n >= cap_) {
      truncated_ = true;
      break;
    }
    str(esc, n);
  }
  return *this;
}

FixedWriter& FixedWriter::udec(uint64_t v, int width, char pad) noexcept {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = char('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (int i = n; i < width; ++i) ch(pad);
  while (n > 0) ch(tmp[--n]);
  return *this;
}

FixedWriter& FixedWriter::dec(int64_t v) noexcept {
  if (v < 0) {
    ch('-');
    return udec(uint64_t(0) - uint64_t(v));
  }
  return udec(uint64_t(v));
}

FixedWriter& FixedWriter::hex(uint64_t v, int width) noexcept {
  static const char digits[] = "0123456789abcdef";
  char tmp[16];
  int n = 0;
  do {
    tmp[n++] = digits[v & 15];
    v >>= 4;
  } while (v != 0);
  for (int i = n; i < width; ++i) ch('0');
  while (n > 0) ch(tmp[--n]);
  return *this;
}

FixedWriter& FixedWriter::vformat(const char* fmt, va_list ap) noexcept {
  if (fmt == nullptr) return str("(null format)");
  for (const char* p = fmt; *p != '\0'; ++p) {
    if (*p != '%') {
      ch(*p);
      continue;
    }
    const char* start = p++;
    bool left = false, zero = false;
    for (;; ++p) {
      if (*p == '-') left = true;
      else if (*p == '0') zero = true;
      else if (*p == ' ' || *p == '+' || *p == '#') continue;
      else break;
    }
    int width = 0;
    if (*p == '*') {
      width = va_arg(ap, int);
      ++p;
    } else {
      while (*p >= '0' && *p <= '9') width = width * 10 + (*p++ - '0');
    }
    int precision = -1;
    if (*p == '.') {
      ++p;
      precision = 0;
      if (*p == '*') {
        precision = va_arg(ap, int);
        ++p;
      } else {
        while (*p >= '0' && *p <= '9') precision = precision * 10 + (*p++ - '0');
      }
    }
    int longs = 0;
    bool size_t_len = false;
    for (;; ++p) {
      if (*p == 'l') ++longs;
      else if (*p == 'z' || *p == 'j' || *p == 't') size_t_len = true;
      else if (*p == 'h') continue;
      else break;
    }
    char tmp[32];
    FixedWriter t(tmp, sizeof tmp);
    const char* out = tmp;
    size_t out_len = 0;
    switch (*p) {
      case '%':
        ch('%');
        continue;
      case 'c':
        tmp[0] = char(va_arg(ap, int));
        out_len = 1;
        break;
      case 's': {
        out = va_arg(ap, const char*);
        if (out == nullptr) out = "(null)";
        out_len = precision >= 0 ? bounded_strlen(out, size_t(precision)) : bounded_strlen(out, ~size_t(0));
        break;
      }
      case 'd':
      case 'i': {
        int64_t v = (longs || size_t_len) ? va_arg(ap, long) : va_arg(ap, int);
        t.dec(v);
        out_len = t.size();
        break;
      }
      case 'u':
      case 'x':
      case 'X': {
        uint64_t v = (longs || size_t_len) ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
        if (*p == 'u') t.udec(v);
        else t.hex(v);
        if (*p == 'X')
          for (size_t i = 0; i < t.size(); ++i)
            if (tmp[i] >= 'a' && tmp[i] <= 'f') tmp[i] = char(tmp[i] - 32);
        out_len = t.size();
        break;
      }
      case 'p':
        t.addr(reinterpret_cast<uintptr_t>(va_arg(ap, void*)));
        out_len = t.size();
        break;
      default:
        // Unknown (including floating point, which the crash path does not
        // format): print the directive verbatim so nothing is silently lost.
        str(start, size_t(p - start) + (*p ? 1 : 0));
        if (*p == '\0') return *this;
        continue;
    }
    int padding = width > int(out_len) ? width - int(out_len) : 0;
    if (!left) {
      // Zero padding goes after a minus sign.
      if (zero && out_len > 0 && out[0] == '-' && *p != 's' && *p != 'c') {
        ch('-');
        ++out;
        --out_len;
      }
      for (int i = 0; i < padding; ++i) ch(zero && *p != 's' && *p != 'c' ? '0' : ' ');
    }
    str(out, out_len);
    if (left)
      for (int i = 0; i < padding; ++i) ch(' ');
  }
  return *this;
}

FixedWriter& FixedWriter::format(const char* fmt, ...) noexcept {
  va_list ap;
  va_start(ap, fmt);
  vformat(fmt, ap);
  va_end(ap);
  return *this;
}

size_t vformat(char* buf, size_t cap, const char* fmt, va_list ap) noexcept {
  FixedWriter w(buf, cap);
  w.vformat(fmt, ap);
  return w.size();
}

size_t vformat_line(char* buf, size_t cap, const char* fmt, va_list ap) noexcept {
  if (cap == 0) return 0;
  size_t n = vformat(buf, cap, fmt, ap);  // at most cap-1: room for the newline
  buf[n++] = '\n';
  return n;
}

bool write_line(int fd, const char* fmt, ...) noexcept {
  char line[kLineMax];
  va_list ap;
  va_start(ap, fmt);
  size_t n = vformat_line(line, sizeof line, fmt, ap);
  va_end(ap);
  // The crash path's lines to stderr (kdb's panic debugger among them) must
  // not block on a pipe nobody reads.
  if (fd == 2) return write_stderr(line, n);
  return send_all(fd, line, n);
}

size_t format(char* buf, size_t cap, const char* fmt, ...) noexcept {
  va_list ap;
  va_start(ap, fmt);
  size_t n = vformat(buf, cap, fmt, ap);
  va_end(ap);
  return n;
}

size_t bounded_strlen(const char* s, size_t max) noexcept {
  size_t n = 0;
  while (n < max && s[n] != '\0') ++n;
  return n;
}

size_t copy_string(char* dst, size_t cap, const char* src) noexcept {
  if (cap == 0) return 0;
  size_t n = 0;
  if (src != nullptr)
    while (n + 1 < cap && src[n] != '\0') {
      dst[n] = src[n];
      ++n;
    }
  dst[n] = '\0';
  return n;
}

bool starts_with(const char* s, const char* prefix) noexcept {
  while (*prefix != '\0')
    if (*s++ != *prefix++) return false;
  return true;
}

bool equals(const char* a, const char* b) noexcept {
  while (*a != '\0' && *a == *b) {
    ++a;
    ++b;
  }
  return *a == *b;
}

bool parse_u64(const char* s, size_t n, uint64_t* out) noexcept {
  if (n == 0) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    uint64_t d = uint64_t(s[i] - '0');
    if (v > (~uint64_t(0) - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

bool parse_hex_u64(const char* s, size_t n, uint64_t* out) noexcept {
  if (n == 0 || n > 16) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[i];
    uint64_t d;
    if (c >= '0' && c <= '9') d = uint64_t(c - '0');
    else if (c >= 'a' && c <= 'f') d = uint64_t(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') d = uint64_t(c - 'A' + 10);
    else return false;
    v = (v << 4) | d;
  }
  *out = v;
  return true;
}

}  // namespace panicstop::sys
