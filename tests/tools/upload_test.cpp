// `panicstop upload` against the tests' own collector on 127.0.0.1: the
// multipart request (parts, file names, fields), the answers (2xx with an id,
// 4xx, 5xx, 429 with Retry-After, silence), the pending directory (sent once,
// never twice), bad input.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "support/child_process.hpp"
#include "tools/collector.hpp"

namespace {

using namespace std::chrono_literals;
using panicstop::testing::ChildOptions;
using panicstop::testing::ChildResult;
using panicstop::testing::Collector;
using panicstop::testing::read_file;
using panicstop::testing::Reply;
using panicstop::testing::run_command;
using panicstop::testing::TempDir;

const std::string kTool = PANICSTOP_TOOL_PATH;
const std::string kBase = "panicstop-app-42-1764000000";

void write(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}

// A fake dump: the command checks only the first bytes of each file. The
// minidump holds bytes a careless multipart encoder would mangle.
struct FakeDump {
  std::string dir, base, dmp, txt, core;
  std::string dmp_data = std::string("MDMP\x93\xa7\0\0\r\n--x\r\n\xff", 16) + std::string(3000, 'z');
  std::string txt_data = "panic: boom \"quoted\"\nthread 42 (main)\n";
  FakeDump(const std::string& d, const std::string& b = kBase, bool with_dmp = true) : dir(d), base(b) {
    txt = dir + "/" + base + ".txt";
    write(txt, txt_data);
    core = dir + "/" + base + ".core";
    write(core, "\x7f" "ELF core bytes");
    if (with_dmp) {
      dmp = dir + "/" + base + ".dmp";
      write(dmp, dmp_data);
    }
  }
  std::string marker() const { return dir + "/" + base + ".sent"; }
};

bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

std::string gunzip(const std::string& data) {
  z_stream z{};
  inflateInit2(&z, 16 + MAX_WBITS);
  std::string out(1 << 20, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = uInt(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = uInt(out.size());
  int rc = inflate(&z, Z_FINISH);
  out.resize(z.total_out);
  inflateEnd(&z);
  return rc == Z_STREAM_END ? out : "(not gzip)";
}

ChildResult upload(std::vector<std::string> args, int deadline_ms = 30000) {
  args.insert(args.begin(), {kTool, "upload"});
  ChildOptions o;
  o.deadline = std::chrono::milliseconds(deadline_ms);
  o.unset_env = {"PANICSTOP_UPLOAD_URL", "PANICSTOP_RELEASE", "PANICSTOP_ENVIRONMENT"};
  return run_command(args, o);
}

// A port nothing listens on: bound, then closed.
int closed_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

TEST(Upload, SendsTheMinidumpReportAndFieldsInOneMultipartPost) {
  TempDir dir;
  FakeDump dump(dir.path());
  Collector c;
  c.script({Reply{200, "{\"id\":\"5f2a9c0e7d1b4e3a\"}", {}, false}});
  ChildResult r = upload({"--url", c.url("/api/7/minidump/?sentry_key=k"), "--release", "1.2.3", "--environment",
                          "staging", "--field", "guid=0000-1111", dump.dmp, dump.txt, dump.core});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("sent " + kBase + ": 5f2a9c0e7d1b4e3a"), std::string::npos) << r.output;

  auto reqs = c.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const auto& q = reqs[0];
  EXPECT_EQ(q.method, "POST");
  EXPECT_EQ(q.target, "/api/7/minidump/?sentry_key=k");
  const auto* md = q.part("upload_file_minidump");
  ASSERT_NE(md, nullptr) << q.body;
  EXPECT_EQ(md->filename, kBase + ".dmp.gz");
  EXPECT_EQ(gunzip(md->data), dump.dmp_data);
  const auto* report = q.part("panicstop_report");
  ASSERT_NE(report, nullptr);
  EXPECT_EQ(report->filename, kBase + ".txt");
  EXPECT_EQ(report->data, dump.txt_data);
  EXPECT_EQ(q.part("panicstop_core"), nullptr) << "the core goes only with --core";
  ASSERT_NE(q.part("prod"), nullptr);
  EXPECT_EQ(q.part("prod")->data, "app");
  EXPECT_TRUE(q.part("prod")->filename.empty()) << "a field, not a file";
  ASSERT_NE(q.part("ver"), nullptr);
  EXPECT_EQ(q.part("ver")->data, "1.2.3");
  ASSERT_NE(q.part("guid"), nullptr);
  EXPECT_EQ(q.part("guid")->data, "0000-1111");
  const auto* sentry = q.part("sentry");
  ASSERT_NE(sentry, nullptr);
  EXPECT_NE(sentry->data.find("\"level\":\"fatal\""), std::string::npos) << sentry->data;
  EXPECT_NE(sentry->data.find("\"formatted\":\"boom \\\"quoted\\\"\""), std::string::npos) << sentry->data;
  EXPECT_NE(sentry->data.find("\"release\":\"1.2.3\""), std::string::npos) << sentry->data;
  EXPECT_NE(sentry->data.find("\"environment\":\"staging\""), std::string::npos) << sentry->data;
  // Sent: marked, and the files stay where they were.
  EXPECT_NE(read_file(dump.marker()).find("5f2a9c0e7d1b4e3a"), std::string::npos);
  EXPECT_TRUE(exists(dump.dmp) && exists(dump.txt) && exists(dump.core));
}

// Uploads one dump per text report, in order, and returns each one's Sentry
// event (empty where none came).
std::vector<std::string> sentry_events_of_reports(const std::vector<std::string>& reports) {
  TempDir dir;
  Collector c;
  std::vector<std::string> args = {"--url", c.url()};
  for (size_t i = 0; i < reports.size(); ++i) {
    FakeDump dump(dir.path(), "panicstop-app-" + std::to_string(43 + i) + "-1764000000");
    write(dump.txt, reports[i]);
    args.insert(args.end(), {dump.dmp, dump.txt});
  }
  ChildResult r = upload(args);
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  std::vector<std::string> events;
  for (const auto& q : c.requests()) events.push_back(q.part("sentry") != nullptr ? q.part("sentry")->data : "");
  EXPECT_EQ(events.size(), reports.size()) << r.output;
  events.resize(reports.size());
  return events;
}

// A live dump (`panicstop dump PID`, live_dump()) is no crash: the event is
// not fatal and carries the reason, not "(none)"; a crash's stays fatal.
TEST(Upload, ALiveDumpIsSentAsInfoNotAsACrash) {
  const std::string live =
      "panic: (none) live dump: requested by panicstop dump\nprocess 43 (app): app\n"
      "dumping thread 43 (app): dump requested\n1 threads: 0 stopped, 0 not stopped\n\n"
      "thread 43 (app) [dumping] R\n";
  // A panic whose message starts like a live dump's is still a crash.
  const std::string crash = "panic: (none) live dump\nprocess 44 (app): app\npanicking thread 44 (app): panic\n\n"
                            "thread 44 (app) [panicking] R\n  dumping thread 44 (app)\n";
  std::vector<std::string> events = sentry_events_of_reports({live, crash});
  const std::string &live_event = events[0], &crash_event = events[1];
  EXPECT_NE(live_event.find("\"level\":\"info\""), std::string::npos) << live_event;
  EXPECT_NE(live_event.find("\"formatted\":\"live dump: requested by panicstop dump\""), std::string::npos)
      << live_event;
  EXPECT_NE(live_event.find("\"panicstop.live_dump\":\"true\""), std::string::npos) << live_event;
  EXPECT_EQ(live_event.find("fatal"), std::string::npos) << live_event;
  EXPECT_NE(crash_event.find("\"level\":\"fatal\""), std::string::npos) << crash_event;
  EXPECT_NE(crash_event.find("\"formatted\":\"(none) live dump\""), std::string::npos) << crash_event;
  EXPECT_EQ(crash_event.find("panicstop.live_dump"), std::string::npos) << crash_event;
}

// A report cut short (a full disk) loses its last, partial line, not its
// verdict: a live dump cut inside a thread header is still no crash, and a
// report that does not parse at all is sent as a crash with its first line.
TEST(Upload, AReportCutShortIsJudgedByWhatWasWritten) {
  const std::string live_cut =
      "panic: (none) live dump: requested by panicstop dump\nprocess 45 (app): app\n"
      "dumping thread 45 (app): dump requested\n1 threads: 0 stopped, 0 not stopped\n\n"
      "thread 45 (app) [dumping] R\n  #0 0x401000 main+0x10 (app)\nthread 46 (ap";
  const std::string garbled = "panic: boom\nprocess 47 (app): app\n\nthread 47 app\n";
  std::vector<std::string> events = sentry_events_of_reports({live_cut, garbled});
  EXPECT_NE(events[0].find("\"level\":\"info\""), std::string::npos) << events[0];
  EXPECT_NE(events[0].find("\"formatted\":\"live dump: requested by panicstop dump\""), std::string::npos)
      << events[0];
  EXPECT_NE(events[1].find("\"level\":\"fatal\""), std::string::npos) << events[1];
  EXPECT_NE(events[1].find("\"formatted\":\"boom\""), std::string::npos) << events[1];
}

TEST(Upload, CoreAndUncompressedMinidumpWhenAsked) {
  TempDir dir;
  FakeDump dump(dir.path());
  Collector c;
  ChildResult r = upload({"--url", c.url(), "--core", "--no-gzip", "--product", "srv", dump.dmp, dump.core});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  auto reqs = c.requests();
  ASSERT_EQ(reqs.size(), 1u);
  ASSERT_NE(reqs[0].part("upload_file_minidump"), nullptr);
  EXPECT_EQ(reqs[0].part("upload_file_minidump")->filename, kBase + ".dmp");
  EXPECT_EQ(reqs[0].part("upload_file_minidump")->data, dump.dmp_data);
  ASSERT_NE(reqs[0].part("panicstop_core"), nullptr);
  EXPECT_EQ(reqs[0].part("panicstop_core")->filename, kBase + ".core");
  EXPECT_EQ(reqs[0].part("prod")->data, "srv");
}

TEST(Upload, WithoutAMinidumpTheReportTakesItsPartAndStderrSaysSo) {
  TempDir dir;
  FakeDump dump(dir.path(), kBase, false);
  Collector c;
  ChildResult r = upload({"--url", c.url(), dump.txt});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("no minidump was written"), std::string::npos) << r.output;
  auto reqs = c.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const auto* md = reqs[0].part("upload_file_minidump");
  ASSERT_NE(md, nullptr);
  EXPECT_EQ(md->filename, kBase + ".txt");
  EXPECT_EQ(md->data, dump.txt_data);
}

TEST(Upload, SentryDsnBecomesTheMinidumpEndpoint) {
  TempDir dir;
  FakeDump dump(dir.path());
  Collector c;
  std::string dsn = "http://pubkey:oldsecret@127.0.0.1:" + std::to_string(c.port()) + "/sentry/42";
  ChildResult r = upload({"--sentry-dsn", dsn, dump.dmp});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  auto reqs = c.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].target, "/sentry/api/42/minidump/?sentry_key=pubkey");
  ChildResult bad = upload({"--sentry-dsn", "https://sentry.example/42", dump.dmp});
  EXPECT_TRUE(bad.exited && bad.exit_code == 2) << bad.describe();
  EXPECT_NE(bad.output.find("not a DSN"), std::string::npos) << bad.output;
}

