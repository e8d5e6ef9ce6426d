// Taking /proc away from a test child, as a sandbox or chroot does.
#pragma once

#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

namespace panicstop::testing {

// Gives the calling process a mount namespace of its own, with nothing
// propagating back to the parent's. Must run while the process has one thread
// (unsharing the mount namespace unshares the filesystem context too). As
// root a plain mount namespace; otherwise inside a new user namespace. False
// where neither is allowed.
inline bool enter_private_mount_namespace() {
  int flags = CLONE_NEWNS | (geteuid() == 0 ? 0 : CLONE_NEWUSER);
  if (unshare(flags) != 0) return false;
  return mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
}

// Mounts an empty tmpfs over /proc (any thread, once in such a namespace).
inline bool cover_proc() { return mount("none", "/proc", "tmpfs", 0, nullptr) == 0; }

}  // namespace panicstop::testing
