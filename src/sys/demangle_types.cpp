// The demangler's types and template arguments; see demangle_state.hpp.
#include "sys/demangle_state.hpp"

namespace panicstop::sys::demangle_detail {

static bool pack_expansion(State& s, size_t start, Text* t) noexcept;
static bool pack_expression(State& s, Text* t) noexcept;

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
static const char* builtin_name(const Builtin* table, size_t n, char c) noexcept {
  for (size_t i = 0; i < n; ++i)
    if (table[i].code == c) return table[i].name;
  return nullptr;
}

// The end of a parameter list (the encoding's or a function type's).
static bool param_end(const State& s) noexcept {
  char c = peek(s);
  return c == '\0' || c == 'E' || c == '.' || c == 'Q';
}

enum Store : uint8_t { kNoStore, kStoreArgs, kStoreElems };

static bool template_arg(State& s, Text* t, Store store) noexcept;

// Items separated by ", ", as libiberty prints argument lists: a separator
// stays unless everything after it printed nothing (an empty pack). A
// template argument list ends at 'E' (consumed), parameters at param_end().
// store: keep each item's text as a template argument (the function's own
// T_ ...) or as an element of the pack argument being stored.
static bool arg_list(State& s, bool template_args, Store store) noexcept {
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
static bool literal(State& s) noexcept {
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

static bool template_arg(State& s, Text* t, Store store) noexcept {
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
      // Of the expressions only "sp T_" (a template parameter pack expanded
      // in place, as std::_Index_tuple<_Indices...> spells it): its elements.
      return pack_expression(s, t);
    default:
      return type(s, t);
  }
}

// X sp T_ E: every element of the pack argument, ", " between, as libiberty
// prints it; the separators around an empty one are arg_list's.
static bool pack_expression(State& s, Text* t) noexcept {
  if (peek(s, 1) != 's' || peek(s, 2) != 'p' || peek(s, 3) != 'T') return false;
  if (s.no_tparams > 0 || s.storing_args > 0 || s.expanding) return false;
  s.p += 4;
  size_t i = 0;
  if (!compact_number(s, &i) || !eat(s, 'E')) return false;
  if (s.nargs < 0 || i >= size_t(s.nargs) || s.args[i].t.shape != kPack) return false;
  const Entry& a = s.args[i];
  for (size_t k = 0; k < a.count; ++k) {
    Text element;
    if ((k > 0 && !put(s, ", ")) || !emit(s, s.elems[a.first + k], &element)) return false;
  }
  *t = Text{.shape = kPack, .split = 0};
  return true;
}

// T_ T0_ ...: the template argument's text.
bool template_param(State& s, Text* t) noexcept {
  if (!eat(s, 'T') || s.no_tparams > 0 || s.storing_args > 0) return false;
  size_t i = 0;
  if (!compact_number(s, &i)) return false;
  if (s.nargs < 0 || i >= size_t(s.nargs)) return false;
  s.last_pack_param = -1;
  const Entry& a = s.args[i];
  if (a.t.shape == kPack && s.expanding) return pack_element(s, int(i), t);
  if (a.t.shape == kPack || !emit(s, a, t)) return false;  // a pack outside Dp: not supported
  t->tparam = true;
  return true;
}

bool pack_element(State& s, int arg, Text* t) noexcept {
  if (s.pack_arg < 0) s.pack_arg = arg;
  if (s.pack_arg != arg) return false;
  s.last_pack_param = arg;
  const Entry& a = s.args[arg];
  if (s.pack_index >= a.count) {  // an empty pack: printed as nothing
    *t = Text{};
    return true;
  }
  if (!emit(s, s.elems[a.first + s.pack_index], t)) return false;
  t->tparam = true;
  return true;
}

// Applies one declarator modifier ('P', 'R', 'O', or 0x80|cv bits) to the
// type text at start, where libiberty would print it.
static bool apply_mod(State& s, size_t start, Text* t, uint8_t mod) noexcept {
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
static bool modified_type(State& s, size_t start, Text* t) noexcept {
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
static bool function_type(State& s, size_t start, Text* t) noexcept {
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
static bool array_type(State& s, size_t start, Text* t) noexcept {
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
static bool member_pointer(State& s, size_t start, Text* t) noexcept {
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
static bool pack_expansion(State& s, size_t start, Text* t) noexcept {
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
      // Inside a Dp the candidate remembers the pack, not this element's text.
      if (s.last_pack_param >= 0 && peek(s) != 'I') return add_pack_param_sub(s, s.last_pack_param);
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

}  // namespace panicstop::sys::demangle_detail
