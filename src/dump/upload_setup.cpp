// Reads the upload tunables at install (upload_step.hpp); getenv, access and
// the search through PATH belong to setup, never to the crash path.
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>

#include "dump/upload_step.hpp"
#include "sys/format.hpp"

namespace panicstop::detail {

namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && v[0] != '\0' ? v : nullptr;
}

[[noreturn]] void reject(const char* name, const char* value, const char* accepted) {
  sys::write_line(2, "panicstop: %s=%.128s is not valid; accepted values: %s", name, value, accepted);
  std::exit(2);
}

bool is_executable_file(const char* path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

// `panicstop` through PATH, then the installed bindir. The result is made
// absolute: the crash path does not search.
bool find_uploader(char* out, size_t cap) {
  const char* path = env("PATH");
  if (path != nullptr) {
    const char* p = path;
    while (true) {
      const char* end = std::strchr(p, ':');
      size_t len = end != nullptr ? size_t(end - p) : std::strlen(p);
      char candidate[kUploaderPathMax];
      sys::FixedWriter w(candidate, sizeof candidate);
      if (len == 0) w.str(".");
      else w.format("%.*s", int(len), p);
      w.str("/panicstop");
      char resolved[PATH_MAX];
      if (!w.truncated() && is_executable_file(candidate) && realpath(candidate, resolved) != nullptr &&
          std::strlen(resolved) < cap) {
        sys::copy_string(out, cap, resolved);
        return true;
      }
      if (end == nullptr) break;
      p = end + 1;
    }
  }
#ifdef PANICSTOP_INSTALL_BINDIR
  const char* installed = PANICSTOP_INSTALL_BINDIR "/panicstop";
  if (is_executable_file(installed) && std::strlen(installed) < cap) {
    sys::copy_string(out, cap, installed);
    return true;
  }
#endif
  return false;
}

}  // namespace

void setup_upload() noexcept {
  UploadPlan plan;
  const char* url = env("PANICSTOP_UPLOAD_URL");
  if (const char* t = env("PANICSTOP_UPLOAD_TIMEOUT_MS")) {
    uint64_t ms = 0;
    if (!sys::parse_u64(t, std::strlen(t), &ms) || ms == 0 || ms > 3'600'000)
      reject("PANICSTOP_UPLOAD_TIMEOUT_MS", t, "a number of milliseconds from 1 to 3600000");
    plan.timeout_ms = uint32_t(ms);
  }
  const char* uploader = env("PANICSTOP_UPLOADER");
  if (uploader != nullptr && (uploader[0] != '/' || std::strlen(uploader) >= kUploaderPathMax ||
                              !is_executable_file(uploader)))
    reject("PANICSTOP_UPLOADER", uploader, "the absolute path of an executable panicstop program");
  if (url == nullptr) {
    upload_plan() = plan;
    return;
  }
  if (std::strlen(url) >= kUploadUrlMax) reject("PANICSTOP_UPLOAD_URL", url, "a URL shorter than 2048 bytes");
  sys::copy_string(plan.url, sizeof plan.url, url);
  if (uploader != nullptr) {
    sys::copy_string(plan.uploader, sizeof plan.uploader, uploader);
  } else if (!find_uploader(plan.uploader, sizeof plan.uploader)) {
    sys::write_line(2,
                    "panicstop: PANICSTOP_UPLOAD_URL is set but no panicstop program was found in PATH; crashes "
                    "will not be uploaded (set PANICSTOP_UPLOADER to its absolute path)");
    upload_plan() = plan;
    return;
  }
  // The uploader's own budget is a little shorter than the wait, so that it
  // can give up cleanly (and say why) before it is killed.
  uint32_t margin = plan.timeout_ms / 10 < 500 ? plan.timeout_ms / 10 : 500;
  sys::format(plan.deadline_arg, sizeof plan.deadline_arg, "%u", plan.timeout_ms - margin);
  plan.enabled = true;
  upload_plan() = plan;
}

}  // namespace panicstop::detail
