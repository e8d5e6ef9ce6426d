// Every new thread starts on panicstop's terms: the library interposes
// pthread_create so that each thread takes an alternate signal stack from the
// reserved pool before its start routine runs. glibc gives new threads none,
// and a thread that never calls the library has no other moment to get one —
// without it a stack overflow in such a thread ends the process with no dump.
//
// The interposer forwards to the next pthread_create (glibc's, found with
// dlsym(RTLD_NEXT) once) and allocates one small record per creation; both are
// setup-time work, never on the crash path. It is left out of sanitizer builds,
// whose runtimes interpose pthread_create themselves.
#include <dlfcn.h>
#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <new>

#include "thread/altstack.hpp"
#include "thread/slot.hpp"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PANICSTOP_NO_PTHREAD_CREATE_HOOK 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PANICSTOP_NO_PTHREAD_CREATE_HOOK 1
#endif

namespace panicstop::detail {

#ifndef PANICSTOP_NO_PTHREAD_CREATE_HOOK

namespace {

using PthreadCreate = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);

struct ThreadStart {
  void* (*routine)(void*);
  void* arg;
};

std::atomic<bool> g_claim_slot_at_start{false};

void* start_with_altstack(void* p) {
  ThreadStart start = *static_cast<ThreadStart*>(p);
  delete static_cast<ThreadStart*>(p);
  // The slot brings the pool stack (ensure_altstack()), and the exit key
  // returns both. With every slot taken (the shared overflow slot, which TLS
  // never names) the thread still gets its stack below.
  if (g_claim_slot_at_start.load(std::memory_order_relaxed)) claim_current_slot();
  if (tls_slot == nullptr) {
    ensure_altstack();
    // The stack goes back to the pool when the thread exits, whether or not
    // it ever uses the library.
    release_at_thread_exit();
  }
  return start.routine(start.arg);
}

PthreadCreate next_pthread_create() noexcept {
  static PthreadCreate next = reinterpret_cast<PthreadCreate>(dlsym(RTLD_NEXT, "pthread_create"));
  return next;
}

}  // namespace

bool thread_start_hook_active() noexcept { return next_pthread_create() != nullptr; }

void set_claim_slot_at_thread_start(bool on) noexcept { g_claim_slot_at_start.store(on, std::memory_order_relaxed); }

}  // namespace panicstop::detail

extern "C" __attribute__((visibility("default"))) int pthread_create(pthread_t* thread, const pthread_attr_t* attr,
                                                                   void* (*routine)(void*), void* arg) {
  using namespace panicstop::detail;
  PthreadCreate next = next_pthread_create();
  if (next == nullptr) return EAGAIN;
  auto* start = new (std::nothrow) ThreadStart{routine, arg};
  if (start == nullptr) return next(thread, attr, routine, arg);
  int r = next(thread, attr, start_with_altstack, start);
  if (r != 0) delete start;
  return r;
}

#else

bool thread_start_hook_active() noexcept { return false; }
void set_claim_slot_at_thread_start(bool) noexcept {}

}  // namespace panicstop::detail

#endif
