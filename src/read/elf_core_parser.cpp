#include "read/elf_core_parser.hpp"

#include <elf.h>

#include <cstring>

#include "read/panicstop_note.hpp"

namespace panicstop::read {
namespace {

// Register note layouts (docs/DESIGN.md, section 6): pr_reg starts at byte 112 of NT_PRSTATUS.
constexpr size_t kPrstatusPidOffset = 32;
constexpr size_t kPrstatusCursigOffset = 12;
constexpr size_t kPrstatusRegsOffset = 112;
constexpr size_t kPrstatusSizeX86_64 = 336;
constexpr size_t kPrstatusSizeAarch64 = 392;
constexpr size_t kX86RipIndex = 16, kX86RspIndex = 19;         // struct user_regs_struct
constexpr size_t kAarch64SpIndex = 31, kAarch64PcIndex = 32;   // struct user_pt_regs
constexpr size_t kPrpsinfoSize = 136;
constexpr size_t kPrpsinfoPidOffset = 24, kPrpsinfoFnameOffset = 40, kPrpsinfoArgsOffset = 56;
// A core with more notes than this is not something a writer produced.
constexpr size_t kMaxNotes = 1u << 22;

class Image {
 public:
  explicit Image(std::span<const unsigned char> data) : data_(data) {}
  size_t size() const { return data_.size(); }
  // Does [offset, offset + length) lie inside the image? Overflow-safe.
  bool contains(uint64_t offset, uint64_t length) const {
    return offset <= data_.size() && length <= data_.size() - offset;
  }
  template <typename T>
  T read(uint64_t offset) const {
    T out;
    std::memcpy(&out, data_.data() + offset, sizeof out);
    return out;
  }
  const unsigned char* at(uint64_t offset) const { return data_.data() + offset; }

