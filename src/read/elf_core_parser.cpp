#include "read/elf_core_parser.hpp"

#include <elf.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>

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

// Calls fn(note) for each note in [offset, offset + size), checking every
// size. Only the first `present` bytes of the segment are in the file
// (present < size for a truncated file): a note that fits the segment but
// not those bytes ends the walk, and false is returned; a note that does not
// fit the segment is an error either way.
template <typename Fn>
bool for_each_note(const Image& image, uint64_t offset, uint64_t size, uint64_t present, uint64_t align,
                   size_t segment, size_t& note_count, Fn&& fn) {
  auto round_up = [align](uint64_t v) { return (v + align - 1) & ~(align - 1); };
  uint64_t pos = 0;
  while (pos < size) {
    std::string where = "note " + num(note_count) + " in PT_NOTE segment " + num(segment);
    if (note_count + 1 > kMaxNotes) throw ReadError("more than " + num(kMaxNotes) + " notes");
    if (size - pos < sizeof(Elf64_Nhdr)) {
      if (present < size) return false;
      throw ReadError(where + ": header truncated (" + num(size - pos) + " of 12 bytes left in the segment)");
    }
    if (present < pos || present - pos < sizeof(Elf64_Nhdr)) return false;
    Elf64_Nhdr header = image.read<Elf64_Nhdr>(offset + pos);
    uint64_t name_pos = pos + sizeof header;
    uint64_t name_space = round_up(header.n_namesz);
    if (name_space > size - name_pos) {
      throw ReadError(where + ": name size " + num(header.n_namesz) + " runs past the end of the segment");
    }
    uint64_t desc_pos = name_pos + name_space;
    if (header.n_descsz > size - desc_pos) {
      throw ReadError(where + ": descriptor size " + num(header.n_descsz) + " runs past the end of the segment (" +
                      num(size - desc_pos) + " bytes left)");
    }
    if (desc_pos > present || header.n_descsz > present - desc_pos) return false;
    std::string_view name(reinterpret_cast<const char*>(image.at(offset + name_pos)), header.n_namesz);
    while (!name.empty() && name.back() == '\0') name.remove_suffix(1);
    where += " (" + std::string(name.substr(0, 32)) + " type " + num(header.n_type) + ")";
    ++note_count;
    fn(NoteView{name, header.n_type, offset + desc_pos, header.n_descsz}, where);
    uint64_t desc_space = round_up(header.n_descsz);
    pos = desc_pos + (desc_space > size - desc_pos ? size - desc_pos : desc_space);
  }
  return true;
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
  } else if (note.name == kPanicstopNoteName &&
             (note.type == kPanicstopNoteType || note.type == kPanicstopNoteTypeBefore)) {
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

std::string describe_truncation(const Truncation& cut) {
  std::string s = "core truncated at " + num(cut.file_bytes) + " of " + num(cut.expected_bytes) + " bytes: ";
  if (cut.segments_cut == 0) {
    s += "every memory segment complete";
  } else {
    s += num(cut.segments_cut) + " of " + num(cut.segments) + " memory segments cut (" + num(cut.segments_missing) +
         " wholly missing)";
  }
  if (cut.notes_cut) s += "; notes cut after note " + num(cut.notes_read) + " (later threads and notes lost)";
  if (!cut.unreadable_stacks.empty()) {
    s += cut.unreadable_stacks.size() == 1 ? "; stack of thread" : "; stacks of threads";
    for (size_t i = 0; i < cut.unreadable_stacks.size(); ++i) {
      s += (i == 0 ? " " : ", ") + std::to_string(cut.unreadable_stacks[i]);
    }
    s += " unreadable";
  }
  return s;
}

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
  Truncation cut;
  cut.file_bytes = image.size();
  auto end_of = [](const Elf64_Phdr& ph) {
    return ph.p_offset + ph.p_filesz < ph.p_offset ? UINT64_MAX : ph.p_offset + ph.p_filesz;
  };
  // A note segment that runs into a memory segment's bytes is damaged, not
  // cut short: only one that ends past the end of the file, with nothing of
  // its own claimed by another segment, is read as far as it goes.
  // Loads by file offset, each with the furthest end among it and those
  // before it: one binary search per note segment, however many there are.
  std::vector<std::pair<uint64_t, uint64_t>> load_ranges;
  for (uint64_t k = 0; k < phnum; ++k) {
    Elf64_Phdr load = image.read<Elf64_Phdr>(eh.e_phoff + k * sizeof(Elf64_Phdr));
    if (load.p_type == PT_LOAD && load.p_filesz != 0) load_ranges.emplace_back(load.p_offset, end_of(load));
  }
  std::sort(load_ranges.begin(), load_ranges.end());
  for (size_t k = 1; k < load_ranges.size(); ++k) {
    load_ranges[k].second = std::max(load_ranges[k].second, load_ranges[k - 1].second);
  }
  auto overlaps_a_load = [&](const Elf64_Phdr& note) {
    // The loads that start before the note ends; does the furthest of them reach into it?
    auto past = std::lower_bound(load_ranges.begin(), load_ranges.end(), std::make_pair(end_of(note), uint64_t{0}));
    return past != load_ranges.begin() && std::prev(past)->second > note.p_offset;
  };
  for (uint64_t i = 0; i < phnum; ++i) {
    Elf64_Phdr ph = image.read<Elf64_Phdr>(eh.e_phoff + i * sizeof(Elf64_Phdr));
    if (ph.p_type == PT_LOAD || ph.p_type == PT_NOTE) cut.expected_bytes = std::max(cut.expected_bytes, end_of(ph));
    // Bytes of the segment that are in the file: all of them unless it was cut short.
    uint64_t present = ph.p_offset >= image.size() ? 0 : std::min<uint64_t>(ph.p_filesz, image.size() - ph.p_offset);
    if (ph.p_type == PT_LOAD) {
      ++core.load_segments;
      if (ph.p_filesz > ph.p_memsz) {
        throw ReadError("PT_LOAD segment " + num(i) + " has more file bytes (" + num(ph.p_filesz) + ") than memory (" +
                        num(ph.p_memsz) + ")");
      }
      core.loads.push_back({ph.p_vaddr, ph.p_memsz, ph.p_offset, ph.p_filesz});
      if (present < ph.p_filesz) {
        ++cut.segments_cut;
        if (present == 0) ++cut.segments_missing;
      }
    } else if (ph.p_type == PT_NOTE) {
      ++note_segments;
      if (present < ph.p_filesz && overlaps_a_load(ph)) {
        throw ReadError("PT_NOTE segment " + num(i) + " (offset " + num(ph.p_offset) + ", " + num(ph.p_filesz) +
                        " bytes) runs past the end of the file (" + num(image.size()) +
                        " bytes) and over a PT_LOAD segment's bytes");
      }
      uint64_t align = ph.p_align == 8 ? 8 : 4;
      bool whole = for_each_note(
          image, ph.p_offset, ph.p_filesz, present, align, i, note_count,
          [&](const NoteView& note, const std::string& where) { read_note(image, note, where, core); });
      if (!whole) cut.notes_cut = true;
    }
  }
  cut.segments = core.load_segments;
  cut.notes_read = note_count;
  bool truncated = cut.notes_cut || cut.segments_cut > 0;
  if (note_segments == 0) throw ReadError("no PT_NOTE segment: nothing to show");
  if (core.threads.empty()) {
    if (truncated) {
      throw ReadError("truncated core: " + num(image.size()) + " of " + num(cut.expected_bytes) +
                      " bytes, cut before any thread's registers (" + num(note_count) + " notes readable)");
    }
    throw ReadError("no NT_PRSTATUS note: the core has no threads");
  }
  if (truncated) core.truncation = cut;
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
  if (core.truncation) {
    Truncation cut = *core.truncation;
    // A stack whose memory at sp lies past the end cannot be unwound.
    for (const CoreThread& ct : core.threads) {
      for (const CoreLoad& load : core.loads) {
        if (ct.sp < load.vaddr || ct.sp - load.vaddr >= load.memsz) continue;
        uint64_t into = ct.sp - load.vaddr;
        if (into < load.filesz && (load.offset >= cut.file_bytes || into >= cut.file_bytes - load.offset)) {
          cut.unreadable_stacks.push_back(ct.tid);
        }
        break;
      }
    }
    report.warnings.push_back(describe_truncation(cut));
    report.truncated = std::move(cut);
  }
  if (core.panicstop_note) {
    apply_panicstop_note(*core.panicstop_note, report);
  } else {
    report.panicking_tid = core.threads.front().tid;
    bool lost = core.truncation && core.truncation->notes_cut;
    report.message = std::string(lost ? "no panicstop note (the notes are cut short)" : "no panicstop note") +
                     ": core of " + std::to_string(core.pid != 0 ? core.pid : core.threads.front().tid) +
                     " (signal " + std::to_string(report.signal) + ")";
    if (!core.command.empty()) report.threads.front().name = core.command;
  }
  return report;
}

}  // namespace panicstop::read
