#include "dump/dump_files.hpp"

#include <atomic>
#include <cerrno>
#include <fcntl.h>

#include "stop/proc_dir.hpp"
#include "sys/format.hpp"
#include "sys/syscall.hpp"

namespace panicstop::detail {

namespace {

constexpr size_t kPathMax = kDumpPathMax;

WrittenDumps g_written;

void record_written(const char* path) noexcept {
  if (g_written.count < kMaxDumpFiles) sys::copy_string(g_written.paths[g_written.count++], kPathMax, path);
}

// Live dumps of one process in one second get distinct names.
std::atomic<uint32_t> g_dumps_this_process{0};
int64_t g_last_dump_second = -1;

const char* errno_name(long err) noexcept {
  switch (-err) {
    case 0: return "the writer failed";
    case EACCES: return "permission denied (EACCES)";
    case EPERM: return "not permitted (EPERM)";
    case ENOENT: return "no such directory (ENOENT)";
    case ENOTDIR: return "not a directory (ENOTDIR)";
    case EROFS: return "read-only file system (EROFS)";
    case ENOSPC: return "no space left (ENOSPC)";
    case EDQUOT: return "quota exceeded (EDQUOT)";
    case EIO: return "I/O error (EIO)";
    case EFBIG: return "file too large (EFBIG)";
    case ENAMETOOLONG: return "name too long (ENAMETOOLONG)";
    case EMFILE: return "too many open files (EMFILE)";
    default: return "error";
  }
}

// Every line goes to stderr, and to echo_fd too when a remote requester
// (`panicstop dump PID`) waits for the names.
int g_echo_fd = -1;

// The current set (begin_dump_set).
char g_dir[kPathMax];
// Where files are created: AT_FDCWD (names under g_dir), or a directory
// descriptor the requester of a live dump passed (names relative to it;
// g_dir is then only what the lines announce).
int g_dir_fd = AT_FDCWD;
char g_base[256];
char g_final_path[kPathMax];
bool g_use_dir = true;
// A temporary file being written, and its descriptor: left set only when a
// writer was abandoned mid-file (a fault or an overrun of its step).
char g_pending_tmp[kPathMax];
int g_pending_at = AT_FDCWD;
int g_pending_fd = -1;

void remove_abandoned_file() noexcept;

void say(const char* fmt, ...) noexcept __attribute__((format(printf, 1, 2)));
void say(const char* fmt, ...) noexcept {
  char line[kPathMax + 256];
  va_list ap;
  va_start(ap, fmt);
  size_t n = sys::vformat_line(line, sizeof line, fmt, ap);
  va_end(ap);
  sys::write_stderr(line, n);  // never wait for stderr before the next file
  if (g_echo_fd >= 0) sys::send_all(g_echo_fd, line, n);
}

// "panicstop-COMM-PID-SECONDS[-N]"
void make_base_name(const ProcessSnapshot& snap, char* out, size_t cap) noexcept {
  char comm[sizeof snap.comm];
  size_t n = sys::copy_string(comm, sizeof comm, snap.comm);
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(comm[i]);
    if (c <= ' ' || c == '/' || c >= 0x7f) comm[i] = '_';
  }
  if (n == 0) sys::copy_string(comm, sizeof comm, "process");
  int64_t seconds = snap.captured_ns / 1000000000;
  uint32_t repeat = 0;
  if (seconds == g_last_dump_second)
    repeat = g_dumps_this_process.fetch_add(1) + 1;
  else
    g_dumps_this_process.store(0);
  g_last_dump_second = seconds;
  sys::FixedWriter w(out, cap);
  w.format("panicstop-%s-%d-%lld", comm, snap.pid, static_cast<long long>(seconds));
  if (repeat > 0) w.format("-%u", repeat + 1);
}

void fsync_directory(int at, const char* dir) noexcept {
  if (at != AT_FDCWD) {
    sys::fsync(at);  // EBADF for an O_PATH descriptor: nothing to do then
    return;
  }
  long fd = sys::openat(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  sys::fsync(int(fd));
  sys::close(int(fd));
}

// Writes one file via its temporary name, in directory `dir`: created under
// it, or relative to `at` when that is a descriptor (then `dir` only names
// it in final_path). On failure *err is -errno, or 0 when the writer itself
// reported the failure.
bool write_file(const CrashRecord& rec, const DumpOptions& o, const DumpWriter& writer, int at, const char* dir,
                const char* base, char* final_path, long* err) noexcept {
  const char* prefix = at == AT_FDCWD ? dir : "";
  const char* slash = at == AT_FDCWD ? "/" : "";
  char tmp_name[kPathMax], final_name[kPathMax];
  sys::FixedWriter tw(tmp_name, kPathMax), nw(final_name, kPathMax), fw(final_path, kPathMax);
  tw.format("%s%s.%s%s.tmp", prefix, slash, base, writer.suffix);
  nw.format("%s%s%s%s", prefix, slash, base, writer.suffix);
  fw.format("%s/%s%s", dir, base, writer.suffix);
  if (tw.truncated() || nw.truncated() || fw.truncated()) {
    *err = -ENAMETOOLONG;
    return false;
  }
  sys::copy_string(g_pending_tmp, sizeof g_pending_tmp, tmp_name);
  g_pending_at = at;
  long fd = sys::openat(at, tmp_name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    g_pending_tmp[0] = '\0';
    *err = fd;
    return false;
  }
  g_pending_fd = int(fd);
  bool ok = writer.write(rec, o, int(fd));
  *err = 0;
  if (!ok) {
    // Writers only say that they failed; one more byte at the end tells why
    // (ENOSPC, EFBIG, EIO). The file is removed anyway.
    long end = sys::lseek(int(fd), 0, SEEK_END);
    long r = end < 0 ? end : sys::raw_syscall(SYS_pwrite64, fd, "\n", 1, end);
    if (r < 0) *err = r;
  }
  if (ok) {
    long r = sys::fsync(int(fd));
    // fsync is where a full disk often shows up first.
    if (r < 0 && r != -EINVAL) ok = false, *err = r;
  }
  sys::close(int(fd));
  g_pending_fd = -1;
  if (ok) {
    long r = sys::renameat(at, tmp_name, at, final_name);
    if (r < 0) ok = false, *err = r;
  }
  if (!ok) sys::unlinkat(at, tmp_name, 0);
  g_pending_tmp[0] = '\0';
  if (!ok) return false;
  fsync_directory(at, dir);
  return true;
}

void remove_abandoned_file() noexcept {
  if (g_pending_fd >= 0) sys::close(g_pending_fd);
  g_pending_fd = -1;
  if (g_pending_tmp[0] == '\0') return;
  sys::unlinkat(g_pending_at, g_pending_tmp, 0);
  say("panicstop: removed the unfinished %s", g_pending_tmp);
  g_pending_tmp[0] = '\0';
}

// A directory refused to a process that is no longer the user it was at
// install: a server's worker that dropped root. Said beside the refusal,
// with what fixes it.
void say_changed_user(const DumpOptions& o, long err) noexcept {
  if (err != -EACCES && err != -EPERM) return;
  long euid = sys::raw_syscall(SYS_geteuid);
  if (o.installed_euid < 0 || euid == o.installed_euid) return;
  say("panicstop: this process runs as uid %ld, not as uid %lld as at install (it changed its user): give that "
      "user the dump directory (chmod 1777 it, as /tmp is)",
      euid, static_cast<long long>(o.installed_euid));
}

void write_to_stderr_instead(const CrashRecord& rec, const DumpOptions& o, const DumpWriter& w) noexcept {
  if (!w.stderr_fallback || !sys::stderr_takes_messages()) return;
  say("panicstop: writing the %s report to stderr instead", w.name);
  w.write(rec, o, 2);
}

}  // namespace

const WrittenDumps& written_dumps() noexcept { return g_written; }

void begin_dump_set(const CrashRecord& rec, const DumpOptions& o, const char* dir_override, int echo_fd,
                    int dir_fd) noexcept {
  g_echo_fd = echo_fd;
  g_dir_fd = dir_fd >= 0 && dir_override != nullptr && dir_override[0] != '\0' ? dir_fd : AT_FDCWD;
  g_use_dir = true;
  g_written.count = 0;
  g_pending_tmp[0] = '\0';
  g_pending_fd = -1;
  const char* chosen = dir_override != nullptr && dir_override[0] != '\0' ? dir_override
                       : o.dir[0] != '\0'                                 ? o.dir
                                                                           : nullptr;
  if (chosen != nullptr) {
    sys::copy_string(g_dir, sizeof g_dir, chosen);
  } else {
    // The current directory, spelled out so the announced paths are absolute:
    // the link itself (O_PATH | O_NOFOLLOW) is opened, then read with an empty name.
    long n = -1;
    long link = proc_open(ProcScope::kProcess, "cwd", O_PATH | O_NOFOLLOW);
    if (link >= 0) {
      n = sys::readlinkat(int(link), "", g_dir, sizeof g_dir - 1);
      sys::close(int(link));
    }
    if (n <= 0 || g_dir[0] != '/') n = long(sys::copy_string(g_dir, sizeof g_dir, "."));
    g_dir[n] = '\0';
  }
  make_base_name(rec.snap(), g_base, sizeof g_base);
}

bool write_dump(const CrashRecord& rec, const DumpOptions& o, const DumpWriter& w) noexcept {
  remove_abandoned_file();
  if (w.refusal != nullptr) {
    if (const char* why = w.refusal(o)) {
      say("panicstop: no %s: %s", w.name, why);
      return false;
    }
  }
  long err = 0;
  if (g_use_dir) {
    if (write_file(rec, o, w, g_dir_fd, g_dir, g_base, g_final_path, &err)) {
      say("panicstop: wrote %s", g_final_path);
      record_written(g_final_path);
      return true;
    }
    say("panicstop: cannot write %s: %s", g_final_path, errno_name(err));
    say_changed_user(o, err);
    if (g_dir_fd == AT_FDCWD && sys::equals(g_dir, "/tmp")) {
      write_to_stderr_instead(rec, o, w);
      return false;
    }
    // The directory failed once; later files go straight to the fallback.
    g_use_dir = false;
    say("panicstop: falling back to /tmp");
  }
  if (write_file(rec, o, w, AT_FDCWD, "/tmp", g_base, g_final_path, &err)) {
    say("panicstop: wrote %s", g_final_path);
    record_written(g_final_path);
    return true;
  }
  say("panicstop: cannot write %s: %s", g_final_path, errno_name(err));
  write_to_stderr_instead(rec, o, w);
  return false;
}

void end_dump_set() noexcept {
  remove_abandoned_file();
  g_echo_fd = -1;
  g_dir_fd = AT_FDCWD;
}

int write_dumps(const CrashRecord& rec, const DumpOptions& o, const char* dir_override, int echo_fd,
                int dir_fd) noexcept {
  begin_dump_set(rec, o, dir_override, echo_fd, dir_fd);
  size_t count = 0;
  const DumpWriter* writers = dump_writers(&count);
  int written = 0;
  for (uint32_t i = 0; i < o.order_count; ++i)
    if (o.order[i] < count && write_dump(rec, o, writers[o.order[i]])) ++written;
  end_dump_set();
  return written;
}

}  // namespace panicstop::detail
