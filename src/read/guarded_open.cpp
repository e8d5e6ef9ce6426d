// guarded_open.hpp. This file defines the C library's open(): it includes
// no header that declares it, so that no fortified inline version clashes.
#undef _FORTIFY_SOURCE
#include "read/guarded_open.hpp"

#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>

// From <fcntl.h>, which this file must not include.
#ifndef O_NONBLOCK
#define O_NONBLOCK 04000
#endif
#ifndef O_CREAT
#define O_CREAT 0100
#endif
#ifndef O_TMPFILE
#define O_TMPFILE (020000000 | 0200000)
#endif
#ifndef O_CLOEXEC
#define O_CLOEXEC 02000000
#endif
#ifndef AT_FDCWD
#define AT_FDCWD -100
#endif
#ifndef F_GETFL
#define F_GETFL 3
#define F_SETFL 4
#endif

namespace panicstop::read {
namespace {

thread_local int t_guarded = 0;

int raw_open(const char* path, int flags, unsigned mode) noexcept {
  return int(syscall(SYS_openat, AT_FDCWD, path, flags, mode));
}

int guarded_open(const char* path, int flags, unsigned mode, bool directories_too) noexcept {
  int fd = raw_open(path, flags | O_NONBLOCK, mode);
  if (fd < 0) return fd;
  struct stat st {};
  if (fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || (directories_too && S_ISDIR(st.st_mode)))) {
    close(fd);
    errno = ENXIO;
    return -1;
  }
  if ((flags & O_NONBLOCK) == 0) syscall(SYS_fcntl, fd, F_SETFL, long(flags & ~O_NONBLOCK & ~O_CLOEXEC));
  return fd;
}

}  // namespace

GuardedOpens::GuardedOpens() noexcept { ++t_guarded; }
GuardedOpens::~GuardedOpens() { --t_guarded; }

int open_regular_file(const std::string& path) noexcept {
  return guarded_open(path.c_str(), O_CLOEXEC, 0, false);
}

}  // namespace panicstop::read

extern "C" __attribute__((visibility("default"))) int open(const char* path, int flags, ...) {
  unsigned mode = 0;
  if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, unsigned);
    va_end(ap);
  }
  if (panicstop::read::t_guarded == 0) return panicstop::read::raw_open(path, flags, mode);
  return panicstop::read::guarded_open(path, flags, mode, true);
}
