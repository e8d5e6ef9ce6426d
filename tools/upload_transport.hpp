// One HTTP POST of a multipart/form-data body, through libcurl, for
// `panicstop upload`. Never linked into the library: libcurl allocates, takes
// locks and resolves names, none of which a crashed process may do.
#pragma once

#include <string>
#include <vector>

namespace panicstop::tool {

// A form part: a plain field (value), or a file sent from disk with a file name
// (collectors tell files from fields by the filename, so a file part always
// carries one). With gzip set, the file goes compressed and its filename gains
// ".gz" (Sentry detects the compression by its magic bytes).
struct FormPart {
  std::string name;
  std::string value;      // for a field
  std::string path;       // for a file: read from here
  std::string filename;   // for a file: what the collector is told
  bool gzip = false;
};

struct PostResult {
  enum class Kind {
    kAnswered,      // an HTTP answer came; see status
    kRefused,       // nothing listens there, or the host is unreachable
    kNoHost,        // the name did not resolve
    kTimeout,       // connected or not, no complete answer within the timeout
    kFileError,     // a file part could not be read or compressed
    kOtherError,    // anything else libcurl reports (TLS, protocol)
  };
  Kind kind = Kind::kOtherError;
  long status = 0;           // HTTP status when answered
  std::string body;          // the answer's body, at most 64 KiB
  long retry_after_s = -1;   // Retry-After, or the smallest X-Sentry-Rate-Limits delay; -1 if none
  std::string error;         // one line for the other kinds
};

// Checks that url is an absolute http:// or https:// URL with a host. Returns
// "" when it is, else a one-line reason.
std::string check_upload_url(const std::string& url);

// The URL for messages: scheme, host, port and path, without user info or query
// (a Sentry key travels in the query).
std::string printable_url(const std::string& url);

// POSTs parts to url, waiting at most timeout_ms for the whole exchange.
// Follows no redirect. Never throws for network or HTTP errors (see Kind).
PostResult post_form(const std::string& url, const std::vector<FormPart>& parts, long timeout_ms);

}  // namespace panicstop::tool
