#include "upload_command.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "read/dump_file.hpp"
#include "read/text_report_parser.hpp"
#include "upload_limits.hpp"
#include "upload_transport.hpp"

namespace panicstop::tool {

namespace {

constexpr std::string_view kUploadHelp = R"(Sends dumps to a crash collector: one HTTP POST (multipart/form-data) per
dump, the way Breakpad and Crashpad clients do, which Sentry, Backtrace,
BugSplat and Socorro-style servers accept. The files of one dump share a name
(panicstop-COMM-PID-SECONDS) and go in one request:
  upload_file_minidump  the minidump (.dmp), gzip-compressed (--no-gzip sends
                        it as is); with no .dmp, the text report goes in this
                        part instead (said on stderr), so that servers which
                        require the part still get the crash
  panicstop_report      the text report (.txt), as an attachment
  panicstop_core        the ELF core (.core), only with --core (it is large)
  prod, ver             product (default: COMM from the file name) and version
  sentry                JSON for Sentry: level fatal, the panic message from
                        the report, release, environment; a live dump
                        (panicstop dump PID, live_dump(): the process kept
                        running) is level info with its reason as the
                        message and the tag panicstop.live_dump
  NAME                  each --field NAME=VALUE (e.g. guid=... for Breakpad)
A dump the collector accepts (HTTP 2xx) gets a marker PREFIX.sent beside it
holding the collector's answer; its files are left where they are. --dir
sends every dump of DIR that has no marker (those a crash could not send, for
example while the network was down), so nothing is sent twice; a failed dump
keeps no marker and is tried again next time.

Options:
  --url URL          the collector's endpoint (default: $PANICSTOP_UPLOAD_URL)
  --sentry-dsn DSN   a Sentry DSN instead of --url; https://KEY@HOST/PROJECT
                     becomes https://HOST/api/PROJECT/minidump/?sentry_key=KEY
  --dir DIR          send the pending dumps of DIR (also --pending DIR)
  --product NAME     the prod field
  --release VERSION  the ver field and Sentry's release ($PANICSTOP_RELEASE)
  --environment ENV  Sentry's environment ($PANICSTOP_ENVIRONMENT)
  --field NAME=VALUE an extra form field; may be repeated
  --core             send the .core file too
  --no-gzip          send the minidump uncompressed
  --timeout-ms MS    the most one attempt may take (default 30000)
  --retries N        further attempts after a failed one (default 3); waits 1,
                     2, 4... s between them (at most 30), or what the collector
                     asks for (429/503 with Retry-After, X-Sentry-Rate-Limits)
  --deadline-ms MS   the most the whole command may take (default 120000);
                     no attempt starts or waits past it
  --limit-per-hour N dumps of one crash signature sent per hour (default 3;
                     0: no limit); see below
Connection refused, unknown host, timeouts, HTTP 408, 429 and 5xx are tried
again; any other 4xx is not (the request itself is wrong).

A crash loop does not flood the collector: the crash signature (the
executable's build id and the panicking thread's top five frames, read from
the text report) goes out at most --limit-per-hour times an hour, counted in
DIR/.panicstop-uploads. A dump over the limit is held back: kept on disk,
marked PREFIX.held (--dir skips it; name its files to send it anyway, with
--limit-per-hour 0), and the next dump of that signature that is sent
carries the count in the field held_back. A dump without a text report has
no signature and is never held back.

Output: one line per dump on stdout, "sent PREFIX: ID" or "held PREFIX: ...", ID being the
crash id in the collector's answer ({"id":...} from Sentry, CrashID= from
Breakpad-style servers, else its first line). Errors go to stderr, one line
each, e.g. "panicstop: upload: PREFIX: HTTP 403 from URL: <first line of the
answer>".

At a crash: a program with PANICSTOP_UPLOAD_URL set starts this command
itself once its dumps are written and waits up to $PANICSTOP_UPLOAD_TIMEOUT_MS
(default 10000) before it dies; $PANICSTOP_UPLOADER names this program when
it is not in PATH. What was not sent then stays pending for --dir.

Exit status: 0 every dump was sent (or nothing was pending); 1 a dump could
not be sent, a file is not a dump, DIR is not a dump directory; 2 a usage
error or a malformed URL.

Examples:
  panicstop upload --url http://crashes.example:1127/submit panicstop-app-42-1764000000.*
  panicstop upload --sentry-dsn https://abc123@o1.ingest.sentry.io/42 --dir /var/crash
  PANICSTOP_UPLOAD_URL=https://o1.ingest.sentry.io/api/42/minidump/?sentry_key=abc123 ./server
)";

