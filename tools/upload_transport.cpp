#include "upload_transport.hpp"

#include <curl/curl.h>
#include <zlib.h>

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "panicstop/version.hpp"

#define PANICSTOP_UA_STR2(x) #x
#define PANICSTOP_UA_STR(x) PANICSTOP_UA_STR2(x)

namespace panicstop::tool {

namespace {

constexpr size_t kBodyMax = 64 * 1024;

void global_init() {
  static const bool done = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  (void)done;
}

struct CurlUrl {
  CURLU* u = curl_url();
  ~CurlUrl() { curl_url_cleanup(u); }
  std::string get(CURLUPart part) const {
    char* v = nullptr;
    if (curl_url_get(u, part, &v, 0) != CURLUE_OK || v == nullptr) return "";
    std::string s(v);
    curl_free(v);
    return s;
  }
};

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct Exchange {
  std::string body;
  long retry_after_s = -1;
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  size_t bytes = size * n;
  if (ex->body.size() < kBodyMax) ex->body.append(data, std::min(bytes, kBodyMax - ex->body.size()));
  return bytes;
}

void take_delay(Exchange* ex, long seconds) {
  if (seconds >= 0 && (ex->retry_after_s < 0 || seconds < ex->retry_after_s)) ex->retry_after_s = seconds;
}

// Retry-After: SECONDS (the HTTP-date form is read as "no hint"), and Sentry's
// X-Sentry-Rate-Limits: "SECONDS:CATEGORIES:SCOPE[:...], ..." (any limit holds
// an event back, so the smallest delay is the earliest try that may pass).
size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  size_t bytes = size * n;
  std::string line(data, bytes);
  size_t colon = line.find(':');
  if (colon == std::string::npos) return bytes;
  std::string name = lower(line.substr(0, colon));
  std::string value = line.substr(colon + 1);
  if (name == "retry-after") {
    char* end = nullptr;
    long s = std::strtol(value.c_str(), &end, 10);
    if (end != value.c_str()) take_delay(ex, s);
  } else if (name == "x-sentry-rate-limits") {
    std::stringstream limits(value);
    std::string limit;
    while (std::getline(limits, limit, ',')) {
      char* end = nullptr;
      long s = std::strtol(limit.c_str(), &end, 10);
      if (end != limit.c_str()) take_delay(ex, s);
    }
  }
  return bytes;
}

// The file gzip-compressed into a temporary file next to nothing the user owns
// (/tmp, removed by the caller). Returns "" on failure.
std::string gzip_to_temp(const std::string& path, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = path + ": " + std::strerror(errno);
    return "";
  }
  char tmpl[] = "/tmp/panicstop-upload-XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd < 0) {
    *error = std::string("cannot create a temporary file: ") + std::strerror(errno);
    return "";
  }
  gzFile gz = gzdopen(fd, "wb1");
  if (gz == nullptr) {
    close(fd);
    unlink(tmpl);
    *error = "cannot compress " + path;
    return "";
  }
  std::vector<char> buf(1 << 16);
  bool ok = true;
  while (ok && in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    std::streamsize got = in.gcount();
    if (got > 0 && gzwrite(gz, buf.data(), unsigned(got)) != int(got)) ok = false;
  }
  if (gzclose(gz) != Z_OK) ok = false;
  if (!ok || in.bad()) {
    unlink(tmpl);
    *error = "cannot compress " + path;
    return "";
  }
  return tmpl;
}

struct TempFiles {
  std::vector<std::string> paths;
  ~TempFiles() {
    for (const auto& p : paths) unlink(p.c_str());
  }
};

PostResult failure(PostResult::Kind kind, std::string error) {
  PostResult r;
  r.kind = kind;
  r.error = std::move(error);
  return r;
}

}  // namespace

