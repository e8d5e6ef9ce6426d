// Internals of the demangler (demangle.cpp: names and encodings;
// demangle_types.cpp: types and template arguments): the parse state, the
// output primitives both use, and the productions each calls in the other.
// Nothing here is for use outside those two files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "sys/demangle.hpp"

namespace panicstop::sys::demangle_detail {

constexpr size_t kScratchSize = 4096;
constexpr int kMaxSubs = 128;
constexpr int kMaxArgs = 48;
constexpr int kMaxElems = 64;
constexpr int kMaxMods = 8;
constexpr size_t kMaxOut = 65535;

// Where declarator modifiers go in a type's text.
enum Shape : uint8_t {
  kPlain,      // append: "int" -> "int*"
  kFuncBare,   // "void (int)": split is the space before '('
  kArrayBare,  // "int [3]": split is the space before '['
  kWrapped,    // "void (*)(int)", "int (&) [3]": split is the ')' closing the declarator
  kPack,       // "int, char": an argument pack, no modifier applies
  kPoison,     // a candidate whose text this file does not know: referring to it gives up
};

struct Text {
  uint8_t shape = kPlain;
  uint8_t ref = 0;      // top level: 1 '&', 2 '&&'
  uint8_t cv = 0;       // top level: 1 const, 2 volatile, 4 restrict
  bool tparam = false;  // printed straight from a template parameter
  bool collapsed = false;  // a reference whose text is not its inner text plus '&'
  uint16_t split = 0;   // relative to the start of the text
};

struct Entry {
  uint16_t off = 0, len = 0;
  Text t;
  uint8_t first = 0, count = 0;  // a pack argument: its elements in State::elems
  // A candidate added inside a Dp pattern for a bare T_ that names a pack: the
  // pack's argument index. Referred to inside a later Dp, it prints that
  // pack's element as T_ would; anywhere else it gives up like any candidate
  // whose text depends on the element.
  int8_t pack_param = -1;
};

struct NameInfo {
  bool is_template = false;  // the name ends with template arguments
  bool cdc = false;          // ... of a constructor, destructor or conversion
  bool std_sub = false;      // the name is a bare std abbreviation (Sa, Ss, ...)
  uint8_t quals = 0;         // nested name's cv-qualifiers: 1 const, 2 volatile, 4 restrict
  char ref = 0;              // nested name's ref-qualifier: 'R' or 'O'
};

struct State {
  const char* p;
  const char* end;
  char* out;
  size_t cap;  // usable bytes of out, excluding the terminating NUL
  size_t len = 0;
  // libiberty decides "> >" by the last character it appended, which is
  // still the ' ' of a ", " it took back after an empty pack.
  char taken_back = '\0';
  int depth = 0;
  int no_tparams = 0;
  int storing_args = 0;  // > 0: inside the template arguments T_ would refer to  // > 0: T_ cannot be resolved here (lambda signatures, nested encodings)
  bool expanding = false;  // inside a Dp pattern
  int pack_arg = -1;       // the pack a Dp pattern expands, once found
  size_t pack_index = 0;   // the element being printed
  int last_pack_param = -1;  // the pack the last T_ printed an element of, or -1
  bool no_subs = false;    // re-printing a Dp pattern: its candidates exist already
  int nsubs = 0;
  int nargs = -1;  // < 0: no template arguments in scope
  size_t scratch_len = 0;
  const char* last = nullptr;  // the last source name: what a constructor is called
  size_t last_len = 0;
  Entry subs[kMaxSubs];
  Entry args[kMaxArgs];
  Entry elems[kMaxElems];
  int nelems = 0;
  char scratch[kScratchSize];
};

// Bounds recursion: every recursive production holds one.
struct Depth {
  explicit Depth(State& s) noexcept : s_(s) { ++s_.depth; }
  ~Depth() { --s_.depth; }
  bool ok() const noexcept { return s_.depth <= kDemangleMaxDepth; }
  State& s_;
};

inline bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
inline bool is_lower(char c) noexcept { return c >= 'a' && c <= 'z'; }
inline bool is_upper(char c) noexcept { return c >= 'A' && c <= 'Z'; }

inline char peek(const State& s, size_t i = 0) noexcept { return size_t(s.end - s.p) > i ? s.p[i] : '\0'; }
inline bool at_end(const State& s) noexcept { return s.p >= s.end; }
inline bool eat(State& s, char c) noexcept {
  if (at_end(s) || *s.p != c) return false;
  ++s.p;
  return true;
}

inline bool put(State& s, const char* t, size_t n) noexcept {
  if (n > s.cap - s.len) return false;
  if (n > 0) s.taken_back = '\0';
  memcpy(s.out + s.len, t, n);
  s.len += n;
  return true;
}
inline bool put(State& s, const char* t) noexcept { return put(s, t, strlen(t)); }
inline bool put_dec(State& s, size_t v) noexcept {
  char d[24];
  size_t n = 0;
  do d[sizeof d - ++n] = char('0' + v % 10); while ((v /= 10) != 0);
  return put(s, d + sizeof d - n, n);
}
inline bool insert(State& s, size_t at, const char* t, size_t n) noexcept {
  if (n > s.cap - s.len) return false;
  memmove(s.out + at + n, s.out + at, s.len - at);
  memcpy(s.out + at, t, n);
  s.len += n;
  return true;
}
inline void erase(State& s, size_t at, size_t n) noexcept {
  memmove(s.out + at, s.out + at + n, s.len - at - n);
  s.len -= n;
}
inline void reverse(char* a, char* b) noexcept {
  while (a + 1 < b) {
    char c = *a;
    *a++ = *--b;
    *b = c;
  }
}
// [a, mid) [mid, b) -> [mid, b) [a, mid)
inline void rotate(State& s, size_t a, size_t mid, size_t b) noexcept {
  reverse(s.out + a, s.out + mid);
  reverse(s.out + mid, s.out + b);
  reverse(s.out + a, s.out + b);
}
inline char last_char(const State& s) noexcept {
  if (s.taken_back != '\0') return s.taken_back;
  return s.len > 0 ? s.out[s.len - 1] : '\0';
}

inline bool save(State& s, size_t from, const Text& t, Entry* e) noexcept {
  size_t n = s.len - from;
  if (n > kScratchSize - s.scratch_len) return false;
  memcpy(s.scratch + s.scratch_len, s.out + from, n);
  e->off = uint16_t(s.scratch_len);
  e->len = uint16_t(n);
  e->t = t;
  s.scratch_len += n;
  return true;
}
inline bool add_sub(State& s, size_t from, const Text& t) noexcept {
  if (s.no_subs) return true;
  if (s.nsubs == kMaxSubs) return false;
  if (s.expanding) {  // its text would depend on the element being printed
    s.subs[s.nsubs++].t.shape = kPoison;
    return true;
  }
  return save(s, from, t, &s.subs[s.nsubs++]);
}
// The candidate for a bare T_ that printed an element of the pack argument
// `pack` inside a Dp pattern (see Entry::pack_param).
inline bool add_pack_param_sub(State& s, int pack) noexcept {
  if (s.no_subs) return true;
  if (s.nsubs == kMaxSubs) return false;
  Entry& e = s.subs[s.nsubs++];
  e = Entry{};
  e.t.shape = kPoison;
  e.pack_param = int8_t(pack);
  return true;
}
inline bool emit(State& s, const Entry& e, Text* t) noexcept {
  *t = e.t;
  if (e.t.shape == kPoison) return false;
  return put(s, s.scratch + e.off, e.len);
}

// A decimal <number>; huge values are malformed, not wrapped.
inline bool number(State& s, size_t* v) noexcept {
  if (!is_digit(peek(s))) return false;
  size_t n = 0;
  while (is_digit(peek(s))) {
    n = n * 10 + size_t(*s.p++ - '0');
    if (n > (1u << 20)) return false;
  }
  *v = n;
  return true;
}

// "_" -> 0, "<n>_" -> n + 1 (lambda and unnamed type numbers).
inline bool compact_number(State& s, size_t* v) noexcept {
  size_t n = 0;
  if (!eat(s, '_')) {
    if (!number(s, &n) || !eat(s, '_')) return false;
    ++n;
  }
  *v = n;
  return true;
}

// [r] [V] [K]: 1 const, 2 volatile, 4 restrict. libiberty takes them in
// any order and number, as separate nodes; only the canonical form is
// supported here.
constexpr uint8_t kBadCv = 0xff;
inline uint8_t cv_qualifiers(State& s) noexcept {
  uint8_t bits = 0;
  if (eat(s, 'r')) bits |= 4;
  if (eat(s, 'V')) bits |= 2;
  if (eat(s, 'K')) bits |= 1;
  char c = peek(s);
  return c == 'r' || c == 'V' || c == 'K' ? kBadCv : bits;
}

// Productions shared between the two files.
bool type(State& s, Text* t) noexcept;
// <bare-function-type>: "(int, char)"; a lone "v" prints "()".
bool params(State& s) noexcept;
// I <args> E; store: they are the arguments of the symbol's own name (T_).
bool template_args(State& s, bool store) noexcept;
// T_ T0_ ...: the template argument's text.
bool template_param(State& s, Text* t) noexcept;
// One element of the pack argument `arg` that the Dp being printed expands.
bool pack_element(State& s, int arg, Text* t) noexcept;
// S_ S<seq-id>_ or a std abbreviation (prefix: inside a nested name).
bool substitution(State& s, bool prefix, Text* t, bool* is_std) noexcept;
bool name(State& s, NameInfo* ni, bool store_args) noexcept;
// top: the whole symbol; a local name's function prints no return type.
bool encoding(State& s, bool top, bool return_type = true) noexcept;
// The whole symbol: _Z <encoding> [clone suffixes], or _GLOBAL__I_/_D_.
bool demangle_into(State& s) noexcept;

}  // namespace panicstop::sys::demangle_detail