TEST(Upload, ServerErrorIsRetriedThenReportedWithTheAnswersFirstLine) {
  TempDir dir;
  FakeDump dump(dir.path());
  Collector c;
  c.script({Reply{500, "database is down\nstack trace that must not be printed", {}, false}});
  ChildResult r = upload({"--url", c.url(), "--retries", "1", dump.dmp});
  ASSERT_TRUE(r.exited && r.exit_code == 1) << r.describe() << "\n" << r.output;
  EXPECT_EQ(c.requests().size(), 2u) << "one attempt and one retry";
  EXPECT_NE(r.output.find("HTTP 500 from " + c.url() + ": database is down"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("stack trace"), std::string::npos) << r.output;
  EXPECT_FALSE(exists(dump.marker())) << "a failed dump stays pending";
}

TEST(Upload, ClientErrorIsNotRetried) {
  TempDir dir;
  FakeDump dump(dir.path());
  Collector c;
  c.script({Reply{403, "{\"detail\":\"bad sentry key\"}", {}, false}});
  ChildResult r = upload({"--url", c.url(), "--retries", "3", dump.dmp});
  ASSERT_TRUE(r.exited && r.exit_code == 1) << r.describe() << "\n" << r.output;
  EXPECT_EQ(c.requests().size(), 1u);
  EXPECT_NE(r.output.find("HTTP 403"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("bad sentry key"), std::string::npos) << r.output;
}

TEST(Upload, UnavailableThenAcceptedSendsOnce) {
  TempDir dir;
  FakeDump dump(dir.path());
  Collector c;
  c.script({Reply{503, "busy", {}, false}, Reply{}});
  ChildResult r = upload({"--url", c.url(), dump.dmp});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_EQ(c.requests().size(), 2u);
  EXPECT_TRUE(exists(dump.marker()));
}

TEST(Upload, TooManyRequestsWaitsForRetryAfter) {
  TempDir dir;
  FakeDump dump(dir.path());
  Collector c;
  c.script({Reply{429, "slow down", {"Retry-After: 2"}, false}, Reply{}});
  auto start = std::chrono::steady_clock::now();
  ChildResult r = upload({"--url", c.url(), dump.dmp});
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_EQ(c.requests().size(), 2u);
  EXPECT_NE(r.output.find("trying again in 2000 ms"), std::string::npos) << r.output;
  EXPECT_GE(took, 2s) << "the second try came before Retry-After allowed it";
  // A delay past the deadline is not waited for: the dump stays pending.
  Collector limited;
  limited.script({Reply{429, "", {"X-Sentry-Rate-Limits: 3600:error:organization"}, false}});
  ChildResult later = upload({"--url", limited.url(), "--deadline-ms", "5000", dump.dmp});
  EXPECT_TRUE(later.exited && later.exit_code == 1) << later.describe() << "\n" << later.output;
  EXPECT_EQ(limited.requests().size(), 1u);
  EXPECT_NE(later.output.find("would pass the deadline"), std::string::npos) << later.output;
}

TEST(Upload, RefusedConnectionIsSaid) {
  TempDir dir;
  FakeDump dump(dir.path());
  std::string url = "http://127.0.0.1:" + std::to_string(closed_port()) + "/submit";
  ChildResult r = upload({"--url", url, "--retries", "0", dump.dmp});
  ASSERT_TRUE(r.exited && r.exit_code == 1) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("connection refused"), std::string::npos) << r.output;
  EXPECT_FALSE(exists(dump.marker()));
}

TEST(Upload, SilentServerTimesOutWithinTheBound) {
  TempDir dir;
  FakeDump dump(dir.path());
  Collector c;
  c.script({Reply{200, "", {}, true}});
  auto start = std::chrono::steady_clock::now();
  ChildResult r = upload({"--url", c.url(), "--timeout-ms", "500", "--retries", "1", dump.dmp}, 20000);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.exited && r.exit_code == 1) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("no answer within 500 ms"), std::string::npos) << r.output;
  EXPECT_EQ(c.requests().size(), 2u);
  // Two attempts of 0.5 s and one wait of 1 s, with room for a loaded machine.
  EXPECT_LT(took, 10s);
}

