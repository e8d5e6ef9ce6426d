// Itanium C++ ABI demangling for the crash path.
//
// The text report is what a person reads first, so it names C++ functions
// the way c++filt does. The demangler below allocates nothing, takes no
// locks and calls nothing but memcpy/memmove/strlen: it works in the caller's
// output buffer plus a fixed scratch area on its own stack.
//
// Contract:
//   - It succeeds only with the exact text c++filt (libiberty, which is also
//     libstdc++'s abi::__cxa_demangle) prints for the symbol. Anything it does
//     not know (expressions, decltype, a pack outside a Dp expansion,
//     qualified function types outside member pointers, vendor qualifiers,
//     some of libiberty's quirks), anything that does not fit, and anything
//     malformed makes it return false; the caller then prints the mangled
//     name. It never returns a half or different name.
//   - Hostile input (a corrupted symbol table) is safe: it reads only the
//     given bytes, recursion is cut at kDemangleMaxDepth nested productions,
//     every step consumes input and every copy is bounded by the output
//     buffer, so the work is bounded by input length x out_size.
//   - out is NUL-terminated whenever out_size > 0, also on failure (then it
//     holds an empty string).
//
// Stack: one call uses at most kDemangleStackBytes: about 7.5 KiB of fixed
// state (substitution texts, template arguments) in demangle()'s frame, and
// up to kDemangleMaxDepth recursive frames of at most ~350 bytes. Measured
// high-water mark, painting a thread's stack while demangling every C++
// symbol of libstdc++ and libLLVM-15 plus 10,000-deep hostile nestings:
// 29 KiB at -O2 and 27 KiB at -O0 (x86-64, GCC 12), 66 KiB under ASan.
// The crash path runs this on its 128 KiB alternate stack; real symbols
// nest about 20 deep (32 in LLVM's deepest), so they use far less.
#pragma once

#include <cstddef>

namespace panicstop::sys {

inline constexpr int kDemangleMaxDepth = 64;
inline constexpr size_t kDemangleStackBytes = 32 * 1024;

// mangled: NUL-terminated; demangled if it starts with "_Z" (with clone
// suffixes such as ".cold" or ".isra.0" printed as " [clone .cold]") or is
// "_GLOBAL__I_x"/"_GLOBAL__D_x". At most 65535 bytes of out are used.
bool demangle(const char* mangled, char* out, size_t out_size) noexcept;

// The same for a name that is len bytes long and need not be NUL-terminated.
bool demangle(const char* mangled, size_t len, char* out, size_t out_size) noexcept;

}  // namespace panicstop::sys
