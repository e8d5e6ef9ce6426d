// `panicstop show` on the dumps of a panic that two threads ignored (one
// asleep in read(), one spinning; see dump/unstopped_threads.hpp): both the
// text report and the core read back with the "did not stop" line, the
// blocked thread's stack from the pc and sp /proc gave, and the spinning
// thread's "(no registers: ...)"; JSON carries the same as fields.
#include <gtest/gtest.h>

#include <sys/syscall.h>

#include <regex>
#include <string>

#include "dump/unstopped_threads.hpp"
#include "support/child_process.hpp"

namespace panicstop {
namespace {

using testing::ChildOptions;
using testing::ChildResult;
using testing::UnstoppedDumps;

UnstoppedDumps& dumps() { return testing::unstopped_dumps_once(); }

#define REQUIRE_DUMPS(d)                                                                      \
  ASSERT_FALSE((d).child.hung) << (d).child.describe() << "\n" << (d).child.output;           \
  ASSERT_TRUE((d).reader > 0 && (d).spinner > 0) << (d).child.output;                         \
  ASSERT_FALSE((d).report_path.empty()) << (d).child.output;                                  \
  ASSERT_FALSE((d).core_path.empty()) << (d).child.output

ChildResult show(const std::string& args_for_shell, const std::string& pipe_to = "") {
  std::string command = std::string("'") + PANICSTOP_TOOL_PATH + "' " + args_for_shell + " 2>/dev/null" +
                        (pipe_to.empty() ? "" : " | " + pipe_to);
  ChildOptions options;
  options.deadline = std::chrono::milliseconds(60000);
  return testing::run_command({"bash", "-c", "set -o pipefail; " + command}, options);
}

std::string block_of(const std::string& text, int tid) {
  size_t at = text.find("\nthread " + std::to_string(tid) + " ");
  if (at == std::string::npos) return "";
  size_t end = text.find("\n\n", at + 1);
  size_t next = text.find("\nthread ", at + 1);
  if (next < end) end = next;
  return text.substr(at + 1, end == std::string::npos ? std::string::npos : end - at);
}

void expect_unstopped_blocks(const std::string& out, const UnstoppedDumps& d) {
  std::string reader = block_of(out, d.reader);
  std::string tid = std::to_string(d.reader);
  EXPECT_EQ(reader.rfind("thread " + tid + " (unstop-reader) [not_stopped] S\n", 0), 0u) << out;
  EXPECT_NE(reader.find("  did not stop: state S, blocked in syscall " + std::to_string(SYS_read) + " (read)"),
            std::string::npos)
      << reader;
  EXPECT_NE(reader.find("hard-stop signal blocked; pc and sp from /proc/self/task/" + tid + "/syscall\n"),
            std::string::npos)
      << reader;
  EXPECT_TRUE(std::regex_search(reader, std::regex(R"(\n  #0 0x[0-9a-f]+ \S*read\S* \(\S*libc\.so)"))) << reader;
  EXPECT_NE(reader.find("unstopped_reader_in_read(int)+0x"), std::string::npos) << reader;

  std::string spinner = block_of(out, d.spinner);
  EXPECT_EQ(spinner, "thread " + std::to_string(d.spinner) +
                         " (unstop-spinner) [not_stopped] R\n"
                         "  did not stop: state R, running, hard-stop signal blocked; no registers\n"
                         "  (no registers: the thread was running)\n")
      << out;
}

TEST(ShowUnstopped, TextReport) {
  UnstoppedDumps& d = dumps();
  REQUIRE_DUMPS(d);
  ChildResult r = show("show '" + d.report_path + "'");
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  expect_unstopped_blocks(r.output, d);
  // show's output is itself a report, and reads back the same.
  testing::TempDir dir;
  std::string again = dir.path() + "/again.txt";
  FILE* f = fopen(again.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fwrite(r.output.data(), 1, r.output.size(), f);
  fclose(f);
  EXPECT_EQ(show("show '" + again + "'").output, r.output);
}

TEST(ShowUnstopped, Core) {
  UnstoppedDumps& d = dumps();
  REQUIRE_DUMPS(d);
  ChildResult r = show("show '" + d.core_path + "'");
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  expect_unstopped_blocks(r.output, d);
  std::string reader = block_of(r.output, d.reader);
  EXPECT_TRUE(std::regex_search(reader, std::regex(R"(\n  pc 0x[0-9a-f]+ sp 0x[0-9a-f]+\n)"))) << reader;
  EXPECT_EQ(r.output.find(" pc 0x0 "), std::string::npos) << r.output;
}

void expect_json(const std::string& file, const UnstoppedDumps& d) {
  if (!testing::have_program("python3")) GTEST_SKIP() << "python3 not installed";
  std::string script =
      "import json,sys; d=json.load(sys.stdin); t={x['tid']:x for x in d['threads']}; "
      "r=t[" + std::to_string(d.reader) + "]; s=t[" + std::to_string(d.spinner) + "]; "
      "assert r['stopped'] is False and r['register_source']=='kernel', r; "
      "assert r['syscall']==" + std::to_string(SYS_read) + " and r['syscall_name']=='read', r; "
      "assert r['no_registers'] is None and any('read' in (f['function'] or '') for f in r['frames']), r; "
      "assert s['stopped'] is False and s['register_source']=='none' and s['frames']==[], s; "
      "assert s['no_registers']=='the thread was running' and s['syscall'] is None, s; "
      "assert all('stopped' not in x for x in d['threads'] if x['tid'] not in (r['tid'], s['tid'])); "
      "print('ok')";
  ChildResult r = show("show --json '" + file + "'", "python3 -c \"" + script + "\"");
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe() << "\n" << r.output;
  EXPECT_EQ(r.output, "ok\n");
}

TEST(ShowUnstopped, JsonOfTheTextReport) {
  UnstoppedDumps& d = dumps();
  REQUIRE_DUMPS(d);
  expect_json(d.report_path, d);
}

TEST(ShowUnstopped, JsonOfTheCore) {
  UnstoppedDumps& d = dumps();
  REQUIRE_DUMPS(d);
  expect_json(d.core_path, d);
}

}  // namespace
}  // namespace panicstop