 private:
  std::span<const unsigned char> data_;
};

std::string num(uint64_t v) { return std::to_string(v); }

std::string hex(uint64_t v) {
  static const char digits[] = "0123456789abcdef";
  std::string s;
  do {
    s.insert(s.begin(), digits[v & 15]);
    v >>= 4;
  } while (v != 0);
  return "0x" + s;
}

std::string c_string(const unsigned char* p, size_t max) {
  size_t n = 0;
  while (n < max && p[n] != 0) ++n;
  return std::string(reinterpret_cast<const char*>(p), n);
}

std::string type_name(uint16_t type) {
  switch (type) {
    case ET_NONE: return "ET_NONE";
    case ET_REL: return "ET_REL (object file)";
    case ET_EXEC: return "ET_EXEC (executable)";
    case ET_DYN: return "ET_DYN (shared object or PIE)";
    default: return "type " + num(type);
  }
}

struct NoteView {
  std::string_view name;
  uint32_t type;
  uint64_t desc_offset;  // in the image
  uint64_t desc_size;
};

// Calls fn(note) for each note in [offset, offset + size), checking every size.
template <typename Fn>
void for_each_note(const Image& image, uint64_t offset, uint64_t size, uint64_t align, size_t segment, size_t& note_count,
                   Fn&& fn) {
  auto round_up = [align](uint64_t v) { return (v + align - 1) & ~(align - 1); };
  uint64_t pos = 0;
  while (pos < size) {
    std::string where = "note " + num(note_count) + " in PT_NOTE segment " + num(segment);
    if (++note_count > kMaxNotes) throw ReadError("more than " + num(kMaxNotes) + " notes");
    if (size - pos < sizeof(Elf64_Nhdr)) {
      throw ReadError(where + ": header truncated (" + num(size - pos) + " of 12 bytes left in the segment)");
    }
    Elf64_Nhdr header = image.read<Elf64_Nhdr>(offset + pos);
    pos += sizeof header;
    uint64_t name_space = round_up(header.n_namesz);
    if (name_space > size - pos) {
      throw ReadError(where + ": name size " + num(header.n_namesz) + " runs past the end of the segment");
    }
    std::string_view name(reinterpret_cast<const char*>(image.at(offset + pos)), header.n_namesz);
    while (!name.empty() && name.back() == '\0') name.remove_suffix(1);
    pos += name_space;
    where += " (" + std::string(name.substr(0, 32)) + " type " + num(header.n_type) + ")";
    if (header.n_descsz > size - pos) {
      throw ReadError(where + ": descriptor size " + num(header.n_descsz) + " runs past the end of the segment (" +
                      num(size - pos) + " bytes left)");
    }
    fn(NoteView{name, header.n_type, offset + pos, header.n_descsz}, where);
    uint64_t desc_space = round_up(header.n_descsz);
    pos += desc_space > size - pos ? size - pos : desc_space;
  }
}

void read_prstatus(const Image& image, const NoteView& note, const std::string& where, CoreFile& core) {
  size_t expected = core.machine == EM_X86_64 ? kPrstatusSizeX86_64 : kPrstatusSizeAarch64;
  if (note.desc_size != expected) {
    throw ReadError(where + ": NT_PRSTATUS has " + num(note.desc_size) + " bytes, expected " + num(expected));
  }
  CoreThread t;
  t.tid = image.read<int32_t>(note.desc_offset + kPrstatusPidOffset);
  t.signal = image.read<int16_t>(note.desc_offset + kPrstatusCursigOffset);
  uint64_t regs = note.desc_offset + kPrstatusRegsOffset;
  size_t pc_index = core.machine == EM_X86_64 ? kX86RipIndex : kAarch64PcIndex;
  size_t sp_index = core.machine == EM_X86_64 ? kX86RspIndex : kAarch64SpIndex;
  t.pc = image.read<uint64_t>(regs + 8 * pc_index);
  t.sp = image.read<uint64_t>(regs + 8 * sp_index);
  core.threads.push_back(t);
}

void read_nt_file(const Image& image, const NoteView& note, const std::string& where, CoreFile& core) {
  if (note.desc_size < 16) throw ReadError(where + ": NT_FILE shorter than its 16-byte header");
  uint64_t count = image.read<uint64_t>(note.desc_offset);
  uint64_t table_bytes_left = note.desc_size - 16;
  if (count > table_bytes_left / 24) {
    throw ReadError(where + ": NT_FILE claims " + num(count) + " entries, which do not fit in its " +
                    num(note.desc_size) + " bytes");
  }
  uint64_t names = note.desc_offset + 16 + count * 24;
  uint64_t names_end = note.desc_offset + note.desc_size;
  for (uint64_t i = 0; i < count; ++i) {
    CoreFileMapping m;
    uint64_t entry = note.desc_offset + 16 + i * 24;
    m.start = image.read<uint64_t>(entry);
    m.end = image.read<uint64_t>(entry + 8);
    m.page_offset = image.read<uint64_t>(entry + 16);
    if (m.end < m.start) throw ReadError(where + ": NT_FILE entry " + num(i) + " ends before it starts");
    const void* nul = names < names_end ? std::memchr(image.at(names), 0, names_end - names) : nullptr;
    if (nul == nullptr) throw ReadError(where + ": NT_FILE names run past the end of the note (entry " + num(i) + ")");
    size_t length = static_cast<const unsigned char*>(nul) - image.at(names);
    m.path.assign(reinterpret_cast<const char*>(image.at(names)), length);
    names += length + 1;
    core.files.push_back(std::move(m));
  }
}

void read_note(const Image& image, const NoteView& note, const std::string& where, CoreFile& core) {
  if (note.name == "CORE") {
    switch (note.type) {
      case NT_PRSTATUS:
        read_prstatus(image, note, where, core);
        break;
      case NT_PRPSINFO:
        if (note.desc_size != kPrpsinfoSize) {
          throw ReadError(where + ": NT_PRPSINFO has " + num(note.desc_size) + " bytes, expected 136");
        }
        core.has_prpsinfo = true;
        core.pid = image.read<int32_t>(note.desc_offset + kPrpsinfoPidOffset);
        core.command = c_string(image.at(note.desc_offset + kPrpsinfoFnameOffset), 16);
        core.arguments = c_string(image.at(note.desc_offset + kPrpsinfoArgsOffset), 80);
        break;
      case NT_SIGINFO:
        if (note.desc_size < 4) throw ReadError(where + ": NT_SIGINFO shorter than 4 bytes");
        core.siginfo_signal = image.read<int32_t>(note.desc_offset);
        break;
      case NT_AUXV:
        core.auxv_entries = note.desc_size / 16;
        break;
      case NT_FILE:
        read_nt_file(image, note, where, core);
        break;
      default:
        break;
    }
  } else if (note.name == kPanicstopNoteName && note.type == kPanicstopNoteType) {
    core.panicstop_note = std::string(reinterpret_cast<const char*>(image.at(note.desc_offset)), note.desc_size);
  }
}

uint64_t program_header_count(const Image& image, const Elf64_Ehdr& eh) {
  if (eh.e_phnum != PN_XNUM) return eh.e_phnum;
  // Extended numbering: the real count is section header 0's sh_info.
  if (eh.e_shoff == 0 || eh.e_shentsize != sizeof(Elf64_Shdr) || !image.contains(eh.e_shoff, sizeof(Elf64_Shdr))) {
    throw ReadError("program header count is extended (PN_XNUM) but section header 0 at offset " + num(eh.e_shoff) +
                    " is not in the file");
  }
  return image.read<Elf64_Shdr>(eh.e_shoff).sh_info;
}

}  // namespace

bool looks_like_elf(std::string_view data) noexcept {
  return data.size() >= SELFMAG && std::memcmp(data.data(), ELFMAG, SELFMAG) == 0;
}

CoreFile parse_elf_core(std::span<const unsigned char> data) {
  Image image(data);
  if (data.empty()) throw ReadError("empty file");
  if (data.size() < SELFMAG || std::memcmp(data.data(), ELFMAG, SELFMAG) != 0) throw ReadError("not an ELF file");
  if (data.size() < EI_NIDENT) throw ReadError("ELF header truncated: " + num(data.size()) + " of 64 bytes");
  if (data[EI_CLASS] != ELFCLASS64) {
    throw ReadError(std::string(data[EI_CLASS] == ELFCLASS32 ? "32-bit ELF file" : "ELF class " + num(data[EI_CLASS])) +
                    ": this reader knows 64-bit cores only");
  }
  if (data[EI_DATA] != ELFDATA2LSB) throw ReadError("big-endian or unknown byte order (EI_DATA " + num(data[EI_DATA]) + ")");
  if (data[EI_VERSION] != EV_CURRENT) throw ReadError("ELF version " + num(data[EI_VERSION]) + " is not 1");
  if (data.size() < sizeof(Elf64_Ehdr)) throw ReadError("ELF header truncated: " + num(data.size()) + " of 64 bytes");
  Elf64_Ehdr eh = image.read<Elf64_Ehdr>(0);
  if (eh.e_type != ET_CORE) throw ReadError("not a core file: ELF " + type_name(eh.e_type));
  if (eh.e_machine != EM_X86_64 && eh.e_machine != EM_AARCH64) {
    throw ReadError("core of machine " + num(eh.e_machine) + ": this reader knows x86_64 and aarch64");
  }
  if (eh.e_ehsize < sizeof(Elf64_Ehdr)) throw ReadError("e_ehsize " + num(eh.e_ehsize) + " is smaller than 64");

  CoreFile core;
  core.machine = eh.e_machine;
  uint64_t phnum = program_header_count(image, eh);
  if (phnum == 0) throw ReadError("no program headers: a core needs at least a PT_NOTE segment");
  if (eh.e_phentsize != sizeof(Elf64_Phdr)) {
    throw ReadError("program header entry size " + num(eh.e_phentsize) + ", expected 56");
  }
  if (phnum > image.size() / sizeof(Elf64_Phdr) || !image.contains(eh.e_phoff, phnum * sizeof(Elf64_Phdr))) {
    throw ReadError(num(phnum) + " program headers at offset " + num(eh.e_phoff) + " run past the end of the file (" +
                    num(image.size()) + " bytes)");
  }

  size_t note_segments = 0, note_count = 0;
  for (uint64_t i = 0; i < phnum; ++i) {
    Elf64_Phdr ph = image.read<Elf64_Phdr>(eh.e_phoff + i * sizeof(Elf64_Phdr));
    if (ph.p_type == PT_LOAD) {
      ++core.load_segments;
      if (!image.contains(ph.p_offset, ph.p_filesz)) {
        throw ReadError("truncated core: PT_LOAD segment " + num(i) + " (" + hex(ph.p_vaddr) + ", offset " +
                        num(ph.p_offset) + ", " + num(ph.p_filesz) + " bytes) runs past the end of the file (" +
                        num(image.size()) + " bytes)");
      }
      if (ph.p_filesz > ph.p_memsz) {
        throw ReadError("PT_LOAD segment " + num(i) + " has more file bytes (" + num(ph.p_filesz) + ") than memory (" +
                        num(ph.p_memsz) + ")");
      }
    } else if (ph.p_type == PT_NOTE) {
      ++note_segments;
      if (!image.contains(ph.p_offset, ph.p_filesz)) {
        throw ReadError("PT_NOTE segment " + num(i) + " (offset " + num(ph.p_offset) + ", " + num(ph.p_filesz) +
                        " bytes) runs past the end of the file (" + num(image.size()) + " bytes)");
      }
      uint64_t align = ph.p_align == 8 ? 8 : 4;
      for_each_note(image, ph.p_offset, ph.p_filesz, align, i, note_count,
                    [&](const NoteView& note, const std::string& where) { read_note(image, note, where, core); });
    }
  }
  if (note_segments == 0) throw ReadError("no PT_NOTE segment: nothing to show");
  if (core.threads.empty()) throw ReadError("no NT_PRSTATUS note: the core has no threads");
  return core;
}

Report report_from_core(const CoreFile& core) {
  Report report;
  report.kind = Report::Kind::kCore;
  report.pid = core.pid;
  report.executable = !core.files.empty() ? core.files.front().path : core.command;
  report.signal = core.siginfo_signal != 0 ? core.siginfo_signal : core.threads.front().signal;
  for (const CoreThread& ct : core.threads) {
    Thread t;
    t.tid = ct.tid;
    t.signal = ct.signal;
    t.has_registers = true;
    t.pc = ct.pc;
    t.sp = ct.sp;
    report.threads.push_back(t);
  }
  if (core.panicstop_note) {
    apply_panicstop_note(*core.panicstop_note, report);
  } else {
    report.panicking_tid = core.threads.front().tid;
    report.message = "no panicstop note: core of " + std::to_string(core.pid != 0 ? core.pid : core.threads.front().tid) +
                     " (signal " + std::to_string(report.signal) + ")";
    if (!core.command.empty()) report.threads.front().name = core.command;
  }
  return report;
}

}  // namespace panicstop::read