struct Options {
  std::string url, dsn, dir, product, release, environment;
  std::vector<std::pair<std::string, std::string>> fields;
  std::vector<std::string> files;
  bool send_core = false, gzip = true;
  long timeout_ms = 30000, deadline_ms = 120000, retries = 3, limit_per_hour = 3;
};

// The files of one dump: DIR/BASE.{dmp,txt,core}.
struct Dump {
  std::string dir, base, minidump, report, core;
  std::string marker() const { return dir + "/" + base + ".sent"; }
  std::string held_marker() const { return dir + "/" + base + ".held"; }
};

using Clock = std::chrono::steady_clock;

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string first_line(const std::string& text) {
  size_t start = text.find_first_not_of(" \t\r\n");
  if (start == std::string::npos) return "";
  std::string line = text.substr(start, text.find_first_of("\r\n", start) - start);
  if (line.size() > 200) line = line.substr(0, 200) + "...";
  return line;
}

// The first n bytes of the file (all of it if shorter).
std::string read_head(const std::string& path, size_t n) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  const std::streamoff size = in.tellg();
  if (size <= 0) return "";
  in.seekg(0);
  std::string s(std::min(n, size_t(size)), '\0');
  in.read(s.data(), std::streamsize(s.size()));
  s.resize(size_t(in.gcount()));
  return s;
}

// Why path is not a dump we send, or "" if it is one.
std::string not_a_dump(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return std::strerror(errno);
  if (!S_ISREG(st.st_mode)) return "not a regular file";
  std::string head = read_head(path, 8);
  if (ends_with(path, ".dmp")) return head.rfind("MDMP", 0) == 0 ? "" : "not a minidump (no MDMP header)";
  if (ends_with(path, ".txt")) return head.rfind("panic: ", 0) == 0 ? "" : "not a panicstop text report";
  if (ends_with(path, ".core")) return head.rfind("\x7f" "ELF", 0) == 0 ? "" : "not an ELF core";
  return "not a dump (expected a .dmp, .txt or .core file)";
}

void add_file(std::map<std::string, Dump>* dumps, const std::string& path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string base = name.substr(0, name.rfind('.'));
  Dump& d = (*dumps)[dir + "/" + base];
  d.dir = dir;
  d.base = base;
  if (ends_with(name, ".dmp")) d.minidump = path;
  else if (ends_with(name, ".txt")) d.report = path;
  else d.core = path;
}

// COMM out of "panicstop-COMM-PID-SECONDS[-N]": the trailing numbers go.
std::string product_of(const std::string& base) {
  if (base.rfind("panicstop-", 0) != 0) return base;
  std::string rest = base.substr(10);
  for (int dropped = 0; dropped < 3; ++dropped) {
    size_t dash = rest.rfind('-');
    if (dash == std::string::npos || dash == 0) break;
    std::string tail = rest.substr(dash + 1);
    if (tail.empty() || tail.find_first_not_of("0123456789") != std::string::npos) break;
    if (dropped == 2 && tail.size() > 4) break;  // a third number is the "-N" of a repeat, short
    rest.erase(dash);
  }
  return rest;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') out += '\\', out += char(c);
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else out += char(c);
  }
  return out + "\"";
}

// What an event says of a dump: the panic message of its text report, and
// whether it was a live dump (live_dump(), kdb, `panicstop dump PID`: the
// process went on, so the event is not "fatal"). The report is read by the
// parser `panicstop show` uses, which tells a live dump from a panic by its
// threads ("dumping", and none "panicking"). The writer ends every line, so
// a last line without its end was cut short (a full disk, a crash of the
// writer) and is left out. A report that still does not parse counts as a
// crash, with its first line as the message.
struct ReportSummary {
  std::string message;
  bool live = false;
};

