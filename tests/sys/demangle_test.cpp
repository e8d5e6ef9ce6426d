// sys::demangle against libstdc++'s abi::__cxa_demangle (the same libiberty
// code c++filt uses): it must print exactly that text or give up.
#include "sys/demangle.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "support/reports.hpp"

namespace panicstop::sys {
namespace {

std::string reference(const std::string& mangled) { return testing::cxa_demangled(mangled); }

std::string ours(const std::string& mangled, size_t size = 4096) {
  std::vector<char> out(size);
  return demangle(mangled.c_str(), out.data(), out.size()) ? out.data() : "";
}

// The C++ (and _GLOBAL_) symbols among path's defined ones.
std::vector<std::string> nm_symbols(const std::string& path, const char* flags) {
  std::vector<std::string> names;
  for (const std::string& n : testing::nm_defined_symbols(path, flags))
    if (n.rfind("_Z", 0) == 0 || n.rfind("_GLOBAL_", 0) == 0) names.push_back(n);
  return names;
}

std::string mapped_path(const char* needle) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    size_t slash = line.find('/');
    if (slash != std::string::npos && line.find(needle, slash) != std::string::npos) return line.substr(slash);
  }
  return "";
}

struct CorpusResult {
  size_t total = 0, reference_ok = 0, ours_ok = 0;
  std::vector<std::string> wrong;
};

CorpusResult run_corpus(const std::vector<std::string>& names) {
  CorpusResult r;
  std::set<std::string> seen;
  for (const std::string& n : names) {
    if (!seen.insert(n).second) continue;
    ++r.total;
    std::string want = reference(n);
    std::string got = ours(n);
    if (!want.empty()) ++r.reference_ok;
    if (got.empty()) continue;
    ++r.ours_ok;
    if (got != want) r.wrong.push_back(n + "\n   ours:  " + got + "\n   c++filt: " + (want.empty() ? "(fails)" : want));
  }
  return r;
}

void expect_corpus(const char* what, const CorpusResult& r, double min_fraction) {
  for (size_t i = 0; i < r.wrong.size() && i < 20; ++i) ADD_FAILURE() << "differs from __cxa_demangle: " << r.wrong[i];
  EXPECT_TRUE(r.wrong.empty()) << r.wrong.size() << " symbols of " << what << " demangled differently";
  ASSERT_GT(r.reference_ok, 0u);
  double fraction = double(r.ours_ok) / double(r.reference_ok);
  std::printf("%s: %zu distinct symbols, __cxa_demangle demangles %zu, sys::demangle %zu (%.1f%%)\n", what, r.total,
              r.reference_ok, r.ours_ok, 100.0 * fraction);
  EXPECT_GE(fraction, min_fraction) << what;
}

struct Case {
  const char* mangled;
  const char* demangled;
};

