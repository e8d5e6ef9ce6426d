#include "dump/dump_files.hpp"

#include <atomic>
#include <cerrno>
#include <fcntl.h>

#include "dump/dump_step.hpp"
#include "dump/writer.hpp"
#include "panic/tunables.hpp"
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

void fsync_directory(const char* dir) noexcept {
  long fd = sys::openat(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  sys::fsync(int(fd));
  sys::close(int(fd));
}

// Writes one file via its temporary name. On failure *err is -errno, or 0 when
// the writer itself reported the failure.
bool write_file(const ProcessSnapshot& snap, const Tunables& t, const DumpWriter& writer, const char* dir,
                const char* base, char* final_path, long* err) noexcept {
  char tmp_path[kPathMax];
  sys::format(tmp_path, sizeof tmp_path, "%s/.%s%s.tmp", dir, base, writer.suffix);
  sys::FixedWriter fw(final_path, kPathMax);
  fw.format("%s/%s%s", dir, base, writer.suffix);
  if (fw.truncated()) {
    *err = -ENAMETOOLONG;
    return false;
  }
  long fd = sys::openat(AT_FDCWD, tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    *err = fd;
    return false;
  }
  bool ok = writer.write(snap, t, int(fd));
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
  if (ok) {
    long r = sys::renameat(AT_FDCWD, tmp_path, AT_FDCWD, final_path);
    if (r < 0) ok = false, *err = r;
  }
  if (!ok) {
    sys::unlinkat(AT_FDCWD, tmp_path, 0);
    return false;
  }
  fsync_directory(dir);
  return true;
}

bool is_text_writer(const DumpWriter& w) noexcept { return sys::equals(w.suffix, ".txt"); }

}  // namespace

static int write_dumps_announced(const ProcessSnapshot& snap, const char* dir_override) noexcept;

const WrittenDumps& written_dumps() noexcept { return g_written; }

int write_dumps(const ProcessSnapshot& snap, const char* dir_override, int echo_fd) noexcept {
  g_echo_fd = echo_fd;
  g_written.count = 0;
  int written = write_dumps_announced(snap, dir_override);
  g_echo_fd = -1;
  return written;
}

static int write_dumps_announced(const ProcessSnapshot& snap, const char* dir_override) noexcept {
  const Tunables& t = tunables();
  static char dir[kPathMax];
  static char base[256];
  static char final_path[kPathMax];
  const char* chosen = dir_override != nullptr && dir_override[0] != '\0' ? dir_override
                       : t.dump_dir[0] != '\0'                             ? t.dump_dir
                                                                           : nullptr;
  if (chosen != nullptr) {
    sys::copy_string(dir, sizeof dir, chosen);
  } else {
    // The current directory, spelled out so the announced paths are absolute.
    long n = sys::readlinkat(AT_FDCWD, "/proc/self/cwd", dir, sizeof dir - 1);
    if (n <= 0 || dir[0] != '/') n = long(sys::copy_string(dir, sizeof dir, "."));
    dir[n] = '\0';
  }
  make_base_name(snap, base, sizeof base);

  size_t writer_count = 0;
  const DumpWriter* writers = dump_writers(&writer_count);
  bool use_dir = true;
  int written = 0;
  for (size_t i = 0; i < writer_count; ++i) {
    const DumpWriter& w = writers[i];
    if (!w.enabled(t)) continue;
    long err = 0;
    if (use_dir) {
      if (write_file(snap, t, w, dir, base, final_path, &err)) {
        say("panicstop: wrote %s", final_path);
        record_written(final_path);
        ++written;
        continue;
      }
      say("panicstop: cannot write %s: %s", final_path, errno_name(err));
      if (sys::equals(dir, "/tmp")) {
        if (is_text_writer(w)) {
          say("panicstop: writing the text report to stderr instead");
          w.write(snap, t, 2);
        }
        continue;
      }
      // The directory failed once; later files go straight to the fallback.
      use_dir = false;
      say("panicstop: falling back to /tmp");
    }
    if (write_file(snap, t, w, "/tmp", base, final_path, &err)) {
      say("panicstop: wrote %s", final_path);
      record_written(final_path);
      ++written;
      continue;
    }
    say("panicstop: cannot write %s: %s", final_path, errno_name(err));
    if (is_text_writer(w)) {
      say("panicstop: writing the text report to stderr instead");
      w.write(snap, t, 2);
    }
  }
  return written;
}

}  // namespace panicstop::detail