std::string check_upload_url(const std::string& url) {
  global_init();
  CurlUrl u;
  if (u.u == nullptr) return "out of memory";
  if (curl_url_set(u.u, CURLUPART_URL, url.c_str(), 0) != CURLUE_OK)
    return "'" + url + "' is not a URL (expected http://HOST[:PORT]/PATH or https://...)";
  std::string scheme = lower(u.get(CURLUPART_SCHEME));
  if (scheme != "http" && scheme != "https") return "'" + scheme + "' URLs are not supported (http or https only)";
  if (u.get(CURLUPART_HOST).empty()) return "'" + url + "' has no host";
  return "";
}

std::string printable_url(const std::string& url) {
  global_init();
  CurlUrl u;
  if (u.u == nullptr || curl_url_set(u.u, CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return url;
  std::string out = u.get(CURLUPART_SCHEME) + "://" + u.get(CURLUPART_HOST);
  std::string port = u.get(CURLUPART_PORT);
  if (!port.empty()) out += ":" + port;
  return out + u.get(CURLUPART_PATH);
}

PostResult post_form(const std::string& url, const std::vector<FormPart>& parts, long timeout_ms) {
  global_init();
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return failure(PostResult::Kind::kOtherError, "cannot initialise libcurl");
  CURL* c = curl.get();
  std::unique_ptr<curl_mime, void (*)(curl_mime*)> mime(curl_mime_init(c), curl_mime_free);
  TempFiles temps;
  for (const FormPart& p : parts) {
    curl_mimepart* part = curl_mime_addpart(mime.get());
    curl_mime_name(part, p.name.c_str());
    if (p.path.empty()) {
      curl_mime_data(part, p.value.data(), p.value.size());
      continue;
    }
    std::string source = p.path, filename = p.filename;
    if (p.gzip) {
      std::string error;
      source = gzip_to_temp(p.path, &error);
      if (source.empty()) return failure(PostResult::Kind::kFileError, error);
      temps.paths.push_back(source);
      filename += ".gz";
    }
    if (curl_mime_filedata(part, source.c_str()) != CURLE_OK)
      return failure(PostResult::Kind::kFileError, p.path + ": cannot be read");
    curl_mime_filename(part, filename.c_str());
    curl_mime_type(part, p.gzip ? "application/gzip" : "application/octet-stream");
  }

  Exchange ex;
  char errbuf[CURL_ERROR_SIZE] = {};
  // "Expect: 100-continue" would cost a round trip (or a second's wait on
  // servers that ignore it) for every dump over 1 MiB.
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers(curl_slist_append(nullptr, "Expect:"),
                                                             curl_slist_free_all);
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_MIMEPOST, mime.get());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_USERAGENT, "panicstop/" PANICSTOP_UA_STR(PANICSTOP_VERSION_MAJOR) "." PANICSTOP_UA_STR(
                                            PANICSTOP_VERSION_MINOR) "." PANICSTOP_UA_STR(PANICSTOP_VERSION_PATCH));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &ex);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &ex);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl_easy_perform(c);

  PostResult r;
  r.body = ex.body;
  r.retry_after_s = ex.retry_after_s;
  if (rc == CURLE_OK) {
    r.kind = PostResult::Kind::kAnswered;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    return r;
  }
  long os_errno = 0;
  curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
  std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
      r.kind = PostResult::Kind::kRefused;
      r.error = os_errno == ECONNREFUSED ? "connection refused" : detail;
      break;
    case CURLE_COULDNT_RESOLVE_HOST:
      r.kind = PostResult::Kind::kNoHost;
      r.error = "cannot resolve the host name";
      break;
    case CURLE_OPERATION_TIMEDOUT:
      r.kind = PostResult::Kind::kTimeout;
      r.error = "no answer within " + std::to_string(timeout_ms) + " ms";
      break;
    case CURLE_READ_ERROR:
      r.kind = PostResult::Kind::kFileError;
      r.error = "a file could not be read while sending it";
      break;
    default:
      r.kind = PostResult::Kind::kOtherError;
      r.error = detail;
  }
  return r;
}

}  // namespace panicstop::tool
