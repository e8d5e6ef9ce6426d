// libFuzzer target over the reader's parsers: every input goes through the
// text-report parser, the ELF core parser and the minidump parser (from memory, as the tool maps
// files), and whatever parses is rendered as text and JSON. A parser may
// reject input only by throwing ReadError; anything else is a bug.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string_view>

#include "read/elf_core_parser.hpp"
#include "read/minidump_parser.hpp"
#include "read/render.hpp"
#include "read/text_report_parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace panicstop::read;
  std::ostringstream sink;
  try {
    Report report = parse_text_report(std::string_view(reinterpret_cast<const char*>(data), size));
    render_text(report, sink);
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
