#include "snapshot/snapshot.hpp"

#include <gtest/gtest.h>

#include <dirent.h>
#include <elf.h>
#include <link.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "panicstop/mutex.hpp"
#include "panicstop/rwlock.hpp"
#include "snapshot/parked_threads.hpp"
#include "stop/emulator.hpp"
#include "support/child_process.hpp"

namespace panicstop {
namespace {

using detail::ProcessSnapshot;
using testing::ParkedThreads;

std::set<int> proc_tids() {
  std::set<int> tids;
  DIR* d = opendir("/proc/self/task");
  while (dirent* e = readdir(d))
    // An emulator's own helper tasks (qemu-user's; none natively) are no
    // threads of the program, and the snapshot leaves them out too.
    if (e->d_name[0] != '.' && !detail::is_emulator_task(std::stoi(e->d_name))) tids.insert(std::stoi(e->d_name));
  closedir(d);
  return tids;
}

size_t proc_maps_lines() {
  std::ifstream f("/proc/self/maps");
  std::string line;
  size_t n = 0;
  while (std::getline(f, line)) ++n;
  return n;
}

// The build-id from the file's section headers: a different route from the
// snapshot's (program headers in memory).
std::string file_build_id(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto* eh = reinterpret_cast<const ElfW(Ehdr)*>(bytes.data());
  auto* sh = reinterpret_cast<const ElfW(Shdr)*>(bytes.data() + eh->e_shoff);
  for (int i = 0; i < eh->e_shnum; ++i) {
    if (sh[i].sh_type != SHT_NOTE) continue;
    size_t off = sh[i].sh_offset, end = off + sh[i].sh_size;
    while (off + sizeof(ElfW(Nhdr)) <= end) {
      auto* nh = reinterpret_cast<const ElfW(Nhdr)*>(bytes.data() + off);
      size_t name = off + sizeof *nh, desc = name + ((nh->n_namesz + 3) & ~3u);
      if (nh->n_type == NT_GNU_BUILD_ID) return std::string(bytes.data() + desc, nh->n_descsz);
      off = desc + ((nh->n_descsz + 3) & ~3u);
    }
  }
  return {};
}

std::string exe_path() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf);
  return std::string(buf, n > 0 ? size_t(n) : 0);
}

const detail::SnapshotThread* find_thread(const ProcessSnapshot& s, int tid) {
  for (uint32_t i = 0; i < s.thread_count; ++i)
    if (s.threads[i].tid == tid) return &s.threads[i];
  return nullptr;
}

TEST(Snapshot, CapturesEveryThreadWithItsSlot) {
  ASSERT_TRUE(detail::reserve_snapshot());
  ParkedThreads parked(6, {testing::park_in_alpha, testing::park_in_beta, testing::park_in_gamma}, "parked");
  ASSERT_TRUE(parked.stop());
  ProcessSnapshot* s = detail::capture_snapshot();
  std::set<int> expected = proc_tids();
  parked.restart();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->pid, getpid());
  std::set<int> got;
  for (uint32_t i = 0; i < s->thread_count; ++i) got.insert(s->threads[i].tid);
  EXPECT_EQ(got, expected);
  ASSERT_GT(s->thread_count, 0u);
  // No panic: the capturing thread leads (kdb, live dump).
  EXPECT_EQ(s->threads[0].tid, gettid());
  EXPECT_TRUE(s->threads[0].is_panicking);
  for (size_t i = 0; i < parked.tids().size(); ++i) {
    const detail::SnapshotThread* t = find_thread(*s, parked.tids()[i]);
    ASSERT_NE(t, nullptr);
    EXPECT_STREQ(t->name, ("parked-" + std::to_string(i)).c_str());
    EXPECT_TRUE(t->stopped);
    ASSERT_NE(t->context, nullptr);
    EXPECT_NE(t->kernel_state, '?');
    EXPECT_LE(t->stack_lo, t->context->stack_pointer);
    EXPECT_GT(t->stack_hi, t->context->stack_pointer);
    EXPECT_GE(t->frame_count, 1u);
  }
}

TEST(Snapshot, MappingsAreSortedAndMatchProcMaps) {
  ProcessSnapshot* s = detail::capture_snapshot();
  ASSERT_NE(s, nullptr);
  size_t lines = proc_maps_lines();
  EXPECT_EQ(s->mapping_count, lines);
  for (uint32_t i = 1; i < s->mapping_count; ++i) EXPECT_LE(s->mappings[i - 1].end, s->mappings[i].start);
  bool saw_exe = false;
  for (uint32_t i = 0; i < s->mapping_count; ++i) saw_exe |= s->path(s->mappings[i].path_offset) == exe_path();
  EXPECT_TRUE(saw_exe);
}

