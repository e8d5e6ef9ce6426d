// std::terminate as a panic that names the exception (install_terminate_handler
// in panic_internal.hpp). Setup: the handler runs on the throwing thread
// before the panic path starts (no election yet, every other thread still
// running), where the C++ runtime is intact, so it may allocate (the
// demangler does). It then enters the panic path like panic().
//
// Whose std::terminate: the program's C++ runtime, found by name in the
// process's global scope (dlsym with RTLD_DEFAULT). The preload of `panicstop
// run` carries a private, hidden copy of libstdc++ (so that a C program does
// not load and relocate the whole library at every start); setting that
// copy's handler, or asking that copy for the current exception, would see
// nothing the program does. The functions this file links against are the
// fallback: the same runtime in a program linked with panicstop, and in the
// preload inside a program without any C++ runtime (which never calls
// std::terminate). The exception is read through the Itanium C++ ABI alone
// (no rethrow, no catch), so two runtimes in one process never meet on an
// unwinder.
#include <cxxabi.h>
#include <dlfcn.h>

#include <cstring>
#include <exception>
#include <new>
#include <typeinfo>

#include "panic/panic_internal.hpp"
#include "panicstop/panic.hpp"

namespace panicstop::detail {

namespace {

struct CxxRuntime {
  std::terminate_handler (*set_terminate)(std::terminate_handler) noexcept = std::set_terminate;
  std::type_info* (*current_exception_type)() noexcept = abi::__cxa_current_exception_type;
  std::exception_ptr (*current_exception)() noexcept = std::current_exception;
  char* (*demangle)(const char*, char*, size_t*, int*) = abi::__cxa_demangle;
  const std::type_info* std_exception = &typeid(std::exception);
};
CxxRuntime g_runtime;

template <typename T>
void resolve(T* fn, const char* name) noexcept {
  if (void* found = dlsym(RTLD_DEFAULT, name)) *fn = reinterpret_cast<T>(found);
}

// The thrown object of the exception being handled, or nullptr. The
// exception_ptr is the program runtime's: it is read (one pointer, the
// object, in every libstdc++ and libc++ build) and never destroyed, which
// would release it through this file's runtime. The panic follows anyway.
void* current_object() noexcept {
  alignas(std::exception_ptr) unsigned char storage[sizeof(std::exception_ptr)];
  new (storage) std::exception_ptr(g_runtime.current_exception());
  void* object = nullptr;
  static_assert(sizeof(std::exception_ptr) == sizeof object);
  memcpy(&object, storage, sizeof object);
  return object;
}

// What catch (const std::exception& e) would bind e to, asked of the
// runtime's own type_info for std::exception: true and *object adjusted to
// that base if the thrown type derives from it.
bool as_std_exception(const std::type_info* thrown, void** object) noexcept {
  return *object != nullptr && g_runtime.std_exception->__do_catch(thrown, object, 1);
}

[[noreturn]] void terminate_handler() {
  const std::type_info* thrown = g_runtime.current_exception_type();
  if (thrown == nullptr) panic("std::terminate called without an active exception");
  int status = -1;
  char* demangled = g_runtime.demangle(thrown->name(), nullptr, nullptr, &status);
  const char* type = status == 0 && demangled != nullptr ? demangled : thrown->name();
  void* object = current_object();
  if (as_std_exception(thrown, &object))
    panic("uncaught exception of type %s: %s", type, static_cast<const std::exception*>(object)->what());
  panic("uncaught exception of type %s", type);
}

}  // namespace

void install_terminate_handler() noexcept {
  resolve(&g_runtime.set_terminate, "_ZSt13set_terminatePFvvE");
  resolve(&g_runtime.current_exception_type, "__cxa_current_exception_type");
  resolve(&g_runtime.current_exception, "_ZSt17current_exceptionv");
  resolve(&g_runtime.demangle, "__cxa_demangle");
  resolve(&g_runtime.std_exception, "_ZTISt9exception");
  g_runtime.set_terminate(terminate_handler);
}

}  // namespace panicstop::detail
