// The C library functions panicstop interposes, as the C library defines them.
//
// The library and the preload define pthread_create, sigaction, signal, the
// signal-mask functions and exit (thread_start_setup.cpp, program_signals.cpp):
// programs and the libraries they load call panicstop's, which call the next
// definition, found once with dlsym(RTLD_NEXT) at load time
// (program_signals_setup.cpp). Sanitizer runtimes interpose the same functions
// for themselves; in a sanitizer build panicstop interposes nothing and calls
// the C library directly.
#pragma once

#include <pthread.h>
#include <csignal>
#include <ctime>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PANICSTOP_INTERPOSE 0
#endif
#endif
#if !defined(PANICSTOP_INTERPOSE) && (defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__))
#define PANICSTOP_INTERPOSE 0
#endif
#ifndef PANICSTOP_INTERPOSE
#define PANICSTOP_INTERPOSE 1
#endif

struct epoll_event;
struct __jmp_buf_tag;
struct timespec;

namespace panicstop::detail {

struct LibcNext {
  int (*sigaction)(int, const struct sigaction*, struct sigaction*);
  __sighandler_t (*signal)(int, __sighandler_t);
  __sighandler_t (*sysv_signal)(int, __sighandler_t);
  int (*pthread_sigmask)(int, const sigset_t*, sigset_t*);
  int (*sigprocmask)(int, const sigset_t*, sigset_t*);
  int (*sigsuspend)(const sigset_t*);
  int (*sigwait)(const sigset_t*, int*);
  int (*sigwaitinfo)(const sigset_t*, siginfo_t*);
  int (*sigtimedwait)(const sigset_t*, siginfo_t*, const struct timespec*);
  int (*signalfd)(int, const sigset_t*, int);
  int (*pselect)(int, void*, void*, void*, const struct timespec*, const sigset_t*);
  int (*ppoll)(void*, unsigned long, const struct timespec*, const sigset_t*);
  int (*epoll_pwait)(int, struct epoll_event*, int, int, const sigset_t*);
  int (*epoll_pwait2)(int, struct epoll_event*, int, const struct timespec*, const sigset_t*);
  int (*pthread_attr_setsigmask_np)(pthread_attr_t*, const sigset_t*);
  void (*longjmp)(struct __jmp_buf_tag*, int);
  void (*_longjmp)(struct __jmp_buf_tag*, int);
  void (*siglongjmp)(struct __jmp_buf_tag*, int);
  void (*__longjmp_chk)(struct __jmp_buf_tag*, int);
  void (*exit)(int);
  void (*_exit)(int);
  void (*_Exit)(int);
};

// Filled at load time; a member is null only if the C library lacks it.
// Never null itself.
const LibcNext& libc_next() noexcept;

// Looks the functions up (idempotent; the load-time constructor and install()
// call it). Setup only: dlsym takes the loader's lock.
void resolve_libc_next() noexcept;

}  // namespace panicstop::detail