// Names as real stacks and libraries contain them; the expected text is
// c++filt's, and each is also checked against __cxa_demangle.
constexpr Case kCases[] = {
    {"_ZNSt6thread11_State_implINS_8_InvokerISt5tupleIJPFvvEEEEEE6_M_runEv",
     "std::thread::_State_impl<std::thread::_Invoker<std::tuple<void (*)()> > >::_M_run()"},
    {"_Z3fooi", "foo(int)"},
    {"_ZN3foo3barEv", "foo::bar()"},
    {"_ZNK3foo3barERKSs", "foo::bar(std::string const&) const"},
    {"_ZNSt6vectorIiSaIiEE9push_backERKi", "std::vector<int, std::allocator<int> >::push_back(int const&)"},
    {"_ZNSsC1ERKSs",
     "std::basic_string<char, std::char_traits<char>, std::allocator<char> >::basic_string(std::string const&)"},
    {"_ZNSoD0Ev", "std::basic_ostream<char, std::char_traits<char> >::~basic_ostream()"},
    {"_ZN1AC2Ev", "A::A()"},
    {"_ZN1AD2Ev", "A::~A()"},
    {"_ZN1AD1Ev", "A::~A()"},
    {"_Z1fSaIcESbIwE", "f(std::allocator<char>, std::basic_string<wchar_t>)"},
    {"_Z1fSiSoSd", "f(std::istream, std::ostream, std::iostream)"},
    {"_Z1fPKcS0_", "f(char const*, char const*)"},
    {"_Z1fRiOiPVKi", "f(int&, int&&, int const volatile*)"},
    {"_Z1fROiOOiORi", "f(int&, int&&, int&)"},
    {"_ZZN1A1fIiEEvT_E1x", "A::f<int>(int)::x"},
    {"_Z3maxIiET_S0_S0_", "int max<int>(int, int)"},
    {"_ZN1A1fIiEEvT_", "void A::f<int>(int)"},
    {"_ZN9__gnu_cxx13new_allocatorIcEC2ERKS1_",
     "__gnu_cxx::new_allocator<char>::new_allocator(__gnu_cxx::new_allocator<char> const&)"},
    {"_ZNK1AplERKS_", "A::operator+(A const&) const"},
    {"_ZN1AlsEi", "A::operator<<(int)"},
    {"_ZN1AcviEv", "A::operator int()"},
    {"_Znwm", "operator new(unsigned long)"},
    {"_ZdlPvm", "operator delete(void*, unsigned long)"},
    {"_ZZ4mainENKUlvE_clEv", "main::{lambda()#1}::operator()() const"},
    {"_ZZ4mainENKUliE0_clEi", "main::{lambda(int)#2}::operator()(int) const"},
    {"_ZZ1fvE1x", "f()::x"},
    {"_ZZ1fvE1x_0", "f()::x"},
    {"_ZN12_GLOBAL__N_13fooEv", "(anonymous namespace)::foo()"},
    {"_ZL3barv", "bar()"},
    {"_ZN1AUt_3fooEv", "A::{unnamed type#1}::foo()"},
    {"_Z1fv.cold", "f() [clone .cold]"},
    {"_Z1fi.isra.0", "f(int) [clone .isra.0]"},
    {"_Z1fi.constprop.0.isra.0", "f(int) [clone .constprop.0] [clone .isra.0]"},
    {"_ZTV1A", "vtable for A"},
    {"_ZTI1A", "typeinfo for A"},
    {"_ZTS1A", "typeinfo name for A"},
    {"_ZThn8_N1A1fEv", "non-virtual thunk to A::f()"},
    {"_ZGVZ4mainE1x", "guard variable for main::x"},
    {"_Z1fPFviE", "f(void (*)(int))"},
    {"_Z1fRA10_i", "f(int (&) [10])"},
    {"_Z1fM1AFvvE", "f(void (A::*)())"},
    {"_Z1fM1Ai", "f(int A::*)"},
    {"_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE9_M_appendEPKcm",
     "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >::_M_append(char const*, "
     "unsigned long)"},
    {"_ZNKSt7__cxx118numpunctIcE8groupingB5cxx11Ev", "std::__cxx11::numpunct<char>::grouping[abi:cxx11]() const"},
    {"_Z1fILi3EEvv", "void f<3>()"},
    {"_Z1fILb1EEvv", "void f<true>()"},
    {"_Z1fIJidEEvv", "void f<int, double>()"},
    {"_Z1fIJEEvv", "void f<>()"},
    {"_ZN1AILj4EE1fEv", "A<4u>::f()"},
    {"_ZN1AltIiEEbv", "bool A::operator< <int>()"},
    {"_Z1fIiERT_OS0_", "int& f<int>(int&&)"},
    // Pack expansions, one element each, references collapsed.
    {"_Z1fIJRiiEEvDpOT_", "void f<int&, int>(int&, int&&)"},
    {"_ZNSt6vectorIiSaIiEE17_M_realloc_insertIJiEEEvN9__gnu_cxx17__normal_iteratorIPiS1_EEDpOT_",
     "void std::vector<int, std::allocator<int> >::_M_realloc_insert<int>(__gnu_cxx::__normal_iterator<int*, "
     "std::vector<int, std::allocator<int> > >, int&&)"},
    // libiberty's quirks: no "> >" after an empty pack took its ", " back; a
    // const met again through a template parameter printed once; a const
    // member function type is one substitution candidate.
    {"_ZN4llvm11PassBuilder17parsePassPipelineERNS_11PassManagerINS_8FunctionENS_15AnalysisManagerIS2_JEEEJEEENS_9"
     "StringRefE",
     "llvm::PassBuilder::parsePassPipeline(llvm::PassManager<llvm::Function, llvm::AnalysisManager<llvm::Function>>&, "
     "llvm::StringRef)"},
    {"_ZN4llvm1fIKNS_8LoopInfoEEEvRKT_", "void llvm::f<llvm::LoopInfo const>(llvm::LoopInfo const&)"},
    {"_Z1fIM1AKFbvEEvT_S2_", "void f<bool (A::*)() const>(bool (A::*)() const, bool (A::*)() const)"},
    // std::__invoke's shape: a Dp whose pattern names the pack through a
    // substitution (S2_ is the T0_ met inside the return type's Dp), for an
    // empty pack and for two elements.
    {"_Z1fIiJEEN1rIT_JDpT0_EE4typeEOS1_DpOS2_", "r<int>::type f<int>(int&&)"},
    {"_Z1fIiJcdEEN1rIT_JDpT0_EE4typeEOS1_DpOS2_",
     "r<int, char, double>::type f<int, char, double>(int&&, char&&, double&&)"},
    // std::thread's _M_invoke<_Indices...>(_Index_tuple<_Indices...>): a pack
    // expanded in an expression (X sp T_ E), with libiberty's separators.
    {"_ZN1a1fIJLm0ELm1EEEEvSt1tIJXspT_EEE", "void a::f<0ul, 1ul>(std::t<0ul, 1ul>)"},
    {"_ZN1a1fIJEEEvSt1tIJLi5EXspT_EEE", "void a::f<>(std::t<5>)"},
    {"_ZN1a1fIJEEEvSt1tIJXspT_ELi5EEE", "void a::f<>(std::t<, 5>)"},
};

