// Is this test binary built with AddressSanitizer or ThreadSanitizer? Their
// shadow memory is terabytes of reserved address space (no full core or
// RLIMIT_AS can hold it), and their runtimes interpose pthread_create, so
// panicstop's thread-start hook is left out of such builds.
#pragma once

namespace panicstop::testing {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitizerBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitizerBuild = true;
#else
inline constexpr bool kSanitizerBuild = false;
#endif
#else
inline constexpr bool kSanitizerBuild = false;
#endif

// ThreadSanitizer alone: its runtime cannot start a thread in the child of a
// multithreaded fork().
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kThreadSanitizerBuild = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kThreadSanitizerBuild = true;
#else
inline constexpr bool kThreadSanitizerBuild = false;
#endif
#else
inline constexpr bool kThreadSanitizerBuild = false;
#endif

}  // namespace panicstop::testing