ReportSummary summarize_report(const std::string& path) {
  std::string data = read_head(path, read::kMaxTextReportBytes);
  if (!data.empty() && data.back() != '\n') data.resize(data.rfind('\n') + 1);  // npos + 1 == 0
  ReportSummary summary;
  try {
    read::Report report = read::parse_text_report(data);
    summary.live = report.live_dump;
    summary.message = report.message;
    // A live dump's message is "(none) REASON": the reason is the message.
    constexpr std::string_view kNone = "(none) ";
    if (summary.live && summary.message.rfind(kNone, 0) == 0) summary.message.erase(0, kNone.size());
  } catch (const read::ReadError&) {
    std::string line = first_line(data);
    if (line.rfind("panic: ", 0) == 0) summary.message = line.substr(7);
  }
  if (summary.message.size() > 200) summary.message = summary.message.substr(0, 200) + "...";
  return summary;
}

std::string sentry_event(const Options& o, const Dump& d, int held_back) {
  ReportSummary summary = d.report.empty() ? ReportSummary{} : summarize_report(d.report);
  const bool live = summary.live;
  std::string json = std::string("{\"level\":") + (live ? "\"info\"" : "\"fatal\"") + ",\"platform\":\"native\"";
  if (!summary.message.empty()) json += ",\"message\":{\"formatted\":" + json_string(summary.message) + "}";
  if (!o.release.empty()) json += ",\"release\":" + json_string(o.release);
  if (!o.environment.empty()) json += ",\"environment\":" + json_string(o.environment);
  if (held_back > 0) json += ",\"extra\":{\"panicstop.held_back\":" + std::to_string(held_back) + "}";
  return json + ",\"tags\":{\"panicstop.dump\":" + json_string(d.base) +
         (live ? ",\"panicstop.live_dump\":\"true\"" : "") + "}}";
}

std::vector<FormPart> form_of(const Options& o, const Dump& d, int held_back) {
  std::vector<FormPart> parts;
  auto file = [](std::string name, const std::string& path, bool gzip) {
    FormPart p;
    p.name = std::move(name);
    p.path = path;
    p.filename = path.substr(path.rfind('/') + 1);
    p.gzip = gzip;
    return p;
  };
  if (!d.minidump.empty()) {
    parts.push_back(file("upload_file_minidump", d.minidump, o.gzip));
    if (!d.report.empty()) parts.push_back(file("panicstop_report", d.report, false));
  } else {
    std::cerr << "panicstop: upload: " << d.base
              << ": no minidump was written (PANICSTOP_DUMP without minidump); the text report goes in "
                 "upload_file_minidump\n";
    parts.push_back(file("upload_file_minidump", d.report, false));
  }
  if (o.send_core && !d.core.empty()) parts.push_back(file("panicstop_core", d.core, false));
  auto field = [&](const std::string& name, const std::string& value) {
    FormPart p;
    p.name = name;
    p.value = value;
    parts.push_back(p);
  };
  field("prod", o.product.empty() ? product_of(d.base) : o.product);
  if (!o.release.empty()) field("ver", o.release);
  if (held_back > 0) field("held_back", std::to_string(held_back));
  for (const auto& [name, value] : o.fields) field(name, value);
  field("sentry", sentry_event(o, d, held_back));
  return parts;
}

// The crash id in a collector's answer.
std::string crash_id(const std::string& body) {
  size_t key = body.find("\"id\"");
  if (key != std::string::npos) {
    size_t open = body.find('"', body.find(':', key));
    size_t close = open == std::string::npos ? open : body.find('"', open + 1);
    if (close != std::string::npos) return body.substr(open + 1, close - open - 1);
  }
  size_t crash = body.find("CrashID=");
  if (crash != std::string::npos) return first_line(body.substr(crash + 8));
  std::string line = first_line(body);
  return line.empty() ? "(the answer held no id)" : line;
}

