// Printing WITNESS reports (and lock-profile sites): signal-safe formatting,
// raw writes, stacks from the unwinder, addresses as module+offset. No
// allocation; one report at a time through a static buffer.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sys/format.hpp"
#include "thread/slot.hpp"
#include "witness/order_graph.hpp"

namespace panicstop::detail {

// Fills st with the calling thread's return addresses, skipping `skip` frames
// of the caller's own (the unwinder's frames are always skipped).
void capture_stack(Stack* st, int skip) noexcept;

// One "   #N 0xADDR (module+0xOFF)" line per frame.
void write_stack(sys::FixedWriter& w, const Stack& st) noexcept;

// For dump writers and kdb: appends one line per lock `slot`'s thread holds as
// WITNESS recorded it ("<indent>exclusive|shared "name" (kind, 0xADDR) @ site",
// or "waiting for ..." for the newest entry when the thread blocks on it).
// Reads the slot without synchronization: call it for the calling thread or a
// stopped one. Writes nothing for a slot whose list belongs to an earlier
// thread, or when witness is not built in or off. Returns the locks written.
size_t write_held_locks(sys::FixedWriter& w, const ThreadSlot& slot, const char* indent) noexcept;

// A report under construction. begin() returns nullptr if another report of
// this thread is being written (re-entry from a signal handler). finish()
// writes it to stderr, counts it, and panics if the action says so, with
// `headline` as the panic message.
class Report {
 public:
  Report() noexcept;
  ~Report();
  Report(const Report&) = delete;
  Report& operator=(const Report&) = delete;
  bool ok() const noexcept { return w_ != nullptr; }
  sys::FixedWriter& w() noexcept { return *w_; }
  void finish(const char* headline) noexcept;

 private:
  sys::FixedWriter* w_ = nullptr;
  bool finished_ = false;
};

}  // namespace panicstop::detail
