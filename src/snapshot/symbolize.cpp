#include "snapshot/symbolize.hpp"

#include <atomic>
#include <elf.h>
#include <fcntl.h>
#include <link.h>

#include "snapshot/memory.hpp"
#include "sys/format.hpp"
#include "sys/heap_sort.hpp"
#include "sys/syscall.hpp"

namespace panicstop::detail {

namespace {

struct SymbolEntry {
  uint64_t value;  // link-time address
  uint32_t size;
  uint32_t name;   // offset into the string table
};

enum class TableState : uint8_t { kUnloaded = 0, kLoaded, kFailed };

struct ModuleTable {
  TableState state;
  int fd;                 // -1 for images read from memory (the vdso)
  uintptr_t memory_base;  // the image in memory when fd < 0
  uint64_t strtab_offset, strtab_size;
  uint32_t first, count;  // the module's entries in the arena
};

constexpr size_t kArenaEntries = 2 * 1024 * 1024;  // 32 MiB of address space, backed on use
constexpr size_t kScratchBytes = 64 * 1024;
constexpr uint16_t kMaxSections = 512;

SymbolEntry* g_arena = nullptr;
ModuleTable* g_tables = nullptr;
unsigned char* g_scratch = nullptr;
std::atomic<bool> g_reserved{false};
uint32_t g_arena_used = 0;

// An ELF image to read: a file by offset, or the vdso in memory by offset.
struct Source {
  const ProcessSnapshot* snap;
  int fd;
  uintptr_t base;
  bool read(uint64_t offset, void* out, size_t len) const noexcept {
    if (fd < 0) return read_memory(*snap, base + offset, out, len);
    auto* p = static_cast<unsigned char*>(out);
    while (len > 0) {
      long r = sys::pread(fd, p, len, long(offset));
      if (r <= 0) return false;
      p += r;
      offset += uint64_t(r);
      len -= size_t(r);
    }
    return true;
  }
};

bool load_symbols(const Source& src, ModuleTable* table) noexcept {
  ElfW(Ehdr) eh;
  if (!src.read(0, &eh, sizeof eh) || eh.e_ident[EI_MAG0] != ELFMAG0 || eh.e_ident[EI_MAG1] != ELFMAG1 ||
      eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_shentsize != sizeof(ElfW(Shdr)) || eh.e_shnum == 0 ||
      eh.e_shnum > kMaxSections)
    return false;
  auto* sections = reinterpret_cast<ElfW(Shdr)*>(g_scratch);
  if (!src.read(eh.e_shoff, sections, eh.e_shnum * sizeof(ElfW(Shdr)))) return false;
  const ElfW(Shdr)* symtab = nullptr;
  for (uint16_t i = 0; i < eh.e_shnum && symtab == nullptr; ++i)
    if (sections[i].sh_type == SHT_SYMTAB) symtab = &sections[i];
  for (uint16_t i = 0; i < eh.e_shnum && symtab == nullptr; ++i)
    if (sections[i].sh_type == SHT_DYNSYM) symtab = &sections[i];
  if (symtab == nullptr || symtab->sh_link >= eh.e_shnum || symtab->sh_entsize != sizeof(ElfW(Sym))) return false;
  const ElfW(Shdr)& strtab = sections[symtab->sh_link];
  table->strtab_offset = strtab.sh_offset;
  table->strtab_size = strtab.sh_size;
  uint64_t sym_offset = symtab->sh_offset;
  uint64_t sym_count = symtab->sh_size / sizeof(ElfW(Sym));
  // The section headers are no longer needed: the scratch now holds symbols.
  auto* batch = reinterpret_cast<ElfW(Sym)*>(g_scratch);
  constexpr size_t kBatch = kScratchBytes / sizeof(ElfW(Sym));
  table->first = g_arena_used;
  for (uint64_t done = 0; done < sym_count;) {
    size_t n = sym_count - done < kBatch ? size_t(sym_count - done) : kBatch;
    if (!src.read(sym_offset + done * sizeof(ElfW(Sym)), batch, n * sizeof(ElfW(Sym)))) break;
    for (size_t i = 0; i < n; ++i) {
      const ElfW(Sym)& s = batch[i];
      unsigned type = ELF64_ST_TYPE(s.st_info);
      if ((type != STT_FUNC && type != STT_GNU_IFUNC) || s.st_shndx == SHN_UNDEF || s.st_value == 0) continue;
      if (s.st_name >= table->strtab_size || g_arena_used >= kArenaEntries) continue;
      g_arena[g_arena_used++] = SymbolEntry{s.st_value, s.st_size > UINT32_MAX ? UINT32_MAX : uint32_t(s.st_size),
                                            s.st_name};
    }
    done += n;
  }
  table->count = g_arena_used - table->first;
  sys::heap_sort(g_arena + table->first, table->count,
                 [](const SymbolEntry& x, const SymbolEntry& y) { return x.value < y.value; });
  return true;
}

ModuleTable* table_for(const ProcessSnapshot& snap, uint32_t index) noexcept {
  ModuleTable* table = &g_tables[index];
  if (table->state != TableState::kUnloaded) return table->state == TableState::kLoaded ? table : nullptr;
  table->state = TableState::kFailed;
  table->fd = -1;
  const SnapshotModule& m = snap.modules[index];
  Source src{&snap, -1, m.start};
  if (!m.is_vdso) {
    long fd = sys::openat(AT_FDCWD, snap.path(m.path_offset), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return nullptr;
    table->fd = int(fd);
    src.fd = int(fd);
  }
  table->memory_base = m.start;
  if (!load_symbols(src, table)) return nullptr;
  table->state = TableState::kLoaded;
  return table;
}

void read_name(const ProcessSnapshot& snap, const ModuleTable& table, uint32_t name, char* out, size_t cap) noexcept {
  Source src{&snap, table.fd, table.memory_base};
  uint64_t avail = table.strtab_size - name;
  size_t want = cap - 1 < avail ? cap - 1 : size_t(avail);
  if (!src.read(table.strtab_offset + name, out, want)) want = 0;
  out[want] = '\0';
}

}  // namespace

bool reserve_symbolizer() noexcept {
  if (g_reserved.load(std::memory_order_acquire)) return true;
  g_arena = static_cast<SymbolEntry*>(sys::mmap_anonymous(sizeof(SymbolEntry) * kArenaEntries, true));
  g_tables = static_cast<ModuleTable*>(sys::mmap_anonymous(sizeof(ModuleTable) * kMaxModules, true));
  g_scratch = static_cast<unsigned char*>(sys::mmap_anonymous(kScratchBytes, false));
  if (g_arena == nullptr || g_tables == nullptr || g_scratch == nullptr) return false;
  g_reserved.store(true, std::memory_order_release);
  return true;
}

void symbolizer_begin(const ProcessSnapshot& snap) noexcept {
  if (!reserve_symbolizer()) return;
  for (uint32_t i = 0; i < snap.module_count; ++i) g_tables[i] = ModuleTable{TableState::kUnloaded, -1, 0, 0, 0, 0, 0};
  g_arena_used = 0;
}

void symbolizer_end() noexcept {
  if (!g_reserved.load(std::memory_order_acquire)) return;
  for (uint32_t i = 0; i < kMaxModules; ++i) {
    if (g_tables[i].state != TableState::kUnloaded && g_tables[i].fd >= 0) sys::close(g_tables[i].fd);
    g_tables[i].state = TableState::kUnloaded;
    g_tables[i].fd = -1;
  }
}

bool symbolize(const ProcessSnapshot& snap, uintptr_t pc, bool is_return_address, SymbolInfo* out) noexcept {
  out->module = nullptr;
  out->has_name = false;
  out->name[0] = '\0';
  out->offset = 0;
  uintptr_t lookup = is_return_address && pc > 0 ? pc - 1 : pc;
  uint32_t index = 0;
  for (; index < snap.module_count; ++index)
    if (lookup >= snap.modules[index].start && lookup < snap.modules[index].end) break;
  if (index == snap.module_count) return false;
  const SnapshotModule& m = snap.modules[index];
  out->module = &m;
  out->module_offset = pc - m.load_bias;
  if (!g_reserved.load(std::memory_order_acquire)) return false;
  const ModuleTable* table = table_for(snap, index);
  if (table == nullptr || table->count == 0) return false;
  uint64_t addr = lookup - m.load_bias;
  const SymbolEntry* e = g_arena + table->first;
  // The last entry with value <= addr.
  uint32_t lo = 0, hi = table->count;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (e[mid].value <= addr)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0) return false;
  // Aliases share an address; prefer one whose size covers addr, looking back
  // over symbols at the same address only.
  uint32_t best = lo - 1;
  for (uint32_t i = lo; i-- > 0 && e[i].value == e[lo - 1].value;)
    if (addr < e[i].value + e[i].size) {
      best = i;
      break;
    }
  const SymbolEntry& s = e[best];
  if (s.size != 0 && addr >= s.value + s.size) return false;
  read_name(snap, *table, s.name, out->name, sizeof out->name);
  out->offset = pc - (m.load_bias + s.value);
  out->has_name = out->name[0] != '\0';
  return out->has_name;
}

const char* module_basename(const ProcessSnapshot& snap, const SnapshotModule& m) noexcept {
  const char* path = snap.path(m.path_offset);
  const char* base = path;
  for (const char* p = path; *p != '\0'; ++p)
    if (*p == '/') base = p + 1;
  return base;
}

}  // namespace panicstop::detail