TEST(Demangle, HandPickedNamesMatchCxxFilt) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.mangled);
    EXPECT_EQ(reference(c.mangled), c.demangled) << "the expected text is not c++filt's";
    EXPECT_EQ(ours(c.mangled), c.demangled);
  }
}

TEST(Demangle, QuirksItDoesNotCopyAreRefusedNotGuessed) {
  // libiberty collapses a reference to a reference only one level deep
  // ("int&&&" here); demangle() gives up instead of printing "int&".
  EXPECT_EQ(reference("_Z1fOORi"), "f(int&&&)");
  EXPECT_EQ(ours("_Z1fOORi"), "");
  // A qualified function type outside a member pointer, decltype and
  // expressions: not supported.
  for (const char* n : {"_Z1fPKFvvE", "_Z1fIiEDTcl1gT_EES0_", "_Z1fILi1EEvPAplT_Li1E_i"}) EXPECT_EQ(ours(n), "") << n;
}

TEST(Demangle, GlobalConstructorNamesAsCxxFiltPrintsThem) {
  // c++filt leaves GCC's "_GLOBAL__sub_I_" names alone: so does demangle().
  for (const char* n : {"_GLOBAL__sub_I_main", "_GLOBAL__sub_I__ZN3foo3barEv"}) {
    EXPECT_EQ(reference(n), "");
    EXPECT_EQ(ours(n), "") << n;
  }
  EXPECT_EQ(ours("_GLOBAL__I_foo.cpp"), reference("_GLOBAL__I_foo.cpp"));
  EXPECT_EQ(ours("_GLOBAL__I_foo.cpp"), "global constructors keyed to foo.cpp");
}

TEST(Demangle, NotMangledIsFalse) {
  char out[64];
  for (const char* n : {"main", "", "_", "_Z", "Z1fv", "_Y1fv"}) {
    EXPECT_FALSE(demangle(n, out, sizeof out)) << n;
    EXPECT_STREQ(out, "");
  }
  EXPECT_FALSE(demangle(nullptr, out, sizeof out));
}

// Every defined C++ symbol of libstdc++: never a different text, and most of
// them demangled.
TEST(Demangle, LibstdcxxCorpusMatchesCxaDemangle) {
  std::string lib = mapped_path("libstdc++.so");
  ASSERT_FALSE(lib.empty()) << "libstdc++ not mapped";
  std::vector<std::string> names = nm_symbols(lib, "-D");
  ASSERT_GT(names.size(), 1000u) << "nm found too few symbols in " << lib;
  expect_corpus("libstdc++ (nm -D)", run_corpus(names), 0.95);
}

// The test binary's own symbol table: gtest's templates, lambdas, local
// names and whatever the compiler cloned.
TEST(Demangle, OwnSymbolTableMatchesCxaDemangle) {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  ASSERT_GT(n, 0);
  self[n] = '\0';
  std::vector<std::string> names = nm_symbols(self, "");
  ASSERT_GT(names.size(), 100u);
  expect_corpus("test binary (nm)", run_corpus(names), 0.80);
}

