// A crash loop must not flood the collector: `panicstop upload` sends at most
// a few dumps per crash signature per hour, counted in the dump directory, and
// holds the rest back (they stay on disk, marked PREFIX.held, and the next
// dump of that signature that goes out says how many were held back).
#pragma once

#include <ctime>
#include <string>
#include <vector>

namespace panicstop::tool {

// The signature of the crash a text report describes: the executable's build
// id and the first five frames of the panicking thread, without their
// absolute addresses (ASLR moves them from run to run; the function+offset or
// module+offset that remain do not move), hashed to 16 hex digits. "" when the
// file cannot be read or names no panicking thread.
std::string crash_signature(const std::string& report_path);

// DIR/.panicstop-uploads: one line per upload or hold-back,
// "UNIX-SECONDS sent|held SIGNATURE". Appended to with O_APPEND, so two
// uploaders at once lose nothing but may both pass a limit by one.
class UploadLog {
 public:
  explicit UploadLog(const std::string& dir);
  // Uploads of signature in the `window` seconds up to now.
  int sent_within(const std::string& signature, long window, time_t now) const;
  // Hold-backs of signature after its latest upload.
  int held_since_last_sent(const std::string& signature) const;
  // Appends a line; false (and nothing said) when the file cannot be written.
  bool record(const std::string& signature, const char* what, time_t now) const;

 private:
  struct Entry {
    long long seconds;
    std::string what, signature;
  };
  std::vector<Entry> read() const;
  std::string path_;
};

}  // namespace panicstop::tool