TEST(Snapshot, FindsExecutableWithBuildIdAndTheVdso) {
  ProcessSnapshot* s = detail::capture_snapshot();
  ASSERT_NE(s, nullptr);
  const detail::SnapshotModule* exe = nullptr;
  const detail::SnapshotModule* vdso = nullptr;
  for (uint32_t i = 0; i < s->module_count; ++i) {
    if (s->modules[i].is_executable) {
      EXPECT_EQ(exe, nullptr) << "two executables";
      exe = &s->modules[i];
    }
    if (s->modules[i].is_vdso) vdso = &s->modules[i];
  }
  ASSERT_NE(exe, nullptr);
  EXPECT_EQ(s->path(exe->path_offset), exe_path());
  std::string want = file_build_id(exe_path());
  ASSERT_FALSE(want.empty()) << "test binary built without a build-id";
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(exe->build_id), exe->build_id_size), want);
  if (getauxval(AT_SYSINFO_EHDR) == 0) {  // no vDSO mapped at all (qemu-user 7.2 gives aarch64 guests none)
    EXPECT_EQ(vdso, nullptr);
    return;
  }
  ASSERT_NE(vdso, nullptr);
  EXPECT_EQ(vdso->start, getauxval(AT_SYSINFO_EHDR));
}

// The loader's own view (allowed in a test) agrees on every load bias.
TEST(Snapshot, LoadBiasesMatchTheLoader) {
  ProcessSnapshot* s = detail::capture_snapshot();
  ASSERT_NE(s, nullptr);
  struct Ctx {
    ProcessSnapshot* s;
    int checked = 0;
  } ctx{s};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* arg) {
        auto* c = static_cast<Ctx*>(arg);
        if (info->dlpi_phnum == 0) return 0;
        uintptr_t probe = info->dlpi_addr + info->dlpi_phdr[0].p_vaddr;
        for (uint32_t i = 0; i < c->s->module_count; ++i) {
          const auto& m = c->s->modules[i];
          if (probe < m.start || probe >= m.end) continue;
          EXPECT_EQ(m.load_bias, info->dlpi_addr) << c->s->path(m.path_offset);
          ++c->checked;
        }
        return 0;
      },
      &ctx);
  EXPECT_GE(ctx.checked, 3);  // at least the program, libc and the vdso
}

TEST(Snapshot, AuxvCmdlineAndComm) {
  ProcessSnapshot* s = detail::capture_snapshot();
  ASSERT_NE(s, nullptr);
  ASSERT_GE(s->auxv_words, 4u);
  bool found_phdr = false;
  for (uint32_t i = 0; i + 1 < s->auxv_words; i += 2)
    if (s->auxv[i] == AT_PHDR) found_phdr = s->auxv[i + 1] == getauxval(AT_PHDR);
  EXPECT_TRUE(found_phdr);
  std::ifstream f("/proc/self/comm");
  std::string comm;
  std::getline(f, comm);
  EXPECT_EQ(std::string(s->comm), comm);
  EXPECT_NE(std::string(s->cmdline).find("snapshot_snapshot_test"), std::string::npos) << s->cmdline;
}

TEST(Snapshot, LockWaitersNameTheOwner) {
  static Mutex held{"held-by-main"};
  held.lock();
  std::atomic<int> waiter_tid{0};
  std::thread waiter([&] {
    waiter_tid = current_tid();
    held.lock();
    held.unlock();
  });
  while (waiter_tid == 0 || testing::kernel_state(waiter_tid) != 'S') std::this_thread::yield();
  ProcessSnapshot* s = detail::capture_snapshot();
  held.unlock();
  waiter.join();
  ASSERT_NE(s, nullptr);
  const detail::SnapshotThread* t = find_thread(*s, waiter_tid);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->waiting_on, &held.lock_object());
  ASSERT_EQ(s->lock_count, 1u);
  EXPECT_EQ(s->locks[0].lock, &held.lock_object());
  EXPECT_STREQ(s->locks[0].name, "held-by-main");
  EXPECT_EQ(s->locks[0].kind, detail::LockKind::kMutex);
  EXPECT_EQ(s->locks[0].owner_tid, gettid());
}

// RwLock words: a writer's slot, or a reader count.
TEST(Snapshot, RwLockOwnerAndReaders) {
  static RwLock rw{"table"};
  for (bool shared : {false, true}) {
    if (shared)
      rw.lock_shared();
    else
      rw.lock();
    std::atomic<int> waiter_tid{0};
    std::thread waiter([&] {
      waiter_tid = current_tid();
      rw.lock();
      rw.unlock();
    });
    while (waiter_tid == 0 || testing::kernel_state(waiter_tid) != 'S') std::this_thread::yield();
    ProcessSnapshot* s = detail::capture_snapshot();
    if (shared)
      rw.unlock_shared();
    else
      rw.unlock();
    waiter.join();
    ASSERT_NE(s, nullptr);
    ASSERT_EQ(s->lock_count, 1u);
    EXPECT_EQ(s->locks[0].kind, detail::LockKind::kRwLock);
    EXPECT_STREQ(s->locks[0].name, "table");
    EXPECT_EQ(s->locks[0].owner_tid, shared ? 0 : gettid());
    EXPECT_EQ(s->locks[0].readers, shared ? 1u : 0u);
  }
}

}  // namespace
}  // namespace panicstop
