// The LD_PRELOAD shim: panicstop for programs that were never built with it.
//
// What it does, and all it interposes:
//   - its constructor calls panicstop::install(), which reads the same
//     PANICSTOP_* tunables as a program built with the library;
//   - pthread_create: each new thread starts by taking an alternate signal
//     stack from panicstop's reserved pool, so a stack overflow in a thread the
//     program made still reaches the panic path (glibc gives new threads none,
//     and a thread that never calls the library has no other moment to get one).
// Nothing else is interposed; malloc, signals and I/O are the program's own.
#include <dlfcn.h>
#include <pthread.h>

#include <cerrno>
#include <new>

#include "panicstop/panic.hpp"
#include "thread/altstack.hpp"

namespace {

using PthreadCreate = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);

struct ThreadStart {
  void* (*routine)(void*);
  void* arg;
};

void* start_with_altstack(void* p) {
  ThreadStart start = *static_cast<ThreadStart*>(p);
  delete static_cast<ThreadStart*>(p);
  panicstop::detail::ensure_altstack();
  return start.routine(start.arg);
}

PthreadCreate real_pthread_create() {
  static PthreadCreate real = reinterpret_cast<PthreadCreate>(dlsym(RTLD_NEXT, "pthread_create"));
  return real;
}

__attribute__((constructor(101))) void panicstop_preload_install() {
  real_pthread_create();  // resolve before the program can create threads concurrently
  panicstop::install();
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int pthread_create(pthread_t* thread, const pthread_attr_t* attr,
                                                                   void* (*routine)(void*), void* arg) {
  PthreadCreate real = real_pthread_create();
  if (real == nullptr) return EAGAIN;
  auto* start = new (std::nothrow) ThreadStart{routine, arg};
  if (start == nullptr) return real(thread, attr, routine, arg);
  int r = real(thread, attr, start_with_altstack, start);
  if (r != 0) delete start;
  return r;
}
