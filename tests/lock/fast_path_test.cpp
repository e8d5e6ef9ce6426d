// docs/DESIGN.md, section 4, invariant 1, checked on the machine code the compiler made:
// every lock fast path is one atomic read-modify-write, and none of them reads
// the stopped-scheduler flag. The probes (fast_path_probe.cpp) are the inline
// fast paths compiled out of line at -O2; this test disassembles them from its
// own binary with objdump and reads each instruction:
//   - exactly one locked read-modify-write (lock-prefixed, or xchg with memory);
//   - no %fs-relative (TLS) access to tls_scheduler_stopped: the address of
//     each TLS access is resolved (direct %fs:OFFSET, or the linker-relaxed
//     `mov $OFFSET,%reg` + `%fs:(%reg)` of initial-exec TLS) and compared with
//     the flag's offset from the thread pointer, measured at run time;
//   - nothing leaves the probe except a call or jump to an out-of-line hard
//     path (`*_hard`), claim_current_slot, or the spinlock section's slow paths,
//     so a check hidden in some other out-of-line helper is caught too.
// aarch64 (fast_path_aarch64.hpp) reads its own instructions the same way,
// counting along each path through the probe, since gcc there copies the
// read-modify-write into both arms of a branch: an LSE atomic, a call to
// libgcc's outline atomic (__aarch64_cas8_acq...), or an exclusive store
// ending an ldaxr/stlxr loop is one read-modify-write, and no path may hold
// two. TLS is addressed from tpidr_el0. Skipped without objdump, and in
// sanitizer, unoptimized or WITNESS builds (which add checks to the fast
// paths on purpose).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "lock/fast_path_probe.hpp"

namespace {

struct FastPath {
  std::string listing;                    // the probe as objdump printed it, for failure messages
  int instructions = 0;
  int locked_rmw = 0;                     // lock-prefixed instructions and xchg with a memory operand
  std::set<int64_t> tls_offsets;          // resolved %fs-relative accesses, as offsets from the thread pointer
  std::vector<std::string> unresolved;    // %fs-relative accesses whose offset could not be resolved
  std::vector<std::string> exits;         // functions the probe calls or jumps to (other than itself)
};

std::string self_exe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  return std::string(buf, size_t(n));
}

#if !defined(PANICSTOP_OBJDUMP)
#define PANICSTOP_OBJDUMP "objdump"
#endif
// The build's objdump (a cross build's disassembles the target's code). Under
// qemu-user, popen() runs the host's shell and this objdump natively.
const std::string kObjdump = PANICSTOP_OBJDUMP;

bool objdump_available() { return std::system((kObjdump + " --version >/dev/null 2>&1").c_str()) == 0; }

