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
//     not know (expressions, decltype, pack expansions in parameter lists,
//     vendor qualifiers, ...), anything that does not fit, and anything
//     malformed makes it return false; the caller then prints the mangled
//     name. It never returns a half or different name.
//   - Hostile input (a corrupted symbol table) is safe: it reads only the
//     given bytes, recursion is cut at kDemangleMaxDepth nested productions,
//     every step consumes input and every copy is bounded by the output
//     buffer, so the work is bounded by input length x out_size.
//   - out is NUL-terminated whenever out_size > 0, also on failure (then it
//     holds an empty string).
//
// Stack: one call uses at most kDemangleStackBytes of stack (the fixed
// scratch state plus kDemangleMaxDepth recursive frames; the figure was
// measured with -fstack-usage on x86-64 GCC and carries a margin), far below
// the 128 KiB alternate signal stack the crash path runs on.
#pragma once

#include <cstddef>

namespace panicstop::sys {

inline constexpr int kDemangleMaxDepth = 96;
inline constexpr size_t kDemangleStackBytes = 24 * 1024;

// mangled: NUL-terminated; demangled if it starts with "_Z" (with clone
// suffixes such as ".cold" or ".isra.0" printed as " [clone .cold]") or is
// "_GLOBAL__I_x"/"_GLOBAL__D_x". At most 65535 bytes of out are used.
bool demangle(const char* mangled, char* out, size_t out_size) noexcept;

// The same for a name that is len bytes long and need not be NUL-terminated.
bool demangle(const char* mangled, size_t len, char* out, size_t out_size) noexcept;

}  // namespace panicstop::sys