TEST(Upload, PendingDirectorySendsEachDumpOnceNeverTwice) {
  TempDir dir;
  FakeDump first(dir.path(), "panicstop-app-42-1764000000");
  FakeDump second(dir.path(), "panicstop-app-43-1764000100", false);
  FakeDump old(dir.path(), "panicstop-app-41-1763000000");
  write(old.marker(), "id: earlier\n");
  // The collector is down: nothing is marked.
  std::string down = "http://127.0.0.1:" + std::to_string(closed_port()) + "/submit";
  ChildResult r = upload({"--url", down, "--retries", "0", "--dir", dir.path()});
  EXPECT_TRUE(r.exited && r.exit_code == 1) << r.describe() << "\n" << r.output;
  EXPECT_FALSE(exists(first.marker()) || exists(second.marker()));

  Collector c;
  r = upload({"--url", c.url(), "--pending", dir.path()});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  auto reqs = c.requests();
  ASSERT_EQ(reqs.size(), 2u) << r.output;
  EXPECT_EQ(reqs[0].part("upload_file_minidump")->filename, first.base + ".dmp.gz");
  EXPECT_EQ(reqs[1].part("upload_file_minidump")->filename, second.base + ".txt");
  EXPECT_TRUE(exists(first.marker()) && exists(second.marker()));

  r = upload({"--url", c.url(), "--dir", dir.path()});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_NE(r.output.find("nothing pending"), std::string::npos) << r.output;
  EXPECT_EQ(c.requests().size(), 2u) << "a sent dump was sent again";
}

