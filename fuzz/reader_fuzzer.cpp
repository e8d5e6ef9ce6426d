// libFuzzer target over the reader's parsers: every input goes through the
// text-report parser, the ELF core parser and the minidump parser (from memory, as the tool maps
// files), and whatever parses is rendered as text and JSON. A parser may
// reject input only by throwing ReadError; anything else is a bug. So is a
// text report whose rendering (show's own output, documented as a report
// that reads back) does not read back with the same threads and frames.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string_view>

#include "read/elf_core_parser.hpp"
#include "read/minidump_parser.hpp"
#include "read/render.hpp"
#include "read/text_report_parser.hpp"

namespace {

using namespace panicstop::read;

void expect_reads_back(const Report& report, const std::string& printed) {
  Report again;
  try {
    again = parse_text_report(printed);
  } catch (const ReadError&) {
    std::abort();  // show's output is not a report
  }
  if (again.threads.size() != report.threads.size()) std::abort();
  for (size_t i = 0; i < report.threads.size(); ++i) {
    const Thread &a = report.threads[i], &b = again.threads[i];
    if (a.tid != b.tid || a.frames.size() != b.frames.size()) std::abort();
    for (size_t k = 0; k < a.frames.size(); ++k) {
      if (a.frames[k].pc != b.frames[k].pc) std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::ostringstream sink;
  try {
    Report report = parse_text_report(std::string_view(reinterpret_cast<const char*>(data), size));
    std::ostringstream printed;
    render_text(report, printed);
    expect_reads_back(report, printed.str());
    render_json(report, "fuzz", sink);
  } catch (const ReadError&) {
  }
  try {
    Report report = report_from_core(parse_elf_core({data, size}));
    render_text(report, sink);
    render_json(report, "fuzz", sink);
  } catch (const ReadError&) {
  }
  try {
    Report report = parse_minidump({data, size});
    render_text(report, sink);
    render_json(report, "fuzz", sink);
  } catch (const ReadError&) {
  }
  return 0;
}