bool retryable(const PostResult& r) {
  switch (r.kind) {
    case PostResult::Kind::kAnswered: return r.status == 408 || r.status == 429 || r.status >= 500;
    case PostResult::Kind::kRefused:
    case PostResult::Kind::kNoHost:
    case PostResult::Kind::kTimeout:
    case PostResult::Kind::kOtherError: return true;
    case PostResult::Kind::kFileError: return false;
  }
  return false;
}

std::string describe(const PostResult& r, const std::string& where) {
  if (r.kind != PostResult::Kind::kAnswered) return where + ": " + r.error;
  std::string line = first_line(r.body);
  return "HTTP " + std::to_string(r.status) + " from " + where + ": " + (line.empty() ? "(empty answer)" : line);
}

void write_marker(const Dump& d, const std::string& id, const std::string& where) {
  std::string tmp = d.dir + "/." + d.base + ".sent.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "id: " << id << "\nto: " << where << "\n";
    if (!out.flush()) {
      std::cerr << "panicstop: upload: " << d.base << ": sent, but cannot write " << d.marker()
                << "; --dir would send it again\n";
      return;
    }
  }
  std::rename(tmp.c_str(), d.marker().c_str());
}

// Sends one dump with the retry policy; true when the collector accepted it.
bool send_dump(const Options& o, const Dump& d, int held_back, Clock::time_point deadline) {
  std::vector<FormPart> parts = form_of(o, d, held_back);
  std::string where = printable_url(o.url);
  for (long attempt = 0;; ++attempt) {
    long left = long(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (left <= 0) {
      std::cerr << "panicstop: upload: " << d.base << ": the deadline (" << o.deadline_ms
                << " ms) passed; it stays pending\n";
      return false;
    }
    PostResult r = post_form(o.url, parts, std::min(o.timeout_ms, left));
    if (r.kind == PostResult::Kind::kAnswered && r.status >= 200 && r.status < 300) {
      std::string id = crash_id(r.body);
      std::cout << "sent " << d.base << ": " << id << std::endl;
      write_marker(d, id, where);
      return true;
    }
    std::string why = describe(r, where);
    if (!retryable(r) || attempt >= o.retries) {
      std::cerr << "panicstop: upload: " << d.base << ": " << why
                << (retryable(r) ? "; no retries left, it stays pending\n" : "\n");
      return false;
    }
    long delay_ms = r.retry_after_s >= 0 ? r.retry_after_s * 1000 : std::min(1000L << std::min(attempt, 5L), 30000L);
    if (Clock::now() + std::chrono::milliseconds(delay_ms) >= deadline) {
      std::cerr << "panicstop: upload: " << d.base << ": " << why << "; the next try (in " << delay_ms
                << " ms) would pass the deadline, it stays pending\n";
      return false;
    }
    std::cerr << "panicstop: upload: " << d.base << ": " << why << "; trying again in " << delay_ms << " ms\n";
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  }
}

// Sends d unless its crash signature already went out --limit-per-hour times
// in the last hour; then it is held back (kept, marked PREFIX.held, counted
// in the next upload of the signature). False only when sending failed.
bool send_limited(const Options& o, const Dump& d, Clock::time_point deadline) {
  std::string signature = d.report.empty() ? "" : crash_signature(d.report);
  UploadLog log(d.dir);
  int held_back = 0;
  if (!signature.empty()) {
    time_t now = time(nullptr);
    int recent = log.sent_within(signature, 3600, now);
    if (o.limit_per_hour > 0 && recent >= o.limit_per_hour) {
      log.record(signature, "held", now);
      std::ofstream(d.held_marker()) << "signature: " << signature << "\nuploads in the hour before: " << recent << "\n";
      std::cout << "held " << d.base << ": " << recent << " dumps of this crash (signature " << signature
                << ") went out in the last hour" << std::endl;
      return true;
    }
    held_back = log.held_since_last_sent(signature);
  }
  if (!send_dump(o, d, held_back, deadline)) return false;
  if (!signature.empty()) log.record(signature, "sent", time(nullptr));
  return true;
}

// The pending dumps of dir; *error is set when dir is not a dump directory.
std::vector<Dump> pending_in(const std::string& dir, std::string* error) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    *error = dir + ": " + std::strerror(errno);
    return {};
  }
  std::map<std::string, Dump> dumps;
  std::set<std::string> sent;
  size_t foreign = 0;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    bool ours = name.rfind("panicstop-", 0) == 0;
    if (ours && (ends_with(name, ".sent") || ends_with(name, ".held")))
      sent.insert(dir + "/" + name.substr(0, name.size() - 5));
    else if (ours && (ends_with(name, ".dmp") || ends_with(name, ".txt") || ends_with(name, ".core")))
      add_file(&dumps, dir + "/" + name);
    else if (name[0] != '.')
      ++foreign;
  }
  closedir(d);
  if (dumps.empty() && sent.empty() && foreign > 0) {
    *error = dir + " holds no panicstop dumps (files named panicstop-*.dmp, .txt or .core)";
    return {};
  }
  std::vector<Dump> out;
  for (auto& [key, dump] : dumps)
    if (sent.count(key) == 0 && (!dump.minidump.empty() || !dump.report.empty())) out.push_back(dump);
  return out;
}