std::string trim(std::string s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

[[maybe_unused]] std::optional<int64_t> parse_hex(const std::string& s, size_t pos, size_t* end) {
  if (s.compare(pos, 2, "0x") != 0) return std::nullopt;
  size_t i = pos + 2;
  uint64_t v = 0;
  size_t digits = 0;
  for (; i < s.size() && isxdigit(static_cast<unsigned char>(s[i])); ++i, ++digits)
    v = v * 16 + uint64_t(isdigit(static_cast<unsigned char>(s[i])) ? s[i] - '0' : (tolower(s[i]) - 'a' + 10));
  if (digits == 0) return std::nullopt;
  *end = i;
  return int64_t(v);  // objdump prints negative displacements sign-extended to 64 bits
}

// The register a `(%reg)` operand at pos names, or "".
[[maybe_unused]] std::string register_in_parens(const std::string& s, size_t pos) {
  if (pos >= s.size() || s[pos] != '(') return {};
  size_t close = s.find(')', pos);
  if (close == std::string::npos || s.find(',', pos) < close) return {};
  return s.substr(pos + 1, close - pos - 1);
}

// The instruction lines ("ADDRESS:\tINSTRUCTION") of one probe as objdump
// prints them, demangled; the listing, header included, goes to fp->listing.
std::vector<std::string> probe_lines(const std::string& exe, const std::string& symbol, FastPath* fp) {
  std::vector<std::string> lines;
  std::string cmd = kObjdump + " -d -C --no-show-raw-insn --disassemble=" + symbol + " '" + exe + "' 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return lines;
  bool inside = false;
  char line[1024];
  while (fgets(line, sizeof line, pipe) != nullptr) {
    std::string l(line);
    if (l.find("<" + symbol + ">:") != std::string::npos) {
      inside = true;
      fp->listing += l;
      continue;
    }
    if (!inside) continue;
    if (l.find(":\t") == std::string::npos) {
      if (trim(l).empty()) break;  // end of the function
      continue;
    }
    fp->listing += l;
    lines.push_back(l);
  }
  pclose(pipe);
  return lines;
}

#if defined(__aarch64__)
#include "lock/fast_path_aarch64.hpp"
#else
// The instructions of one probe, parsed (see the file comment).
FastPath disassemble(const std::string& exe, const std::string& symbol) {
  FastPath fp;
  std::map<std::string, int64_t> immediates;  // register -> value of the last `mov $imm,%reg`
  for (const std::string& l : probe_lines(exe, symbol, &fp)) {
    size_t tab = l.find(":\t");
    std::string insn = trim(l.substr(tab + 2));
    if (size_t hash = insn.find(" #"); hash != std::string::npos) insn = trim(insn.substr(0, hash));
    if (insn.empty()) continue;
    ++fp.instructions;
    std::string mnemonic = insn.substr(0, insn.find(' '));
    std::string operands = mnemonic.size() < insn.size() ? trim(insn.substr(mnemonic.size())) : std::string();

    if (mnemonic == "lock" || (mnemonic.rfind("xchg", 0) == 0 && operands.find('(') != std::string::npos))
      ++fp.locked_rmw;

    for (size_t at = operands.find("%fs:"); at != std::string::npos; at = operands.find("%fs:", at + 4)) {
      size_t p = at + 4, end = 0;
      if (auto off = parse_hex(operands, p, &end); off && (end >= operands.size() || operands[end] != '(')) {
        fp.tls_offsets.insert(*off);
      } else if (std::string reg = register_in_parens(operands, p); !reg.empty() && immediates.count(reg) != 0) {
        fp.tls_offsets.insert(immediates[reg]);
      } else {
        fp.unresolved.push_back(insn);
      }
    }

    if (mnemonic[0] == 'j' || mnemonic.rfind("call", 0) == 0) {
      size_t open = operands.find('<');
      size_t close = operands.rfind('>');
      if (open == std::string::npos || close == std::string::npos) {
        fp.exits.push_back("indirect: " + insn);
      } else {
        std::string target = operands.substr(open + 1, close - open - 1);
        bool self = target == symbol || target.rfind(symbol + "+", 0) == 0;
        if (!self) fp.exits.push_back(target);
      }
    }

    // Track `mov $imm,%reg` for the relaxed initial-exec pattern; any other
    // write to a register forgets what it held.
    size_t comma = operands.rfind(',');
    std::string dest = comma == std::string::npos ? operands : operands.substr(comma + 1);
    if (!dest.empty() && dest[0] == '%') {
      size_t end = 0;
      std::optional<int64_t> imm;
      if (mnemonic.rfind("mov", 0) == 0 && operands.rfind("$", 0) == 0) imm = parse_hex(operands, 1, &end);
      if (imm && end == comma)
        immediates[dest] = *imm;
      else
        immediates.erase(dest);
    }
  }
  return fp;
}
#endif

// The offset of a TLS variable from the thread pointer (x86_64: %fs:0 holds
// the thread pointer itself), as linker-relaxed code addresses it.
int64_t tls_offset(const void* variable) {
  uintptr_t thread_pointer;
#if defined(__aarch64__)
  asm volatile("mrs %0, tpidr_el0" : "=r"(thread_pointer));
#else
  asm volatile("mov %%fs:0, %0" : "=r"(thread_pointer));
#endif
  return int64_t(reinterpret_cast<uintptr_t>(variable) - thread_pointer);
}

bool allowed_exit(const std::string& target) {
  for (const char* ok : {"_hard(", "claim_current_slot(", "spinlock_replay_deferred(", "blocking_section_"})
    if (target.find(ok) != std::string::npos) return true;
  // libgcc's outline atomics (counted as the read-modify-write they are).
  for (const char* ok : {"__aarch64_cas", "__aarch64_swp", "__aarch64_ldadd", "__aarch64_ldclr", "__aarch64_ldeor",
                         "__aarch64_ldset"})
    if (target.find(ok) != std::string::npos) return true;
  return false;
}

class FastPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
#if !defined(__x86_64__) && !defined(__aarch64__)
    GTEST_SKIP() << "the instruction checks are written for x86_64 and aarch64";
#endif
    ASSERT_NE(&probe_build_flags, nullptr)
        << "fast_path_probe.cpp is not linked in: tests/lock/CMakeLists.txt must include fast_path.cmake";
    if ((probe_build_flags() & kProbeOptimized) == 0) GTEST_SKIP() << "probes not compiled with optimization";
    if ((probe_build_flags() & kProbeSanitized) != 0) GTEST_SKIP() << "sanitizer instrumentation changes the fast paths";
    if ((probe_build_flags() & kProbeWitness) != 0) GTEST_SKIP() << "WITNESS hooks are compiled into the fast paths";
    if (!objdump_available()) GTEST_SKIP() << "objdump not found";
    exe_ = self_exe();
    ASSERT_FALSE(exe_.empty());
    stopped_offset_ = tls_offset(&panicstop::detail::tls_scheduler_stopped);
  }

  // Checks one probe; `symbol` must be a probe the binary contains.
  void check(const char* symbol) {
    SCOPED_TRACE(symbol);
    FastPath fp = disassemble(exe_, symbol);
    ASSERT_GT(fp.instructions, 0) << "objdump printed no instructions for " << symbol << ":\n" << fp.listing;
    EXPECT_EQ(fp.locked_rmw, 1) << "a fast path must be exactly one atomic read-modify-write:\n" << fp.listing;
    // Every fast path reads some thread-local (the owner slot or the shared
    // hold count); not finding one means the parser no longer understands
    // the compiler's TLS code, and the flag check below would prove nothing.
    EXPECT_FALSE(fp.tls_offsets.empty()) << "no TLS access recognised:\n" << fp.listing;
    EXPECT_TRUE(fp.unresolved.empty()) << "TLS access with an unknown address: " << fp.unresolved.front() << "\n"
                                       << fp.listing;
    EXPECT_EQ(fp.tls_offsets.count(stopped_offset_), 0u)
        << "the fast path reads tls_scheduler_stopped (%fs offset " << stopped_offset_ << "):\n"
        << fp.listing;
    for (const std::string& target : fp.exits)
      EXPECT_TRUE(allowed_exit(target)) << "the fast path leaves for " << target << ":\n" << fp.listing;
  }

  std::string exe_;
  int64_t stopped_offset_ = 0;
};