// A report as the writer makes it: the panicking thread's frames at addresses
// that move from run to run (ASLR), in an executable with a build id.
std::string report_of(const std::string& top_function, unsigned long base) {
  char frames[512];
  std::snprintf(frames, sizeof frames,
                "thread 7 (main) [panicking] R\n  #0 0x%lx %s+0x12 (app)\n  #1 0x%lx main+0x40 (app)\n\n"
                "thread 8 (worker) S\n  #0 0x%lx futex_wait+0x3 (libc.so.6)\n\n",
                base + 0x1012, top_function.c_str(), base + 0x2040, base + 0x9000);
  return "panic: boom\n" + std::string(frames) +
         "modules:\n  0x1000-0x2000 /usr/bin/app build-id=00112233445566778899aabbccddeeff00112233 (executable)\n";
}

TEST(Upload, ACrashLoopIsHeldBackPerSignatureAndCountedInTheNextUpload) {
  TempDir dir;
  std::vector<std::string> same;
  for (int i = 0; i < 3; ++i) {
    std::string base = "panicstop-app-" + std::to_string(100 + i) + "-1764000000";
    write(dir.path() + "/" + base + ".txt", report_of("parse_header", 0x55550000ul + 0x100000ul * i));
    same.push_back(base);
  }
  std::string other = "panicstop-app-200-1764000000";
  write(dir.path() + "/" + other + ".txt", report_of("flush_cache", 0x66660000ul));
  Collector c;
  ChildResult r = upload({"--url", c.url(), "--limit-per-hour", "2", "--dir", dir.path()});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  auto reqs = c.requests();
  ASSERT_EQ(reqs.size(), 3u) << r.output;
  EXPECT_NE(r.output.find("held " + same[2] + ": 2 dumps of this crash"), std::string::npos) << r.output;
  EXPECT_TRUE(exists(dir.path() + "/" + same[2] + ".held"));
  EXPECT_TRUE(exists(dir.path() + "/" + other + ".sent")) << "another signature has its own count";
  for (const auto& q : reqs) EXPECT_EQ(q.part("held_back"), nullptr);

  // Held back is not pending: --dir leaves it alone.
  r = upload({"--url", c.url(), "--limit-per-hour", "2", "--dir", dir.path()});
  EXPECT_NE(r.output.find("nothing pending"), std::string::npos) << r.output;
  // Named explicitly without a limit, it goes, and says how many were held.
  r = upload({"--url", c.url(), "--limit-per-hour", "0", dir.path() + "/" + same[2] + ".txt"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  reqs = c.requests();
  ASSERT_EQ(reqs.size(), 4u);
  ASSERT_NE(reqs[3].part("held_back"), nullptr);
  EXPECT_EQ(reqs[3].part("held_back")->data, "1");
  EXPECT_NE(reqs[3].part("sentry")->data.find("\"panicstop.held_back\":1"), std::string::npos);
}

TEST(Upload, BadInputGetsOneLineAndAnExitStatus) {
  TempDir dir;
  FakeDump dump(dir.path());
  write(dir.path() + "/notes.txt", "hello\n");
  write(dir.path() + "/fake.dmp", "PK\3\4 not a minidump");
  struct Case {
    std::vector<std::string> args;
    int status;
    std::string says;
  } cases[] = {
      {{"--url", "ftp://127.0.0.1/x", dump.dmp}, 2, "http or https only"},
      {{"--url", "http//missing-colon", dump.dmp}, 2, "is not a URL"},
      {{dump.dmp}, 2, "no collector"},
      {{"--url", "http://127.0.0.1:9/", dir.path() + "/notes.txt"}, 1, "not a panicstop text report"},
      {{"--url", "http://127.0.0.1:9/", dir.path() + "/fake.dmp"}, 1, "not a minidump"},
      {{"--url", "http://127.0.0.1:9/", dir.path() + "/missing.dmp"}, 1, "No such file"},
      {{"--url", "http://127.0.0.1:9/", dump.core}, 1, "a core alone is not sent"},
      {{"--url", "http://127.0.0.1:9/", "--dir", "/etc"}, 1, "holds no panicstop dumps"},
      {{"--url", "http://127.0.0.1:9/", "--dir", dir.path() + "/nope"}, 1, "No such file"},
      {{"--url", "http://127.0.0.1:9/", "--retries", "x", dump.dmp}, 2, "--retries takes a number"},
      {{"--url", "http://127.0.0.1:9/", "--frob", dump.dmp}, 2, "unknown option"},
  };
  for (const Case& k : cases) {
    ChildResult r = upload(k.args, 10000);
    EXPECT_TRUE(r.exited && r.exit_code == k.status) << k.says << ": " << r.describe() << "\n" << r.output;
    EXPECT_NE(r.output.find(k.says), std::string::npos) << r.output;
  }
}

TEST(Upload, HelpExplainsTheWireAndTheDsn) {
  ChildResult r = run_command({kTool, "help", "upload"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  for (const char* s : {"upload_file_minidump", "sentry_key=KEY", "--dir", "PANICSTOP_UPLOAD_URL",
                        "PANICSTOP_UPLOAD_TIMEOUT_MS", "Retry-After", ".sent"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s;
  ChildResult list = run_command({kTool, "--help"});
  EXPECT_NE(list.output.find("upload"), std::string::npos);
}

}  // namespace
