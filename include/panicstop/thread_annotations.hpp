// Clang thread-safety annotations (-Wthread-safety). They expand to nothing on
// compilers without the analysis, so the locks' contracts are checked where the
// checker exists and cost nothing elsewhere.
#pragma once

#if defined(__clang__)
#define PANICSTOP_TSA(x) __attribute__((x))
#else
#define PANICSTOP_TSA(x)
#endif

#define PANICSTOP_CAPABILITY(x) PANICSTOP_TSA(capability(x))
#define PANICSTOP_SCOPED_CAPABILITY PANICSTOP_TSA(scoped_lockable)
#define PANICSTOP_GUARDED_BY(x) PANICSTOP_TSA(guarded_by(x))
#define PANICSTOP_PT_GUARDED_BY(x) PANICSTOP_TSA(pt_guarded_by(x))
#define PANICSTOP_ACQUIRED_BEFORE(...) PANICSTOP_TSA(acquired_before(__VA_ARGS__))
#define PANICSTOP_ACQUIRED_AFTER(...) PANICSTOP_TSA(acquired_after(__VA_ARGS__))
#define PANICSTOP_REQUIRES(...) PANICSTOP_TSA(requires_capability(__VA_ARGS__))
#define PANICSTOP_REQUIRES_SHARED(...) PANICSTOP_TSA(requires_shared_capability(__VA_ARGS__))
#define PANICSTOP_ACQUIRE(...) PANICSTOP_TSA(acquire_capability(__VA_ARGS__))
#define PANICSTOP_ACQUIRE_SHARED(...) PANICSTOP_TSA(acquire_shared_capability(__VA_ARGS__))
#define PANICSTOP_RELEASE(...) PANICSTOP_TSA(release_capability(__VA_ARGS__))
#define PANICSTOP_RELEASE_SHARED(...) PANICSTOP_TSA(release_shared_capability(__VA_ARGS__))
#define PANICSTOP_RELEASE_GENERIC(...) PANICSTOP_TSA(release_generic_capability(__VA_ARGS__))
#define PANICSTOP_TRY_ACQUIRE(...) PANICSTOP_TSA(try_acquire_capability(__VA_ARGS__))
#define PANICSTOP_TRY_ACQUIRE_SHARED(...) PANICSTOP_TSA(try_acquire_shared_capability(__VA_ARGS__))
#define PANICSTOP_EXCLUDES(...) PANICSTOP_TSA(locks_excluded(__VA_ARGS__))
#define PANICSTOP_ASSERT_CAPABILITY(x) PANICSTOP_TSA(assert_capability(x))
#define PANICSTOP_ASSERT_SHARED_CAPABILITY(x) PANICSTOP_TSA(assert_shared_capability(x))
#define PANICSTOP_RETURN_CAPABILITY(x) PANICSTOP_TSA(lock_returned(x))
#define PANICSTOP_NO_THREAD_SAFETY_ANALYSIS PANICSTOP_TSA(no_thread_safety_analysis)