bool parse_number(const std::string& text, long min, long max, long* out) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || v < min || v > max) return false;
  *out = v;
  return true;
}

// Parses args into *o; returns -1 to go on, else the exit status.
int parse_options(const std::vector<std::string>& args, Options* o) {
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= args.size()) return false;
      *out = args[++i];
      return true;
    };
    auto number = [&](long min, long max, long* out) {
      std::string v;
      if (!value(&v)) return usage_error("upload", "upload: " + a + " needs a value");
      if (!parse_number(v, min, max, out))
        return usage_error("upload", "upload: " + a + " takes a number from " + std::to_string(min) + " to " +
                                         std::to_string(max) + ", not '" + v + "'");
      return -1;
    };
    std::string* target = nullptr;
    int rc = -1;
    if (options_done || a.empty() || a[0] != '-' || a == "-") {
      o->files.push_back(a);
      continue;
    }
    if (a == "--") options_done = true;
    else if (a == "-h" || a == "--help") {
      std::cout << "Usage: " << kUploadCommand.usage << "\n\n" << kUploadCommand.help;
      return kExitOk;
    } else if (a == "--url") target = &o->url;
    else if (a == "--sentry-dsn") target = &o->dsn;
    else if (a == "--dir" || a == "--pending") target = &o->dir;
    else if (a == "--product") target = &o->product;
    else if (a == "--release") target = &o->release;
    else if (a == "--environment") target = &o->environment;
    else if (a == "--core") o->send_core = true;
    else if (a == "--no-gzip") o->gzip = false;
    else if (a == "--timeout-ms") rc = number(1, 3'600'000, &o->timeout_ms);
    else if (a == "--deadline-ms") rc = number(1, 86'400'000, &o->deadline_ms);
    else if (a == "--retries") rc = number(0, 100, &o->retries);
    else if (a == "--limit-per-hour") rc = number(0, 1'000'000, &o->limit_per_hour);
    else if (a == "--field") {
      std::string f;
      if (!value(&f)) return usage_error("upload", "upload: --field needs NAME=VALUE");
      size_t eq = f.find('=');
      if (eq == std::string::npos || eq == 0) return usage_error("upload", "upload: --field takes NAME=VALUE, not '" + f + "'");
      o->fields.emplace_back(f.substr(0, eq), f.substr(eq + 1));
    } else
      return usage_error("upload", "upload: unknown option '" + a + "'");
    if (rc != -1) return rc;
    if (target != nullptr && !value(target)) return usage_error("upload", "upload: " + a + " needs a value");
  }
  return -1;
}