TEST_F(FastPathTest, MutexLock) { check("probe_mutex_lock"); }
TEST_F(FastPathTest, MutexUnlock) { check("probe_mutex_unlock"); }
TEST_F(FastPathTest, SpinMutexLock) { check("probe_spin_lock"); }
TEST_F(FastPathTest, SpinMutexUnlock) { check("probe_spin_unlock"); }
#if PANICSTOP_PROBE_HAVE_RWLOCK
TEST_F(FastPathTest, RwLockLock) { check("probe_rwlock_lock"); }
TEST_F(FastPathTest, RwLockUnlock) { check("probe_rwlock_unlock"); }
TEST_F(FastPathTest, RwLockLockShared) { check("probe_rwlock_lock_shared"); }
TEST_F(FastPathTest, RwLockUnlockShared) { check("probe_rwlock_unlock_shared"); }
#endif

#if PANICSTOP_FAST_PATH_AARCH64_VARIANTS
// The same fast paths as code built with LSE atomics (one cas/casal inline)
// and as code built for armv8.0 without outline atomics (one ldaxr/stlxr loop).
class FastPathVariantTest : public FastPathTest, public ::testing::WithParamInterface<const char*> {};
TEST_P(FastPathVariantTest, MutexLock) { check((std::string("probe_mutex_lock") + GetParam()).c_str()); }
TEST_P(FastPathVariantTest, MutexUnlock) { check((std::string("probe_mutex_unlock") + GetParam()).c_str()); }
TEST_P(FastPathVariantTest, SpinMutexLock) { check((std::string("probe_spin_lock") + GetParam()).c_str()); }
TEST_P(FastPathVariantTest, SpinMutexUnlock) { check((std::string("probe_spin_unlock") + GetParam()).c_str()); }
#if PANICSTOP_PROBE_HAVE_RWLOCK
TEST_P(FastPathVariantTest, RwLockLock) { check((std::string("probe_rwlock_lock") + GetParam()).c_str()); }
TEST_P(FastPathVariantTest, RwLockUnlock) { check((std::string("probe_rwlock_unlock") + GetParam()).c_str()); }
TEST_P(FastPathVariantTest, RwLockLockShared) { check((std::string("probe_rwlock_lock_shared") + GetParam()).c_str()); }
TEST_P(FastPathVariantTest, RwLockUnlockShared) {
  check((std::string("probe_rwlock_unlock_shared") + GetParam()).c_str());
}
#endif
INSTANTIATE_TEST_SUITE_P(Aarch64, FastPathVariantTest, ::testing::Values("_lse", "_llsc"),
                         [](const ::testing::TestParamInfo<const char*>& i) { return std::string(i.param + 1); });
#endif

// The probes must still be the real thing: run each once so a probe that
// silently stopped locking would show up here rather than pass the checks.
TEST_F(FastPathTest, ProbesLockAndUnlock) {
  panicstop::Mutex m{"fast_path.mutex"};
  probe_mutex_lock(&m);
  EXPECT_TRUE(m.owned());
  probe_mutex_unlock(&m);
  EXPECT_FALSE(m.owned());
  panicstop::SpinMutex s{"fast_path.spin"};
  probe_spin_lock(&s);
  EXPECT_TRUE(s.owned());
  probe_spin_unlock(&s);
  EXPECT_FALSE(s.owned());
#if PANICSTOP_PROBE_HAVE_RWLOCK
  panicstop::RwLock rw{"fast_path.rwlock"};
  probe_rwlock_lock(&rw);
  EXPECT_TRUE(rw.owned());
  probe_rwlock_unlock(&rw);
  probe_rwlock_lock_shared(&rw);
  EXPECT_EQ(panicstop::detail::shared_lock_readers(rw.lock_object().word.load()), 1u);
  probe_rwlock_unlock_shared(&rw);
  EXPECT_EQ(rw.lock_object().word.load(), 0u);
#endif
}

}  // namespace
