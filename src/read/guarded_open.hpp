// The reader never blocks opening a file a dump names. libdw opens module
// paths it finds in a core (the NT_FILE table, the loader's link_map) with a
// plain open(O_RDONLY), which waits forever on a FIFO; it offers no hook for
// that. So the reader's program defines open() (it takes libdw's calls, which
// go through the PLT): inside a GuardedOpens scope every open is made with
// O_NONBLOCK, and anything but a regular file or a directory fails with
// ENXIO, as if it were not there.
#pragma once

#include <string>

namespace panicstop::read {

class GuardedOpens {
 public:
  GuardedOpens() noexcept;
  ~GuardedOpens();
  GuardedOpens(const GuardedOpens&) = delete;
  GuardedOpens& operator=(const GuardedOpens&) = delete;
};

// Opens path for reading without blocking; -1 with errno ENXIO for anything
// that is not a regular file.
int open_regular_file(const std::string& path) noexcept;

}  // namespace panicstop::read
