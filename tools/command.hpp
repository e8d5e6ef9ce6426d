// One subcommand of the `panicstop` tool. Adding a command means writing its
// handler in tools/<name>_command.cpp, declaring its Command there and in a
// header, and adding one line to the table in tools/commands.cpp; --help and
// `panicstop help NAME` then list and explain it.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace panicstop::tool {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the work failed: unreadable or bad input, ...
inline constexpr int kExitUsage = 2;    // the command line was wrong

struct Command {
  std::string_view name;     // "show"
  std::string_view summary;  // one line for the command list
  std::string_view usage;    // "panicstop show [--json] FILE"
  std::string_view help;     // the rest of `panicstop help NAME`: what it does, options, examples
  // Runs the command with the arguments after its name; returns the exit status.
  int (*run)(const std::vector<std::string>& args);
};

// Every command, in the order --help lists them.
std::span<const Command> commands();

// Prints "panicstop: MESSAGE (try 'panicstop help COMMAND')" on stderr (or
// "... --help" when command is empty) and returns kExitUsage.
int usage_error(std::string_view command, const std::string& message);

}  // namespace panicstop::tool