TEST(Demangle, TruncatedNamesNeverReadPastTheEnd) {
  // Every prefix, handed over with an exact length in a buffer of its own
  // size (ASan sees any read past it), gives false or c++filt's text.
  for (const Case& c : kCases) {
    std::string full = c.mangled;
    for (size_t len = 0; len < full.size(); ++len) {
      std::vector<char> in(full.begin(), full.begin() + long(len));
      char out[512];
      if (demangle(in.data(), in.size(), out, sizeof out))
        EXPECT_EQ(std::string(out), reference(full.substr(0, len))) << full.substr(0, len);
      else
        EXPECT_STREQ(out, "");
    }
  }
}

TEST(Demangle, DeepNestingIsRefusedNotRecursedInto) {
  for (const char* unit : {"I", "P", "N1aI", "PFv", "Z", "A1_", "Dp", "RK"}) {
    std::string n = "_Z1f";
    for (int i = 0; i < 10000; ++i) n += unit;
    n += "iE";
    char out[1024];
    EXPECT_FALSE(demangle(n.c_str(), out, sizeof out)) << unit;
    EXPECT_STREQ(out, "");
  }
}

TEST(Demangle, HugeNumbersAndIndicesAreRefused) {
  char out[256];
  for (const char* n : {"_Z99999999999999999999999fv", "_Z4294967297f", "_Z18446744073709551617fv", "_Z5abcv",
                        "_Z1fS99999999999999999999_", "_Z1fIiEvT99999999999999999_", "_ZN1aS1_E",
                        "_Z1fIiEvT0_", "_Z1fUl99999999999999999999_"}) {
    EXPECT_FALSE(demangle(n, out, sizeof out)) << n;
    EXPECT_STREQ(out, "");
  }
  // An array bound is only copied, as c++filt does.
  const char* big_array = "_Z1fA99999999999999999999_i";
  EXPECT_EQ(ours(big_array), reference(big_array));
}

TEST(Demangle, TinyBuffersFailCleanly) {
  const char* n = "_ZNSt6vectorIiSaIiEE9push_backERKi";
  std::string want = reference(n);
  for (size_t size = 1; size <= want.size() + 1; ++size) {
    std::vector<char> out(size + 16, 'X');
    bool ok = demangle(n, out.data(), size);
    EXPECT_EQ(ok, size == want.size() + 1) << size;
    EXPECT_EQ(std::string(out.data()), ok ? want : "") << size;
    for (size_t i = size; i < out.size(); ++i) ASSERT_EQ(out[i], 'X') << "wrote past " << size;
  }
  EXPECT_FALSE(demangle(n, nullptr, 0));
}

TEST(Demangle, SubstitutionBlowUpIsBoundedByTheOutput) {
  // Each S_ doubles the text: a few dozen references would be gigabytes.
  std::string n = "_Z1fP1A";
  for (int i = 0; i < 40; ++i) n += "PS" + std::to_string(i) + "_";
  char out[4096];
  EXPECT_FALSE(demangle(n.c_str(), out, sizeof out));
}

// Random bytes and mutations of real names: no crash, and any success is
// c++filt's text.
TEST(Demangle, MutatedNamesGiveFalseOrTheReferenceText) {
  unsigned seed = 12345;
  auto rnd = [&] { return seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff; };
  const char alphabet[] = "_ZNESIJTLKPROFAMDCUlt0123456789abcdefijlmsvxyz.";
  size_t checked = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string n = kCases[rnd() % (sizeof kCases / sizeof kCases[0])].mangled;
    int edits = 1 + int(rnd() % 4);
    for (int e = 0; e < edits && !n.empty(); ++e) {
      size_t at = rnd() % n.size();
      switch (rnd() % 3) {
        case 0: n[at] = alphabet[rnd() % (sizeof alphabet - 1)]; break;
        case 1: n.erase(at, 1); break;
        default: n.insert(at, 1, alphabet[rnd() % (sizeof alphabet - 1)]); break;
      }
    }
    char out[2048];
    if (demangle(n.c_str(), out, sizeof out)) {
      ++checked;
      ASSERT_EQ(std::string(out), reference(n)) << n;
    }
  }
  EXPECT_GT(checked, 0u);
}

}  // namespace
}  // namespace panicstop::sys
