#include "lockclass/site.hpp"

#include <fcntl.h>

#include "sys/syscall.hpp"

namespace panicstop::detail {

namespace {

// The mapping of /proc/self/maps that contains addr: module basename and the
// file offset of addr. Reads the file in chunks with raw calls.
//
// By absolute name, not through stop/proc_dir's proc_open(): lockclass sits
// below stop, so it cannot reach the descriptor kept from install. What it
// costs is small: this names the module of a return-address site in WITNESS's
// and the lock profile's reports, written by a live thread outside the panic
// path. The crash report's held-lock sites are symbolized from the
// snapshot's own mapping table instead. With /proc covered, a site here
// prints its bare address.
bool find_module(uintptr_t addr, char* name, size_t name_cap, uintptr_t* offset) noexcept {
  long fd = sys::openat(AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char chunk[4096];
  char line[600];
  size_t len = 0;
  bool found = false;
  for (;;) {
    long n = sys::read(int(fd), chunk, sizeof chunk);
    if (n <= 0) break;
    for (long i = 0; i < n && !found; ++i) {
      char c = chunk[i];
      if (c != '\n') {
        if (len < sizeof line - 1) line[len++] = c;
        continue;
      }
      line[len] = '\0';
      // start-end perms offset dev inode path
      const char* p = line;
      const char* dash = p;
      while (*dash != '\0' && *dash != '-') ++dash;
      const char* sp = dash;
      while (*sp != '\0' && *sp != ' ') ++sp;
      uint64_t start = 0, end = 0;
      if (*dash == '-' && sys::parse_hex_u64(p, size_t(dash - p), &start) &&
          sys::parse_hex_u64(dash + 1, size_t(sp - dash - 1), &end) && addr >= start && addr < end) {
        const char* f = sp + 1;  // perms
        while (*f != '\0' && *f != ' ') ++f;
        const char* off = *f == ' ' ? f + 1 : f;
        const char* off_end = off;
        while (*off_end != '\0' && *off_end != ' ') ++off_end;
        uint64_t file_off = 0;
        sys::parse_hex_u64(off, size_t(off_end - off), &file_off);
        const char* path = off_end;
        for (int field = 0; field < 2 && *path != '\0'; ++field) {  // dev, inode
          while (*path == ' ') ++path;
          while (*path != '\0' && *path != ' ') ++path;
        }
        while (*path == ' ') ++path;
        const char* base = path;
        for (const char* q = path; *q != '\0'; ++q)
          if (*q == '/') base = q + 1;
        sys::copy_string(name, name_cap, *base != '\0' ? base : "anon");
        *offset = uintptr_t(addr - start + file_off);
        found = true;
      }
      len = 0;
    }
    if (found) break;
  }
  sys::close(int(fd));
  return found;
}

}  // namespace

void write_address(sys::FixedWriter& w, uintptr_t addr) noexcept {
  w.addr(addr);
  char name[128];
  uintptr_t off = 0;
  if (find_module(addr, name, sizeof name, &off)) w.str(" (").str(name).str("+0x").hex(off).ch(')');
}

void write_site(sys::FixedWriter& w, const Site& site) noexcept {
  if (site.file != nullptr) {
    w.str(site.file).ch(':').udec(site.line);
  } else if (site.return_address != 0) {
    write_address(w, site.return_address);
  } else {
    w.str("(unknown site)");
  }
}

}  // namespace panicstop::detail
