// Probes for fast_path_test.cpp. Each probe is one inline lock fast path,
// compiled out of line (noinline) at -O2 (fast_path.cmake sets the flag), so
// the test can find it by name in its own binary and read its instructions.
// Nothing else belongs in this file: the probes must be exactly what a caller
// of the header gets inlined.
#include "lock/fast_path_probe.hpp"

#define PANICSTOP_PROBE extern "C" __attribute__((noinline, used)) PANICSTOP_NO_THREAD_SAFETY_ANALYSIS
// aarch64 compiles this file twice more under other names (fast_path.cmake):
// probe_mutex_lock_lse etc. with LSE atomics, probe_mutex_lock_llsc etc. with
// inline exclusive-load/store loops.
#if defined(PANICSTOP_PROBE_SUFFIX)
#define PANICSTOP_PROBE_CAT2(a, b) a##b
#define PANICSTOP_PROBE_CAT(a, b) PANICSTOP_PROBE_CAT2(a, b)
#define PANICSTOP_PROBE_NAME(n) PANICSTOP_PROBE_CAT(n, PANICSTOP_PROBE_SUFFIX)
#else
#define PANICSTOP_PROBE_NAME(n) n
#endif

PANICSTOP_PROBE void PANICSTOP_PROBE_NAME(probe_mutex_lock)(panicstop::Mutex* m) { m->lock(); }
PANICSTOP_PROBE void PANICSTOP_PROBE_NAME(probe_mutex_unlock)(panicstop::Mutex* m) { m->unlock(); }
PANICSTOP_PROBE void PANICSTOP_PROBE_NAME(probe_spin_lock)(panicstop::SpinMutex* m) { m->lock(); }
PANICSTOP_PROBE void PANICSTOP_PROBE_NAME(probe_spin_unlock)(panicstop::SpinMutex* m) { m->unlock(); }

#if PANICSTOP_PROBE_HAVE_RWLOCK
PANICSTOP_PROBE void PANICSTOP_PROBE_NAME(probe_rwlock_lock)(panicstop::RwLock* l) { l->lock(); }
PANICSTOP_PROBE void PANICSTOP_PROBE_NAME(probe_rwlock_unlock)(panicstop::RwLock* l) { l->unlock(); }
PANICSTOP_PROBE void PANICSTOP_PROBE_NAME(probe_rwlock_lock_shared)(panicstop::RwLock* l) { l->lock_shared(); }
PANICSTOP_PROBE void PANICSTOP_PROBE_NAME(probe_rwlock_unlock_shared)(panicstop::RwLock* l) { l->unlock_shared(); }
#endif

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define PANICSTOP_PROBE_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PANICSTOP_PROBE_SANITIZED 1
#endif

#if !defined(PANICSTOP_PROBE_SUFFIX)
PANICSTOP_PROBE unsigned probe_build_flags() {
  unsigned flags = 0;
#if defined(__OPTIMIZE__)
  flags |= kProbeOptimized;
#endif
#if defined(PANICSTOP_PROBE_SANITIZED)
  flags |= kProbeSanitized;
#endif
#if PANICSTOP_WITNESS_BUILT_IN
  flags |= kProbeWitness;
#endif
  return flags;
}
#endif
