// The PANICSTOP note's text, from a synthetic snapshot: every record of the
// format documented in dump/elf_core.hpp, with names and messages cleaned so
// that key=value parsing stays simple.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

#include "dump/core_sink.hpp"
#include "dump/elf_notes.hpp"
#include "panicstop/lock_object.hpp"

namespace panicstop::detail::core {
namespace {

std::string render(const CrashRecord& snap) {
  int fd = memfd_create("panicstop-note", 0);
  EXPECT_GE(fd, 0);
  unsigned char buf[64];  // small on purpose: lines cross buffer boundaries
  CoreSink sink(fd, buf, sizeof buf);
  emit_panicstop_text(snap, sink);
  EXPECT_TRUE(sink.flush());
  CoreSink counter(-1, nullptr, 0);
  emit_panicstop_text(snap, counter);
  EXPECT_EQ(counter.offset(), sink.offset()) << "the counting pass must measure what the writing pass writes";
  std::string text(size_t(sink.offset()), '\0');
  EXPECT_EQ(pread(fd, text.data(), text.size(), 0), ssize_t(text.size()));
  close(fd);
  return text;
}

TEST(PanicstopNote, HasEveryRecord) {
  static LockObject cache("cache lock", LockKind::kMutex, 0);
  static LockObject table("table", LockKind::kSpinMutex, 0);
  SnapshotThread threads[4];
  threads[0].tid = 100;
  std::strcpy(threads[0].name, "main thread");
  threads[0].is_panicking = true;
  threads[1].tid = 101;
  std::strcpy(threads[1].name, "worker\n1");
  threads[1].stopped = true;
  threads[1].waiting_on = &cache;
  threads[1].wait_mode = WaitMode::kExclusive;
  threads[2].tid = 102;
  std::strcpy(threads[2].name, "io");
  threads[2].stopped = true;
  threads[2].panic_signal = 11;
  threads[2].panic_message = "second fault";
  threads[3].tid = 103;
  std::strcpy(threads[3].name, "spinner");
  SnapshotLock locks[2];
  locks[0].lock = &cache;
  locks[0].name = cache.name;
  locks[0].kind = LockKind::kMutex;
  locks[0].owner_tid = 102;
  locks[1].lock = &table;
  locks[1].name = table.name;
  locks[1].kind = LockKind::kSpinMutex;

  ProcessSnapshot snap;
  snap.pid = 100;
  snap.panicking_tid = 100;
  snap.thread_count = 4;
  snap.threads = threads;
  snap.lock_count = 2;
  snap.locks = locks;

  static CrashRecord rec;
  rec.snapshot = &snap;
  rec.facts.signo = 6;
  rec.facts.message = "bad state:\nline two";
  rec.facts.nested[0].tid = 100;
  rec.facts.nested[0].signo = 11;
  rec.facts.nested[0].step = 3;
  std::strcpy(rec.facts.nested[0].message, "fault in hook");
  rec.facts.nested_count = 1;

  std::string text = render(rec);

  char cache_addr[32], table_addr[32];
  std::snprintf(cache_addr, sizeof cache_addr, "0x%lx", reinterpret_cast<unsigned long>(&cache));
  std::snprintf(table_addr, sizeof table_addr, "0x%lx", reinterpret_cast<unsigned long>(&table));
  std::string expected = std::string() +
                         "version=1\n"
                         "message=bad state: line two\n"
                         "panicking_tid=100\n"
                         "signal=6\n"
                         "thread=100 name=main_thread state=panicking\n"
                         "thread=101 name=worker_1 state=stopped\n"
                         "thread=102 name=io state=stopped\n"
                         "thread=103 name=spinner state=not_stopped\n"
                         "lock=" + cache_addr + " kind=mutex name=cache_lock owner=102 readers=0\n"
                         "lock=" + table_addr + " kind=spin mutex name=table owner=0 readers=0\n"
                         "wait=101 lock=" + cache_addr + " mode=exclusive\n"
                         "nested=100 signal=11 step=3 message=fault in hook\n"
                         "nested=102 signal=11 step=0 message=second fault\n"
                         "not_stopped=103\n";
  EXPECT_EQ(text, expected);
}

TEST(PanicstopNote, EmptySnapshotStillHasTheHeader) {
  ProcessSnapshot snap;
  static CrashRecord empty;
  empty.snapshot = &snap;
  EXPECT_EQ(render(empty), "version=1\nmessage=\npanicking_tid=0\nsignal=0\n");
}

}  // namespace
}  // namespace panicstop::detail::core
