#include "witness/report.hpp"

#include <fcntl.h>
#include <unwind.h>

#include <atomic>
#include <new>

#include "panicstop/panic.hpp"
#include "panicstop/witness.hpp"
#include "sys/syscall.hpp"

namespace panicstop {

namespace detail {
namespace {

InternalSpinLock g_report_lock;
char g_report_buffer[16384];
alignas(sys::FixedWriter) unsigned char g_writer_storage[sizeof(sys::FixedWriter)];
std::atomic<uint64_t> g_report_count{0};

struct UnwindState {
  Stack* st;
  int skip;
};

_Unwind_Reason_Code unwind_step(struct _Unwind_Context* ctx, void* arg) {
  auto* s = static_cast<UnwindState*>(arg);
  uintptr_t ip = _Unwind_GetIP(ctx);
  if (ip == 0) return _URC_END_OF_STACK;
  if (s->skip > 0) {
    --s->skip;
    return _URC_NO_REASON;
  }
  if (s->st->depth >= kWitnessStackDepth) return _URC_END_OF_STACK;
  s->st->pc[s->st->depth++] = ip;
  return _URC_NO_REASON;
}

// The mapping of /proc/self/maps that contains addr: module basename and the
// file offset of addr. Reads the file in chunks with raw calls.
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

void capture_stack(Stack* st, int skip) noexcept {
  st->depth = 0;
  st->tid = current_tid();
  UnwindState s{st, skip + 1};  // +1: capture_stack itself
  _Unwind_Backtrace(unwind_step, &s);
}

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

void write_stack(sys::FixedWriter& w, const Stack& st) noexcept {
  if (st.depth == 0) {
    w.str("   (no stack)\n");
    return;
  }
  for (int i = 0; i < st.depth; ++i) {
    w.str("   #").udec(uint64_t(i)).ch(' ');
    write_address(w, st.pc[i]);
    w.ch('\n');
  }
}

Report::Report() noexcept {
  if (!g_report_lock.try_acquire()) return;
  w_ = new (g_writer_storage) sys::FixedWriter(g_report_buffer, sizeof g_report_buffer);
}

Report::~Report() {
  if (w_ != nullptr && !finished_) g_report_lock.release();
}

void Report::finish(const char* headline) noexcept {
  if (w_ == nullptr || finished_) return;
  finished_ = true;
  if (w_->truncated()) w_->str("\n(report truncated)\n");
  sys::write_all(2, w_->data(), w_->size());
  g_report_count.fetch_add(1, std::memory_order_relaxed);
  g_report_lock.release();
  if (witness_action() == WitnessAction::kPanic) panic("witness: %s", headline);
}

}  // namespace detail

uint64_t witness_report_count() noexcept { return detail::g_report_count.load(std::memory_order_relaxed); }

}  // namespace panicstop
