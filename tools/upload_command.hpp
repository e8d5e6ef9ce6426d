// `panicstop upload [OPTIONS] (--dir DIR | FILE...)`: sends dumps to a crash
// collector (Sentry's minidump endpoint, or any Breakpad/Crashpad-style
// server) as one multipart/form-data POST per dump, through libcurl. A dump
// the collector accepted (2xx) is marked with a PREFIX.sent file beside it and
// never sent again by --dir; a dump that could not be sent stays as it was.
// The dying process of a crash runs it too (src/dump/upload_step.hpp).
#pragma once

#include <string>

#include "command.hpp"

namespace panicstop::tool {

extern const Command kUploadCommand;

// A Sentry DSN, SCHEME://KEY[:SECRET]@HOST[:PORT][/PATH]/PROJECT, as the URL of
// its project's minidump endpoint:
// SCHEME://HOST[:PORT][/PATH]/api/PROJECT/minidump/?sentry_key=KEY.
// Returns "" (and a reason in *error) when dsn is not of that form.
std::string sentry_minidump_url(const std::string& dsn, std::string* error);

}  // namespace panicstop::tool
