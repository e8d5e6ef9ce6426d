// The composition root: install() sets up each layer, lowest first. Only this
// file knows every layer; the layers do not know each other's setup.
#include <pthread.h>

#include <atomic>

#include "dump/dump_step.hpp"
#include "dump/upload_step.hpp"
#include "dump/stale_dumps.hpp"
#include "kdb/kdb_setup.hpp"
#include "panic/panic_internal.hpp"
#include "panicstop/panic.hpp"
#include "stop/stop.hpp"

namespace panicstop {

namespace {

// fork()'s child handler for what install() sets up (the panic's kill
// timer, the stop machinery and kdb); the thread and lock layers register their own when the library
// loads, and glibc runs those first. The child is a process of its own from
// here on (daemons and prefork servers fork without exec). In the child of a
// multithreaded parent only async-signal-safe calls are allowed, which every
// step keeps to.
void after_fork_in_child() noexcept {
  detail::panic_after_fork();
  detail::reset_stop_after_fork();
  detail::kdb_after_fork();
}

}  // namespace

bool install() noexcept {
  // Dumps first: the snapshot's storage is reserved before any handler that
  // could need it is armed.
  detail::register_dump_step();
  detail::setup_upload();
  // Tunables, slots, alternate stacks, stop and fatal-signal handlers.
  if (!detail::install_panic()) return false;
  // With the tunables read: the dump directory is known.
  detail::remove_stale_dump_files();
  static std::atomic<bool> fork_handler{false};
  if (!fork_handler.exchange(true)) pthread_atfork(nullptr, nullptr, after_fork_in_child);
  // kdb's triggers last: a request may arrive as soon as they exist.
  return detail::install_kdb();
}

}  // namespace panicstop
