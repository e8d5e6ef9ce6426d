#include <iostream>

#include "command.hpp"
#include "drill_command.hpp"
#include "dump_command.hpp"
#include "kdb_command.hpp"
#include "run_command.hpp"
#include "show_command.hpp"
#include "upload_command.hpp"

namespace panicstop::tool {

std::span<const Command> commands() {
  static const Command table[] = {
      kDrillCommand,
      kDumpCommand,
      kKdbCommand,
      kRunCommand,
      kShowCommand,
      kUploadCommand,
  };
  return table;
}

int usage_error(std::string_view command, const std::string& message) {
  std::cerr << "panicstop: " << message << " (try 'panicstop "
            << (command.empty() ? std::string("--help") : "help " + std::string(command)) << "')\n";
  return kExitUsage;
}

}  // namespace panicstop::tool
