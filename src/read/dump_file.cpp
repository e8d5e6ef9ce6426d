#include "read/dump_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <span>
#include <string_view>

#include "read/elf_core_parser.hpp"
#include "read/minidump_parser.hpp"
#include "read/symbolize.hpp"
#include "read/text_report_parser.hpp"

namespace panicstop::read {
namespace {

// A read-only private mapping of a whole file, unmapped on scope exit.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
    fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd_ < 0) throw ReadError(std::string("cannot open: ") + std::strerror(errno));
    struct stat st {};
    if (fstat(fd_, &st) != 0) throw ReadError(std::string("cannot stat: ") + std::strerror(errno));
    if (S_ISDIR(st.st_mode)) throw ReadError("is a directory");
    if (!S_ISREG(st.st_mode)) throw ReadError("not a regular file (a FIFO, socket or device is never read)");
    size_ = static_cast<size_t>(st.st_size);
    if (size_ == 0) throw ReadError("empty file");
    void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (p == MAP_FAILED) throw ReadError(std::string("cannot map: ") + std::strerror(errno));
    data_ = static_cast<const unsigned char*>(p);
  }
  ~MappedFile() {
    if (data_ != nullptr) munmap(const_cast<unsigned char*>(data_), size_);
    if (fd_ >= 0) close(fd_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const unsigned char> bytes() const { return {data_, size_}; }
  std::string_view text() const { return {reinterpret_cast<const char*>(data_), size_}; }

 private:
  int fd_ = -1;
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace

Report read_dump_file(const std::string& path) {
  Report report;
  bool is_core = false;
  {
    // A file that shrinks while mapped raises SIGBUS; dumps are finished
    // files (written to a temporary name and renamed), so that is not guarded.
    MappedFile file(path);
    if (looks_like_elf(file.text())) {
      report = report_from_core(parse_elf_core(file.bytes()));
      is_core = true;
    } else if (looks_like_minidump(file.text())) {
      report = parse_minidump(file.bytes());
    } else if (looks_like_text_report(file.text())) {
      if (file.text().size() > kMaxTextReportBytes) {
        throw ReadError("text report of " + std::to_string(file.text().size()) + " bytes is larger than the " +
                        std::to_string(kMaxTextReportBytes >> 20) + " MiB this reader accepts");
      }
      report = parse_text_report(file.text());
    } else {
      throw ReadError("not a panicstop text report, ELF core or minidump (it starts with none of \"panic: \", the ELF magic, MDMP)");
    }
  }
  if (is_core) {
    unwind_core(path, report);
  } else {
    symbolize_text_report(report);
  }
  return report;
}

}  // namespace panicstop::read
