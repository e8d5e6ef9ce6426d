// Itanium C++ ABI demangler, see demangle.hpp for the contract.
//
// How it works without a syntax tree: every production prints straight into
// the output buffer as it is parsed. The few places where the printed order
// differs from the mangled order (a function template's return type, the
// declarator of a pointer to function or array, pointers to members,
// construction vtables) are fixed up in place by rotating or inserting within
// the text just printed. A substitution candidate (S_, S0_, ...) and a
// template argument (T_, ...) are remembered as a copy of their printed text
// in a fixed scratch area, together with the shape that says where a later
// '*' or '&' has to go ("void (*)(int)", "int (&) [3]").
//
// Where libiberty's printing has quirks (comma handling around empty packs,
// "> >", "operator< <", reference collapsing through template parameters,
// the verbose std::string inside constructor names), this file copies them;
// where supporting them would take more than a few lines, it gives up instead.
#include "sys/demangle.hpp"

#include <cstdint>
#include <cstring>

namespace panicstop::sys {
namespace {

constexpr size_t kScratchSize = 8192;
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

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
bool is_lower(char c) noexcept { return c >= 'a' && c <= 'z'; }
bool is_upper(char c) noexcept { return c >= 'A' && c <= 'Z'; }

char peek(const State& s, size_t i = 0) noexcept { return size_t(s.end - s.p) > i ? s.p[i] : '\0'; }
bool at_end(const State& s) noexcept { return s.p >= s.end; }
bool eat(State& s, char c) noexcept {
  if (at_end(s) || *s.p != c) return false;
  ++s.p;
  return true;
}

bool put(State& s, const char* t, size_t n) noexcept {
  if (n > s.cap - s.len) return false;
  if (n > 0) s.taken_back = '\0';
  memcpy(s.out + s.len, t, n);
  s.len += n;
  return true;
}
bool put(State& s, const char* t) noexcept { return put(s, t, strlen(t)); }
bool put_dec(State& s, size_t v) noexcept {
  char d[24];
  size_t n = 0;
  do d[sizeof d - ++n] = char('0' + v % 10); while ((v /= 10) != 0);
  return put(s, d + sizeof d - n, n);
}
bool insert(State& s, size_t at, const char* t, size_t n) noexcept {
  if (n > s.cap - s.len) return false;
  memmove(s.out + at + n, s.out + at, s.len - at);
  memcpy(s.out + at, t, n);
  s.len += n;
  return true;
}
void erase(State& s, size_t at, size_t n) noexcept {
  memmove(s.out + at, s.out + at + n, s.len - at - n);
  s.len -= n;
}
void reverse(char* a, char* b) noexcept {
  while (a + 1 < b) {
    char c = *a;
    *a++ = *--b;
    *b = c;
  }
}
// [a, mid) [mid, b) -> [mid, b) [a, mid)
void rotate(State& s, size_t a, size_t mid, size_t b) noexcept {
  reverse(s.out + a, s.out + mid);
  reverse(s.out + mid, s.out + b);
  reverse(s.out + a, s.out + b);
}
char last_char(const State& s) noexcept {
  if (s.taken_back != '\0') return s.taken_back;
  return s.len > 0 ? s.out[s.len - 1] : '\0';
}

bool save(State& s, size_t from, const Text& t, Entry* e) noexcept {
  size_t n = s.len - from;
  if (n > kScratchSize - s.scratch_len) return false;
  memcpy(s.scratch + s.scratch_len, s.out + from, n);
  e->off = uint16_t(s.scratch_len);
  e->len = uint16_t(n);
  e->t = t;
  s.scratch_len += n;
  return true;
}
bool add_sub(State& s, size_t from, const Text& t) noexcept {
  if (s.no_subs) return true;
  if (s.nsubs == kMaxSubs) return false;
  if (s.expanding) {  // its text would depend on the element being printed
    s.subs[s.nsubs++].t.shape = kPoison;
    return true;
  }
  return save(s, from, t, &s.subs[s.nsubs++]);
}
bool emit(State& s, const Entry& e, Text* t) noexcept {
  *t = e.t;
  if (e.t.shape == kPoison) return false;
  return put(s, s.scratch + e.off, e.len);
}

// A decimal <number>; huge values are malformed, not wrapped.
bool number(State& s, size_t* v) noexcept {
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
bool compact_number(State& s, size_t* v) noexcept {
  size_t n = 0;
  if (!eat(s, '_')) {
    if (!number(s, &n) || !eat(s, '_')) return false;
    ++n;
  }
  *v = n;
  return true;
}

bool source_name(State& s) noexcept {
  size_t n = 0;
  if (!number(s, &n) || n == 0 || n > size_t(s.end - s.p)) return false;
  const char* name = s.p;
  for (size_t i = 0; i < n; ++i)
    if (static_cast<unsigned char>(name[i]) <= ' ' || static_cast<unsigned char>(name[i]) >= 0x7f) return false;
  s.p += n;
  s.last = name;
  s.last_len = n;
  if (n >= 10 && memcmp(name, "_GLOBAL_", 8) == 0 && (name[8] == '.' || name[8] == '_' || name[8] == '$') &&
      name[9] == 'N')
    return put(s, "(anonymous namespace)");
  return put(s, name, n);
}

// _ <digit> | __ <number> _
bool discriminator(State& s) noexcept {
  if (!eat(s, '_')) return true;
  bool two = eat(s, '_');
  size_t n = 0;
  if (!number(s, &n)) return false;
  if (two && n >= 10 && !eat(s, '_')) return false;
  return true;
}

struct Builtin {
  char code;
  const char* name;
};
constexpr Builtin kBuiltins[] = {
    {'a', "signed char"}, {'b', "bool"}, {'c', "char"}, {'d', "double"}, {'e', "long double"},
    {'f', "float"}, {'g', "__float128"}, {'h', "unsigned char"}, {'i', "int"}, {'j', "unsigned int"},
    {'l', "long"}, {'m', "unsigned long"}, {'n', "__int128"}, {'o', "unsigned __int128"}, {'s', "short"},
    {'t', "unsigned short"}, {'v', "void"}, {'w', "wchar_t"}, {'x', "long long"}, {'y', "unsigned long long"},
    {'z', "..."},
};
constexpr Builtin kDBuiltins[] = {
    {'a', "auto"}, {'c', "decltype(auto)"}, {'d', "decimal64"}, {'e', "decimal128"}, {'f', "decimal32"},
    {'h', "half"}, {'i', "char32_t"}, {'n', "decltype(nullptr)"}, {'s', "char16_t"}, {'u', "char8_t"},
};
const char* builtin_name(const Builtin* table, size_t n, char c) noexcept {
  for (size_t i = 0; i < n; ++i)
    if (table[i].code == c) return table[i].name;
  return nullptr;
}

struct Operator {
  char code[3];
  const char* name;
};
constexpr Operator kOperators[] = {
    {"nw", "new"}, {"na", "new[]"}, {"dl", "delete"}, {"da", "delete[]"}, {"aw", "co_await"},
    {"ps", "+"}, {"ng", "-"}, {"ad", "&"}, {"de", "*"}, {"co", "~"}, {"pl", "+"}, {"mi", "-"},
    {"ml", "*"}, {"dv", "/"}, {"rm", "%"}, {"an", "&"}, {"or", "|"}, {"eo", "^"}, {"aS", "="},
    {"pL", "+="}, {"mI", "-="}, {"mL", "*="}, {"dV", "/="}, {"rM", "%="}, {"aN", "&="}, {"oR", "|="},
    {"eO", "^="}, {"ls", "<<"}, {"rs", ">>"}, {"lS", "<<="}, {"rS", ">>="}, {"eq", "=="}, {"ne", "!="},
    {"lt", "<"}, {"gt", ">"}, {"le", "<="}, {"ge", ">="}, {"ss", "<=>"}, {"nt", "!"}, {"aa", "&&"},
    {"oo", "||"}, {"pp", "++"}, {"mm", "--"}, {"cm", ","}, {"pm", "->*"}, {"pt", "->"}, {"cl", "()"},
    {"ix", "[]"},
};

// [r] [V] [K]: 1 const, 2 volatile, 4 restrict. libiberty takes them in
// any order and number, as separate nodes; only the canonical form is
// supported here.
constexpr uint8_t kBadCv = 0xff;
uint8_t cv_qualifiers(State& s) noexcept {
  uint8_t bits = 0;
  if (eat(s, 'r')) bits |= 4;
  if (eat(s, 'V')) bits |= 2;
  if (eat(s, 'K')) bits |= 1;
  char c = peek(s);
  return c == 'r' || c == 'V' || c == 'K' ? kBadCv : bits;
}

bool type(State& s, Text* t) noexcept;
bool pack_expansion(State& s, size_t start, Text* t) noexcept;
bool name(State& s, NameInfo* ni, bool store_args) noexcept;
bool encoding(State& s, bool top, bool return_type = true) noexcept;

// Items separated by ", ", as libiberty prints argument lists: a separator
// stays unless everything after it printed nothing (an empty pack).
// Ends at 'E' (consumed) when until_e, else before the end of the
// encoding's parameters.
bool param_end(const State& s) noexcept {
  char c = peek(s);
  return c == '\0' || c == 'E' || c == '.' || c == 'Q';
}

enum Store : uint8_t { kNoStore, kStoreArgs, kStoreElems };

bool template_arg(State& s, Text* t, Store store) noexcept;

// store: keep each item's text as a template argument (the function's own
// T_ ...) or as an element of the pack argument being stored.
bool arg_list(State& s, bool template_args, Store store) noexcept {
  size_t keep = s.len;
  int n = 0;
  while (template_args ? !eat(s, 'E') : !param_end(s)) {
    if (at_end(s)) return false;
    if (!template_args && (peek(s) == 'R' || peek(s) == 'O') && peek(s, 1) == 'E') return false;  // ref-qualifier
    if (n > 0 && !put(s, ", ")) return false;
    size_t b = s.len;
    Text t;
    if (!(template_args ? template_arg(s, &t, store) : type(s, &t))) return false;
    if (store == kStoreArgs) {
      if (s.nargs >= kMaxArgs) return false;
      Entry& e = s.args[s.nargs++];
      uint8_t first = e.first, count = e.count;  // set by template_arg for a pack
      if (!save(s, b, t, &e)) return false;
      e.first = t.shape == kPack ? first : 0;
      e.count = t.shape == kPack ? count : 0;
    } else if (store == kStoreElems) {
      if (s.nelems >= kMaxElems || t.shape == kPack || !save(s, b, t, &s.elems[s.nelems++])) return false;
    }
    if (n == 0 || s.len > b) keep = s.len;
    ++n;
  }
  if (s.len != keep) {
    s.len = keep;
    s.taken_back = ' ';
  }
  return n > 0 || template_args;
}

// <bare-function-type>: "(int, char)"; a lone "v" prints "()".
bool params(State& s) noexcept {
  if (!put(s, "(")) return false;
  if (peek(s) == 'v') {
    ++s.p;
    if (param_end(s) || ((peek(s) == 'R' || peek(s) == 'O') && peek(s, 1) == 'E')) return put(s, ")");
    --s.p;
  }
  return arg_list(s, false, kNoStore) && put(s, ")");
}

bool template_args(State& s, bool store) noexcept {
  Depth d(s);
  if (!d.ok() || !eat(s, 'I')) return false;
  if (last_char(s) == '<' && !put(s, " ")) return false;
  if (!put(s, "<")) return false;
  const char* hold = s.last;
  size_t hold_len = s.last_len;
  if (store) s.nargs = 0;
  // libiberty resolves a T_ in there against the final argument list: not
  // known yet, so give up.
  s.storing_args += store;
  bool ok = arg_list(s, true, store ? kStoreArgs : kNoStore);
  s.storing_args -= store;
  if (!ok) return false;
  s.last = hold;
  s.last_len = hold_len;
  if (last_char(s) == '>' && !put(s, " ")) return false;
  return put(s, ">");
}

// L <type> <value> E for the integer types; everything else gives up.
bool literal(State& s) noexcept {
  if (!eat(s, 'L')) return false;
  char ty = peek(s);
  const char* tname = builtin_name(kBuiltins, sizeof kBuiltins / sizeof kBuiltins[0], ty);
  if (tname == nullptr) {  // an enumeration: "(std::memory_order)5"
    Text t;
    if (!put(s, "(") || !type(s, &t) || t.shape != kPlain || !put(s, ")")) return false;
    ty = '\0';
  } else if (ty == 'v' || ty == 'z' || ty == 'f' || ty == 'd' || ty == 'e' || ty == 'g') {
    return false;
  } else {
    ++s.p;
  }
  bool neg = eat(s, 'n');
  const char* digits = s.p;
  while (is_digit(peek(s))) ++s.p;
  size_t nd = size_t(s.p - digits);
  if (nd == 0 || !eat(s, 'E')) return false;
  if (ty == 'b') {
    if (neg || nd != 1 || (digits[0] != '0' && digits[0] != '1')) return false;
    return put(s, digits[0] == '1' ? "true" : "false");
  }
  const char* suffix = nullptr;
  switch (ty) {
    case 'i': suffix = ""; break;
    case 'j': suffix = "u"; break;
    case 'l': suffix = "l"; break;
    case 'm': suffix = "ul"; break;
    case 'x': suffix = "ll"; break;
    case 'y': suffix = "ull"; break;
    default: break;
  }
  if (suffix == nullptr && tname != nullptr && !(put(s, "(") && put(s, tname) && put(s, ")"))) return false;
  return (!neg || put(s, "-")) && put(s, digits, nd) && put(s, suffix != nullptr ? suffix : "");
}

bool template_arg(State& s, Text* t, Store store) noexcept {
  *t = Text{};
  switch (peek(s)) {
    case 'L':
      return peek(s, 1) != '_' && literal(s);
    case 'J': {
      Depth d(s);
      if (!d.ok()) return false;
      ++s.p;
      t->shape = kPack;
      if (store != kStoreArgs) return arg_list(s, true, kNoStore);
      // The elements are kept for Dp expansions in the parameters.
      if (s.nargs >= kMaxArgs) return false;
      int first = s.nelems;
      if (!arg_list(s, true, kStoreElems)) return false;
      s.args[s.nargs].first = uint8_t(first);
      s.args[s.nargs].count = uint8_t(s.nelems - first);
      return true;
    }
    case 'X':
      return false;
    default:
      return type(s, t);
  }
}

// T_ T0_ ...: the template argument's text.
bool template_param(State& s, Text* t) noexcept {
  if (!eat(s, 'T') || s.no_tparams > 0 || s.storing_args > 0) return false;
  size_t i = 0;
  if (!compact_number(s, &i)) return false;
  if (s.nargs < 0 || i >= size_t(s.nargs)) return false;
  const Entry& a = s.args[i];
  if (a.t.shape == kPack && s.expanding) {  // one element of the pack a Dp expands
    if (s.pack_arg < 0) s.pack_arg = int(i);
    if (s.pack_arg != int(i)) return false;
    if (s.pack_index >= a.count) {  // an empty pack: printed as nothing
      *t = Text{};
      return true;
    }
    if (!emit(s, s.elems[a.first + s.pack_index], t)) return false;
  } else if (a.t.shape == kPack || !emit(s, a, t)) {  // a pack outside Dp: not supported
    return false;
  }
  t->tparam = true;
  return true;
}

struct StdSub {
  char code;
  const char* simple;
  const char* full;
  const char* last;
};
constexpr StdSub kStdSubs[] = {
    {'t', "std", "std", nullptr},
    {'a', "std::allocator", "std::allocator", "allocator"},
    {'b', "std::basic_string", "std::basic_string", "basic_string"},
    {'s', "std::string", "std::basic_string<char, std::char_traits<char>, std::allocator<char> >", "basic_string"},
    {'i', "std::istream", "std::basic_istream<char, std::char_traits<char> >", "basic_istream"},
    {'o', "std::ostream", "std::basic_ostream<char, std::char_traits<char> >", "basic_ostream"},
    {'d', "std::iostream", "std::basic_iostream<char, std::char_traits<char> >", "basic_iostream"},
};

// S_ S<seq-id>_ or a std abbreviation. In a prefix followed by a
// constructor or destructor, libiberty spells std::string etc. in full.
bool substitution(State& s, bool prefix, Text* t, bool* is_std) noexcept {
  *t = Text{};
  *is_std = false;
  if (!eat(s, 'S')) return false;
  char c = peek(s);
  if (c == '_' || is_digit(c) || is_upper(c)) {
    size_t id = 0;
    if (c != '_') {
      while (is_digit(peek(s)) || is_upper(peek(s))) {
        char d = *s.p++;
        id = id * 36 + size_t(is_digit(d) ? d - '0' : d - 'A' + 10);
        if (id > size_t(kMaxSubs)) return false;
      }
      ++id;
    }
    if (!eat(s, '_') || id >= size_t(s.nsubs)) return false;
    return emit(s, s.subs[id], t);
  }
  for (const StdSub& sub : kStdSubs) {
    if (sub.code != c) continue;
    ++s.p;
    *is_std = true;
    bool verbose = prefix && (peek(s) == 'C' || peek(s) == 'D');
    if (sub.last != nullptr) {
      s.last = sub.last;
      s.last_len = strlen(sub.last);
    }
    return put(s, verbose ? sub.full : sub.simple);
  }
  return false;
}

bool operator_name(State& s, bool* conversion) noexcept {
  char a = peek(s), b = peek(s, 1);
  if (a == 'c' && b == 'v') {
    s.p += 2;
    *conversion = true;
    Text t;
    size_t at = s.len;
    if (!put(s, "operator ") || !type(s, &t)) return false;
    return t.shape != kPack && !t.tparam && s.len > at;
  }
  for (const Operator& op : kOperators) {
    if (op.code[0] != a || op.code[1] != b) continue;
    s.p += 2;
    return put(s, "operator") && (!is_lower(op.name[0]) || put(s, " ")) && put(s, op.name);
  }
  return false;
}

// {lambda(int)#1} and {unnamed type#1}
bool closure_name(State& s) noexcept {
  Depth d(s);
  if (!d.ok() || !eat(s, 'U')) return false;
  size_t n = 0;
  if (eat(s, 't')) return compact_number(s, &n) && put(s, "{unnamed type#") && put_dec(s, n + 1) && put(s, "}");
  if (!eat(s, 'l') || !put(s, "{lambda")) return false;
  ++s.no_tparams;  // libiberty prints generic lambdas' T_ as "auto:1"
  bool ok = params(s);
  --s.no_tparams;
  return ok && eat(s, 'E') && compact_number(s, &n) && put(s, "#") && put_dec(s, n + 1) && put(s, "}");
}

bool unqualified_name(State& s, bool* cdc) noexcept {
  *cdc = false;
  char c = peek(s), c1 = peek(s, 1);
  if (is_digit(c)) {
    if (!source_name(s)) return false;
  } else if (c == 'L') {
    ++s.p;
    if (!source_name(s) || !discriminator(s)) return false;
  } else if (c == 'C' && c1 >= '1' && c1 <= '5') {
    s.p += 2;
    *cdc = true;
    if (s.last == nullptr || !put(s, s.last, s.last_len)) return false;
  } else if (c == 'D' && (c1 == '0' || c1 == '1' || c1 == '2' || c1 == '4' || c1 == '5')) {
    s.p += 2;
    *cdc = true;
    if (s.last == nullptr || !put(s, "~") || !put(s, s.last, s.last_len)) return false;
  } else if (c == 'U') {
    if (!closure_name(s)) return false;
  } else if (is_lower(c)) {
    if (!operator_name(s, cdc)) return false;
  } else {
    return false;
  }
  while (eat(s, 'B')) {  // ABI tags: [abi:cxx11]; they do not rename constructors
    const char* hold = s.last;
    size_t hold_len = s.last_len;
    if (!put(s, "[abi:") || !source_name(s) || !put(s, "]")) return false;
    s.last = hold;
    s.last_len = hold_len;
  }
  return true;
}

// N [cv] [ref] <prefix components> E; every component but the last, unless
// it came from a substitution, is a substitution candidate.
bool nested_name(State& s, NameInfo* ni, bool store) noexcept {
  if (!eat(s, 'N')) return false;
  ni->quals = cv_qualifiers(s);
  if (ni->quals == kBadCv) return false;
  if (peek(s) == 'R' || peek(s) == 'O') ni->ref = *s.p++;
  size_t start = s.len;
  bool any = false;
  while (!eat(s, 'E')) {
    char c = peek(s);
    bool from_sub = false;
    if (c == 'M') {  // a lambda's initializer scope: nothing printed
      if (!any) return false;
      ++s.p;
      continue;
    }
    if (c == 'I') {
      if (!any || !template_args(s, store)) return false;
      ni->is_template = true;
    } else {
      if (any && !put(s, "::")) return false;
      Text t;
      if (c == 'S') {
        bool is_std;
        if (!substitution(s, true, &t, &is_std)) return false;
        from_sub = true;
        ni->cdc = false;
      } else if (c == 'T') {
        if (!template_param(s, &t)) return false;
        ni->cdc = false;
      } else if (c == 'D' && (peek(s, 1) == 't' || peek(s, 1) == 'T' || peek(s, 1) == 'C')) {
        return false;
      } else if (!unqualified_name(s, &ni->cdc)) {
        return false;
      }
      ni->is_template = false;
    }
    any = true;
    if (!from_sub && peek(s) != 'E' && !add_sub(s, start, Text{})) return false;
  }
  return any;
}

// Z <encoding> E <entity> [<discriminator>], or "string literal".
// store: this is the name of the symbol's own encoding, whose template
// arguments T_ refers to; elsewhere (a local type inside a template argument)
// the inner function's T_ would need a second argument table, so T_ gives up.
bool local_name(State& s, NameInfo* ni, bool store) noexcept {
  if (!eat(s, 'Z')) return false;
  if (!store) ++s.no_tparams;
  bool ok = encoding(s, false, false);
  if (!store) --s.no_tparams;
  if (!ok || !eat(s, 'E') || !put(s, "::")) return false;
  if (store) s.nargs = -1;
  if (eat(s, 's')) return put(s, "string literal") && discriminator(s);
  if (peek(s) == 'd') return false;  // default argument scope
  return name(s, ni, store) && discriminator(s);
}

bool name(State& s, NameInfo* ni, bool store) noexcept {
  Depth d(s);
  if (!d.ok()) return false;
  *ni = NameInfo{};
  size_t start = s.len;
  char c = peek(s);
  if (c == 'N') return nested_name(s, ni, store);
  if (c == 'Z') return local_name(s, ni, store);
  bool from_sub = false;
  if (c == 'S' && peek(s, 1) != 't') {
    Text t;
    if (!substitution(s, false, &t, &ni->std_sub)) return false;
    from_sub = true;
  } else {
    if (c == 'S') {
      s.p += 2;
      if (!put(s, "std::")) return false;
    }
    if (!unqualified_name(s, &ni->cdc)) return false;
  }
  if (peek(s) == 'I') {
    if (!from_sub && !add_sub(s, start, Text{})) return false;
    if (!template_args(s, store)) return false;
    ni->is_template = true;
    ni->std_sub = false;
  }
  return true;
}

// Applies one declarator modifier ('P', 'R', 'O', or 0x80|cv bits) to the
// type text at start, where libiberty would print it.
bool apply_mod(State& s, size_t start, Text* t, uint8_t mod) noexcept {
  char m[32];
  size_t n = 0;
  bool cv = (mod & 0x80) != 0;
  if (!cv && (mod == 'R' || mod == 'O') && t->ref != 0) {
    // A reference to a reference collapses (& + && = &), one level deep as
    // libiberty prints it: the inner reference is then printed unchecked.
    if (t->shape != kPlain || t->collapsed) return false;
    t->tparam = false;
    t->collapsed = true;
    if (t->ref == 1 || mod == 'O') return true;
    if (s.len - start < 2) return false;
    s.len -= 2;
    t->ref = 1;
    return put(s, "&");
  }
  if (cv && (mod & t->cv & 7) != 0) {
    // libiberty prints a qualifier once when it meets the same one inside
    // (through a template parameter or substitution); only the simple case.
    if ((mod & 7) != t->cv || (t->cv & (t->cv - 1)) != 0) return false;
    t->tparam = false;
    return true;
  }
  if (cv) {
    if (mod & 1) memcpy(m + n, " const", 6), n += 6;
    if (mod & 2) memcpy(m + n, " volatile", 9), n += 9;
    if (mod & 4) memcpy(m + n, " restrict", 9), n += 9;
  } else {
    m[n++] = mod == 'P' ? '*' : '&';
    if (mod == 'O') m[n++] = '&';
  }
  t->tparam = false;
  t->collapsed = false;
  t->ref = cv ? 0 : mod == 'R' ? 1 : mod == 'O' ? 2 : 0;
  t->cv = cv ? uint8_t(mod & 7) : 0;
  switch (t->shape) {
    case kPlain:
      return put(s, m, n);
    case kArrayBare:
      if (cv) {  // qualifies the element: "char const [3]"
        if (!insert(s, start + t->split, m, n)) return false;
        t->split = uint16_t(t->split + n);
        return true;
      }
      [[fallthrough]];
    case kFuncBare: {
      if (cv) return false;
      size_t at = start + t->split;
      if (t->shape == kFuncBare) erase(s, at, 1);
      if (!insert(s, at, " (", 2) || !insert(s, at + 2, m, n) || !insert(s, at + 2 + n, ")", 1)) return false;
      t->split = uint16_t(t->split + 2 + n);
      t->shape = kWrapped;
      return true;
    }
    case kWrapped:
      if (!insert(s, start + t->split, m, n)) return false;
      t->split = uint16_t(t->split + n);
      return true;
    default:
      return false;
  }
}

// Pointers, references and cv-qualifiers: the inner type first, then each
// modifier from the innermost out, each level a substitution candidate.
bool modified_type(State& s, size_t start, Text* t) noexcept {
  uint8_t mods[kMaxMods];
  int n = 0;
  for (;;) {
    char c = peek(s);
    if (c == 'P' || c == 'R' || c == 'O') {
      mods[n] = uint8_t(c);
      ++s.p;
    } else if (c == 'r' || c == 'V' || c == 'K') {
      uint8_t bits = cv_qualifiers(s);
      if (bits == kBadCv || peek(s) == 'F') return false;  // "void () const": not supported
      mods[n] = uint8_t(0x80 | bits);
    } else {
      break;
    }
    if (++n == kMaxMods) return false;
  }
  if (!type(s, t)) return false;
  for (int i = n - 1; i >= 0; --i)
    if (!apply_mod(s, start, t, mods[i]) || !add_sub(s, start, *t)) return false;
  return true;
}

// F [Y] <return type> <parameters> E: "void (int)".
bool function_type(State& s, size_t start, Text* t) noexcept {
  if (!eat(s, 'F')) return false;
  eat(s, 'Y');
  Text r;
  if (!type(s, &r) || r.shape != kPlain) return false;
  size_t split = s.len - start;
  if (!put(s, " ") || !params(s) || !eat(s, 'E')) return false;
  *t = Text{.shape = kFuncBare, .split = uint16_t(split)};
  return true;
}

// A <number> _ <type>: "int [3]".
bool array_type(State& s, size_t start, Text* t) noexcept {
  if (!eat(s, 'A')) return false;
  const char* dim = s.p;
  while (is_digit(peek(s))) ++s.p;
  size_t ndim = size_t(s.p - dim);
  Text e;
  if (!eat(s, '_') || !type(s, &e) || e.shape != kPlain) return false;
  size_t split = s.len - start;
  if (!put(s, " [") || !put(s, dim, ndim) || !put(s, "]")) return false;
  *t = Text{.shape = kArrayBare, .split = uint16_t(split)};
  return true;
}

// M <class type> <member type>: "int A::*", "void (A::*)(int)".
bool member_pointer(State& s, size_t start, Text* t) noexcept {
  if (!eat(s, 'M')) return false;
  Text c, m;
  if (!type(s, &c) || c.shape != kPlain) return false;
  size_t clen = s.len - start;
  // A const member function: "void (A::*)() const".
  const char* q = s.p;
  uint8_t cv = cv_qualifiers(s);
  if (cv == kBadCv) return false;
  if (cv != 0 && peek(s) != 'F') {
    s.p = q;
    cv = 0;
  }
  // A qualified function type is one candidate, not two.
  if (!(cv != 0 ? function_type(s, s.len, &m) : type(s, &m))) return false;
  if (cv != 0) {
    if ((cv & 1) && !put(s, " const")) return false;
    if ((cv & 2) && !put(s, " volatile")) return false;
    if ((cv & 4) && !put(s, " restrict")) return false;
    // libiberty's candidate for the qualified function type: text unknown here.
    if (s.nsubs == kMaxSubs) return false;
    s.subs[s.nsubs++].t.shape = kPoison;
  }
  size_t mlen = s.len - start - clen;
  *t = Text{};
  if (m.shape == kPlain) {
    rotate(s, start, start + clen, s.len);
    return insert(s, start + mlen, " ", 1) && put(s, "::*");
  }
  if (m.shape != kFuncBare) return false;
  size_t ret = m.split;
  rotate(s, start, start + clen, start + clen + ret);  // return type, class, " (params)"
  erase(s, start + ret + clen, 1);
  if (!insert(s, start + ret + clen, "::*)", 4) || !insert(s, start + ret, " (", 2)) return false;
  *t = Text{.shape = kWrapped, .split = uint16_t(ret + 2 + clen + 3)};
  return true;
}

// Dp <pattern>: the pattern once per element of the pack it names, with
// ", " between; nothing for an empty pack. The pattern is parsed again for
// each element (its candidates only the first time).
bool pack_expansion(State& s, size_t start, Text* t) noexcept {
  if (s.expanding) return false;
  s.p += 2;
  const char* pattern = s.p;
  s.expanding = true;
  s.pack_arg = -1;
  s.pack_index = 0;
  bool ok = type(s, t);
  const char* after = s.p;
  size_t count = ok && s.pack_arg >= 0 ? s.args[s.pack_arg].count : 0;
  ok = ok && s.pack_arg >= 0;
  if (ok && count == 0) s.len = start;
  s.no_subs = true;
  for (size_t i = 1; ok && i < count; ++i) {
    s.p = pattern;
    s.pack_index = i;
    ok = put(s, ", ") && type(s, t) && s.p == after;
  }
  s.no_subs = false;
  s.expanding = false;
  *t = Text{.shape = kPack, .split = 0};
  return ok;
}

bool type(State& s, Text* t) noexcept {
  Depth d(s);
  if (!d.ok()) return false;
  *t = Text{};
  size_t start = s.len;
  char c = peek(s), c1 = peek(s, 1);
  if (const char* b = builtin_name(kBuiltins, sizeof kBuiltins / sizeof kBuiltins[0], c)) {
    ++s.p;
    return put(s, b);
  }
  switch (c) {
    case 'P': case 'R': case 'O': case 'K': case 'V': case 'r':
      return modified_type(s, start, t);
    case 'F':
      if (!function_type(s, start, t)) return false;
      break;
    case 'A':
      if (!array_type(s, start, t)) return false;
      break;
    case 'M':
      if (!member_pointer(s, start, t)) return false;
      break;
    case 'T':
      if (!template_param(s, t)) return false;
      if (peek(s) == 'I') {
        if (!add_sub(s, start, *t) || !template_args(s, false)) return false;
        *t = Text{};
      }
      break;
    case 'D':
      if (const char* b = builtin_name(kDBuiltins, sizeof kDBuiltins / sizeof kDBuiltins[0], c1)) {
        s.p += 2;
        return put(s, b);
      }
      if (c1 != 'p' || !pack_expansion(s, start, t)) return false;
      break;
    case 'S':
      if (c1 == '_' || is_digit(c1) || is_upper(c1)) {
        bool is_std;
        if (!substitution(s, false, t, &is_std)) return false;
        if (peek(s) != 'I') return true;
        if (!template_args(s, false)) return false;
        *t = Text{};
        break;
      }
      [[fallthrough]];
    case 'N': case 'Z': case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
    case '8': case '9': {
      NameInfo ni;
      if (!name(s, &ni, false)) return false;
      if (ni.quals != 0 || ni.ref != 0) return false;
      if (ni.std_sub) return true;
      break;
    }
    default:
      return false;
  }
  return add_sub(s, start, *t);
}

// h <offset> _ | v <offset> _ <virtual offset> _
bool call_offset(State& s) noexcept {
  char c = peek(s);
  if (c != 'h' && c != 'v') return false;
  ++s.p;
  for (int i = 0; i < (c == 'h' ? 1 : 2); ++i) {
    size_t n;
    eat(s, 'n');
    if (!number(s, &n) || !eat(s, '_')) return false;
  }
  return true;
}

// The class of a vtable or typeinfo. A local class's T_ refer to its
// function's arguments: it is parsed as the symbol's own name.
bool special_type(State& s) noexcept {
  NameInfo ni;
  Text t;
  if (peek(s) == 'Z') return name(s, &ni, true) && ni.quals == 0 && ni.ref == 0;
  return type(s, &t);
}

bool special_name(State& s) noexcept {
  char c = *s.p++, c1 = peek(s);
  if (at_end(s)) return false;
  ++s.p;
  NameInfo ni;
  Text t;
  if (c == 'T') {
    switch (c1) {
      case 'V': return put(s, "vtable for ") && special_type(s);
      case 'T': return put(s, "VTT for ") && special_type(s);
      case 'I': return put(s, "typeinfo for ") && special_type(s);
      case 'S': return put(s, "typeinfo name for ") && special_type(s);
      case 'H': return put(s, "TLS init function for ") && name(s, &ni, false) && ni.quals == 0 && ni.ref == 0;
      case 'W': return put(s, "TLS wrapper function for ") && name(s, &ni, false) && ni.quals == 0 && ni.ref == 0;
      case 'h': case 'v':
        --s.p;
        return call_offset(s) && put(s, c1 == 'h' ? "non-virtual thunk to " : "virtual thunk to ") &&
               encoding(s, false);
      case 'c':
        return call_offset(s) && call_offset(s) && put(s, "covariant return thunk to ") && encoding(s, false);
      case 'C': {
        if (!put(s, "construction vtable for ")) return false;
        size_t a = s.len;
        size_t n;
        if (!type(s, &t) || !number(s, &n) || !eat(s, '_')) return false;
        size_t b = s.len;
        if (!type(s, &t)) return false;
        rotate(s, a, b, s.len);
        return insert(s, a + (s.len - b), "-in-", 4);
      }
      default: return false;
    }
  }
  if (c1 == 'V') return put(s, "guard variable for ") && name(s, &ni, false) && ni.quals == 0 && ni.ref == 0;
  return false;
}

// top: the whole symbol (clone suffixes may follow). A local name's function
// is printed without its return type.
bool encoding(State& s, bool top, bool return_type) noexcept {
  Depth d(s);
  if (!d.ok()) return false;
  char c = peek(s);
  if (c == 'T' || (c == 'G' && peek(s, 1) == 'V')) return special_name(s);
  if (c == 'G' && peek(s, 1) == 'T' && peek(s, 2) == 't') {  // GCC's transactional memory clones
    s.p += 3;
    return put(s, "transaction clone for ") && encoding(s, false);
  }
  size_t start = s.len;
  NameInfo ni;
  bool store = s.no_tparams == 0;
  if (!name(s, &ni, store)) return false;
  if (!ni.is_template && store) s.nargs = -1;
  c = peek(s);
  if (c == '\0' || c == 'E') return ni.quals == 0 && ni.ref == 0 && (c == 'E' || !top || at_end(s));
  if (ni.is_template && !ni.cdc) {
    size_t ret = s.len;
    Text t;
    if (!type(s, &t)) return false;
    if (!return_type) {
      s.len = ret;
    } else {
      if (t.shape != kPlain || !put(s, " ")) return false;
      rotate(s, start, ret, s.len);
    }
  }
  if (!params(s)) return false;
  if ((ni.quals & 1) && !put(s, " const")) return false;
  if ((ni.quals & 2) && !put(s, " volatile")) return false;
  if ((ni.quals & 4) && !put(s, " restrict")) return false;
  if (ni.ref != 0 && !put(s, ni.ref == 'R' ? " &" : " &&")) return false;
  return true;
}

// .cold, .isra.0, .constprop.0.isra.0: " [clone .cold]" ...
bool clone_suffixes(State& s) noexcept {
  while (peek(s) == '.' && (is_lower(peek(s, 1)) || is_digit(peek(s, 1)) || peek(s, 1) == '_')) {
    const char* b = s.p;
    s.p += 2;
    while (is_lower(peek(s)) || is_digit(peek(s)) || peek(s) == '_') ++s.p;
    while (peek(s) == '.' && is_digit(peek(s, 1))) {
      s.p += 2;
      while (is_digit(peek(s))) ++s.p;
    }
    if (!put(s, " [clone ") || !put(s, b, size_t(s.p - b)) || !put(s, "]")) return false;
  }
  return at_end(s);
}

bool demangle_into(State& s) noexcept {
  size_t n = size_t(s.end - s.p);
  if (n >= 11 && memcmp(s.p, "_GLOBAL_", 8) == 0 && (s.p[8] == '.' || s.p[8] == '_' || s.p[8] == '$') &&
      (s.p[9] == 'I' || s.p[9] == 'D') && s.p[10] == '_') {
    if (!put(s, s.p[9] == 'I' ? "global constructors keyed to " : "global destructors keyed to ")) return false;
    s.p += 11;
    if (peek(s) == '_' && peek(s, 1) == 'Z') {
      s.p += 2;
      return encoding(s, false) && at_end(s);
    }
    for (const char* q = s.p; q < s.end; ++q)
      if (static_cast<unsigned char>(*q) <= ' ' || static_cast<unsigned char>(*q) >= 0x7f) return false;
    return s.p < s.end && put(s, s.p, size_t(s.end - s.p));
  }
  if (n < 3 || s.p[0] != '_' || s.p[1] != 'Z') return false;
  s.p += 2;
  return encoding(s, true) && clone_suffixes(s);
}

}  // namespace

bool demangle(const char* mangled, size_t len, char* out, size_t out_size) noexcept {
  if (out == nullptr || out_size == 0) return false;
  out[0] = '\0';
  if (mangled == nullptr) return false;
  State s;
  s.p = mangled;
  s.end = mangled + len;
  s.out = out;
  s.cap = (out_size > kMaxOut ? kMaxOut : out_size) - 1;
  if (!demangle_into(s)) {
    out[0] = '\0';
    return false;
  }
  out[s.len] = '\0';
  return true;
}

bool demangle(const char* mangled, char* out, size_t out_size) noexcept {
  return demangle(mangled, mangled != nullptr ? strlen(mangled) : 0, out, out_size);
}

}  // namespace panicstop::sys
