// The probes of fast_path_probe.cpp, as fast_path_test.cpp calls them.
#pragma once

#include "panicstop/mutex.hpp"
#include "panicstop/spin_mutex.hpp"
#if __has_include("panicstop/rwlock.hpp")
#include "panicstop/rwlock.hpp"
#define PANICSTOP_PROBE_HAVE_RWLOCK 1
#else
#define PANICSTOP_PROBE_HAVE_RWLOCK 0
#endif

// probe_build_flags() bits: how the probes were compiled. Only an optimized,
// uninstrumented build without WITNESS hooks (a Debug or -DPANICSTOP_WITNESS=ON
// build compiles them into the fast paths, as FreeBSD's WITNESS kernels do)
// shows the fast paths as release users get them.
inline constexpr unsigned kProbeOptimized = 1u << 0;
inline constexpr unsigned kProbeSanitized = 1u << 1;
inline constexpr unsigned kProbeWitness = 1u << 2;

// Weak, so the test still links when fast_path.cmake is not included and can
// say so (probe_build_flags is then null) instead of breaking the build.
#define PANICSTOP_PROBE_DECL extern "C" __attribute__((weak))
PANICSTOP_PROBE_DECL void probe_mutex_lock(panicstop::Mutex* m);
PANICSTOP_PROBE_DECL void probe_mutex_unlock(panicstop::Mutex* m);
PANICSTOP_PROBE_DECL void probe_spin_lock(panicstop::SpinMutex* m);
PANICSTOP_PROBE_DECL void probe_spin_unlock(panicstop::SpinMutex* m);
#if PANICSTOP_PROBE_HAVE_RWLOCK
PANICSTOP_PROBE_DECL void probe_rwlock_lock(panicstop::RwLock* l);
PANICSTOP_PROBE_DECL void probe_rwlock_unlock(panicstop::RwLock* l);
PANICSTOP_PROBE_DECL void probe_rwlock_lock_shared(panicstop::RwLock* l);
PANICSTOP_PROBE_DECL void probe_rwlock_unlock_shared(panicstop::RwLock* l);
#endif
PANICSTOP_PROBE_DECL unsigned probe_build_flags();
