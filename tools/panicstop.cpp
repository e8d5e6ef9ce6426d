// The `panicstop` command: dispatches to the subcommands in commands.cpp.
#include <iostream>
#include <string>
#include <vector>

#include "command.hpp"
#include "panicstop/version.hpp"


namespace panicstop::tool {
namespace {

const Command* find_command(std::string_view name) {
  for (const Command& c : commands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

void print_help() {
  std::cout << "Usage: panicstop COMMAND [ARGS...]\n"
               "       panicstop help COMMAND\n"
               "       panicstop --help | --version\n"
               "\n"
               "panicstop stops every thread of a C++ program when it panics and writes a\n"
               "dump that gdb, lldb, eu-stack and drgn open: a text report (*.txt) and an ELF\n"
               "core (*.core), named panicstop-COMM-PID-SECONDS.{txt,core}. `panicstop help\n"
               "COMMAND` explains each command.\n"
               "\n"
               "Commands:\n";
  size_t width = 0;
  for (const Command& c : commands()) width = std::max(width, c.name.size());
  for (const Command& c : commands()) {
    std::cout << "  " << c.name << std::string(width - c.name.size() + 2, ' ') << c.summary << "\n";
  }
  std::cout << "\n"
               "Examples:\n"
               "  panicstop show panicstop-app-4242-1764000000.txt   the report, with file:line\n"
               "  panicstop show --json panicstop-app-4242-1764000000.core\n"
               "                                   every thread's stack as JSON\n"
               "  panicstop help show              what show reads and prints\n"
               "\n"
               "Exit status:\n"
               "  0  success\n"
               "  1  failure: a file cannot be read or is not a valid dump (one line on stderr)\n"
               "  2  usage error: unknown command or option, missing argument\n"
               "\n"
               "Environment:\n"
               "  DEBUGINFOD_URLS  when set, libdw may fetch missing debug info from these servers\n"
               "  A program linked with panicstop reads PANICSTOP_DUMP_DIR (where dumps go),\n"
               "  PANICSTOP_DUMP (text,core,minidump or none) and PANICSTOP_CORE (mini or full);\n"
               "  with PANICSTOP_UPLOAD_URL it sends its dumps there before dying (help upload).\n";
}

int help_command(const std::vector<std::string>& args) {
  if (args.empty()) {
    print_help();
    return kExitOk;
  }
  const Command* c = find_command(args.front());
  if (c == nullptr) return usage_error("", "help: unknown command '" + args.front() + "'");
  std::cout << "Usage: " << c->usage << "\n\n" << c->help;
  return kExitOk;
}

int dispatch(const std::vector<std::string>& args) {
  if (args.empty()) return usage_error("", "missing COMMAND");
  const std::string& first = args.front();
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (first == "--help" || first == "-h") {
    print_help();
    return kExitOk;
  }
  if (first == "--version") {
    std::cout << "panicstop " << PANICSTOP_VERSION_MAJOR << '.' << PANICSTOP_VERSION_MINOR << '.' << PANICSTOP_VERSION_PATCH << "\n";
    return kExitOk;
  }
  if (first == "help") return help_command(rest);
  if (first.size() > 1 && first[0] == '-') return usage_error("", "unknown option '" + first + "'");
  const Command* c = find_command(first);
  if (c == nullptr) return usage_error("", "unknown command '" + first + "'");
  return c->run(rest);
}

}  // namespace
}  // namespace panicstop::tool

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    return panicstop::tool::dispatch(args);
  } catch (const std::exception& e) {
    std::cerr << "panicstop: " << e.what() << "\n";
    return panicstop::tool::kExitFailure;
  }
}
