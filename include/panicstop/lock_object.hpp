// What every panicstop lock has in common (FreeBSD's struct lock_object): a
// lock word, a name, the lock's kind and options. Dumps, WITNESS and lock
// profiling see every kind of lock through this one record.
#pragma once

#include <atomic>
#include <cstdint>

#include "panicstop/export.hpp"

namespace panicstop {

// Options taken by lock constructors; combine with |.
enum LockOption : unsigned {
  kNoOptions = 0,
  kRecursive = 1u << 0,  // the owner may lock again; each lock needs its unlock
  kDupOk = 1u << 1,      // WITNESS: two locks of this class may be held together
  kNoWitness = 1u << 2,  // WITNESS ignores this lock
  kNoProfile = 1u << 3,  // lock profiling ignores this lock
  kOwnClass = 1u << 4,   // WITNESS / profiling: a class of its own, not shared by name
  // SpinMutex only: while held, also block the program's asynchronous signals
  // (two rt_sigprocmask calls per lock/unlock pair). For a lock that one of
  // the program's own signal handlers takes too (see spin_mutex.hpp).
  kBlockSignals = 1u << 5,
};
// Lock constructors take a LockOption, not a bare integer, so a stray number
// (a count, a bool) cannot pass for options; | keeps the type.
constexpr LockOption operator|(LockOption a, LockOption b) noexcept {
  return static_cast<LockOption>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}

namespace detail {

enum class LockKind : uint8_t { kMutex = 1, kSpinMutex, kRwLock, kSxLock, kCondVar };

// Lock word flag bits. Owner identities are ThreadSlot addresses, which are
// 64-byte aligned, so the low six bits are free.
inline constexpr uintptr_t kLockContested = 1u << 0;  // someone sleeps: unlock must wake
inline constexpr uintptr_t kLockRecursed = 1u << 1;   // recursion count > 0: unlock goes slow
inline constexpr uintptr_t kLockFlagMask = 0x3f;

struct LockObject {
  constexpr LockObject(const char* n, LockKind k, unsigned opts) noexcept
      : name(n), kind(k), options(uint8_t(opts)) {}

  std::atomic<uintptr_t> word{0};
  const char* name;
  uint32_t recurse = 0;  // touched only by the owner
  LockKind kind;
  uint8_t options;
  uint16_t class_index = 0;  // WITNESS / profiling class, assigned lazily
};

// Ends the process through the panic path with "KIND NAME: WHAT". Misuse of a
// lock (recursing on a non-recursive lock, unlocking a lock not owned,
// destroying a held lock) is a bug in the caller and never returns.
[[noreturn]] void lock_misuse(const LockObject* lo, const char* what) noexcept;
const char* lock_kind_name(LockKind kind) noexcept;

inline void cpu_relax() noexcept {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield" ::: "memory");
#endif
}

}  // namespace detail
}  // namespace panicstop