int run_upload(const std::vector<std::string>& args) {
  // Started by a dying process, this program inherits its mask with every
  // asynchronous signal blocked (execve keeps the mask): undo that.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);

  Options o;
  o.release = env_or("PANICSTOP_RELEASE", "");
  o.environment = env_or("PANICSTOP_ENVIRONMENT", "");
  if (int rc = parse_options(args, &o); rc != -1) return rc;
  if (!o.dsn.empty()) {
    if (!o.url.empty()) return usage_error("upload", "upload: give --url or --sentry-dsn, not both");
    std::string error;
    o.url = sentry_minidump_url(o.dsn, &error);
    if (o.url.empty()) return usage_error("upload", "upload: --sentry-dsn: " + error);
  }
  if (o.url.empty()) o.url = env_or("PANICSTOP_UPLOAD_URL", "");
  if (o.url.empty()) return usage_error("upload", "upload: no collector: give --url, --sentry-dsn or set PANICSTOP_UPLOAD_URL");
  if (std::string why = check_upload_url(o.url); !why.empty()) return usage_error("upload", "upload: " + why);
  if (o.dir.empty() == o.files.empty())
    return usage_error("upload", o.dir.empty() ? "upload: give --dir DIR or the dump FILEs" : "upload: give --dir or FILEs, not both");

  std::vector<Dump> dumps;
  if (!o.dir.empty()) {
    std::string error;
    dumps = pending_in(o.dir, &error);
    if (!error.empty()) {
      std::cerr << "panicstop: upload: " << error << "\n";
      return kExitFailure;
    }
    if (dumps.empty()) {
      std::cerr << "panicstop: upload: nothing pending in " << o.dir << "\n";
      return kExitOk;
    }
  } else {
    std::map<std::string, Dump> grouped;
    for (const std::string& f : o.files) {
      if (std::string why = not_a_dump(f); !why.empty()) {
        std::cerr << "panicstop: upload: " << f << ": " << why << "\n";
        return kExitFailure;
      }
      add_file(&grouped, f);
    }
    for (auto& [key, dump] : grouped) {
      if (dump.minidump.empty() && dump.report.empty()) {
        std::cerr << "panicstop: upload: " << dump.core << ": a core alone is not sent; give its .dmp or .txt too\n";
        return kExitFailure;
      }
      dumps.push_back(dump);
    }
  }

  Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(o.deadline_ms);
  size_t failed = 0;
  for (const Dump& d : dumps)
    if (!send_limited(o, d, deadline)) ++failed;
  if (failed > 0 && dumps.size() > 1)
    std::cerr << "panicstop: upload: " << failed << " of " << dumps.size() << " dumps not sent\n";
  return failed == 0 ? kExitOk : kExitFailure;
}

}  // namespace

std::string sentry_minidump_url(const std::string& dsn, std::string* error) {
  size_t scheme_end = dsn.find("://");
  size_t at = dsn.find('@');
  if (scheme_end == std::string::npos || at == std::string::npos || at < scheme_end) {
    *error = "'" + dsn + "' is not a DSN (expected https://KEY@HOST/PROJECT)";
    return "";
  }
  std::string scheme = dsn.substr(0, scheme_end);
  std::string key = dsn.substr(scheme_end + 3, at - scheme_end - 3);
  key = key.substr(0, key.find(':'));  // an old DSN's ":SECRET" is not needed
  std::string rest = dsn.substr(at + 1);
  size_t last = rest.rfind('/');
  if (key.empty() || last == std::string::npos || last == 0 || last + 1 == rest.size()) {
    *error = "'" + dsn + "' is not a DSN (expected https://KEY@HOST/PROJECT)";
    return "";
  }
  std::string host_and_path = rest.substr(0, last);
  std::string project = rest.substr(last + 1);
  return scheme + "://" + host_and_path + "/api/" + project + "/minidump/?sentry_key=" + key;
}

const Command kUploadCommand = {
    "upload",
    "send dumps to a crash collector (Sentry, Breakpad/Crashpad-style servers)",
    "panicstop upload [--url URL | --sentry-dsn DSN] [OPTIONS] (--dir DIR | FILE...)",
    kUploadHelp,
    run_upload,
};

}  // namespace panicstop::tool
