// PANICSTOP_EXPORT marks what libpanicstop.so exports.
//
// The library is compiled with -fvisibility=hidden -fvisibility-inlines-hidden,
// so a symbol leaves the shared library only when its declaration carries this
// mark. Two kinds do: the public API (the classes and functions documented in
// these headers), and the few panicstop::detail symbols that inline code in the
// headers calls or reads from the program's side (the lock hard paths, the
// thread-slot and spinlock-section variables, the WITNESS hooks, the assert's
// out-of-line half). Those detail symbols are part of the ABI only because the
// headers reach them; everything else in detail and sys is internal and free
// to change in any release. The test package.exports (scripts/check-exports.sh
// against tests/package/exports.txt) fails when anything else is exported.
//
// The interposed C functions (pthread_create, sigaction, signal, exit, ...)
// are exported by their definitions in src/thread/ and are no part of this
// mark: they must stay visible for interposition to work at all.
#pragma once

#define PANICSTOP_EXPORT __attribute__((visibility("default")))
// For a member of an exported class that only the library itself calls (a
// helper of the out-of-line paths): the class exports every member it defines
// out of line unless the member says otherwise.
#define PANICSTOP_NO_EXPORT __attribute__((visibility("hidden")))
