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

#include "sys/demangle_state.hpp"

namespace panicstop::sys {
namespace demangle_detail {

static bool source_name(State& s) noexcept {
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
static bool discriminator(State& s) noexcept {
  if (!eat(s, '_')) return true;
  bool two = eat(s, '_');
  size_t n = 0;
  if (!number(s, &n)) return false;
  if (two && n >= 10 && !eat(s, '_')) return false;
  return true;
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
    const Entry& e = s.subs[id];
    if (e.pack_param >= 0 && s.expanding && e.pack_param < s.nargs) return pack_element(s, e.pack_param, t);
    return emit(s, e, t);
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

static bool operator_name(State& s, bool* conversion) noexcept {
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
static bool closure_name(State& s) noexcept {
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

static bool unqualified_name(State& s, bool* cdc) noexcept {
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
static bool nested_name(State& s, NameInfo* ni, bool store) noexcept {
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
        // A template parameter is a prefix only: it never ends a nested name.
        if (!template_param(s, &t) || peek(s) == 'E') return false;
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
static bool local_name(State& s, NameInfo* ni, bool store) noexcept {
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

// h <offset> _ | v <offset> _ <virtual offset> _
static bool call_offset(State& s) noexcept {
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
static bool special_type(State& s) noexcept {
  NameInfo ni;
  Text t;
  if (peek(s) == 'Z') return name(s, &ni, true) && ni.quals == 0 && ni.ref == 0;
  return type(s, &t);
}

static bool special_name(State& s) noexcept {
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
static bool clone_suffixes(State& s) noexcept {
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

}  // namespace demangle_detail


bool demangle(const char* mangled, size_t len, char* out, size_t out_size) noexcept {
  using namespace demangle_detail;
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
