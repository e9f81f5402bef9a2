/*
 * test_demangle — demangle(), heapprof's in-process C++ and Rust demangler
 * (runtime/introspect/demangle.h):
 *   - a table of real names (from libstdc++'s exports, g++ -O2/-O3 and
 *     Debian rustc 1.63 binaries with both manglings, libLLVM-14) gives,
 *     for each style, what go tool pprof 1.19 prints for the same name with
 *     -symbolize=demangle=default/templates/full, or 0 ("use the name as it
 *     is") where pprof prints the name unchanged; DEMANGLE_NONE and bad
 *     styles give 0; names over the caps give 0;
 *   - demangling calls no allocator function (malloc and friends are
 *     wrapped at link time and counted);
 *   - a form that does not fit `cap` gives 0, one that fits exactly is
 *     written whole, and no byte at or past out[cap] is ever written;
 *     SIMPLE needs room for the short form only;
 *   - no byte past a name's NUL is read (names end at a PROT_NONE page);
 *   - eight threads demangling the table at once all get the right names;
 *   - stack: the worst shapes found at DEMANGLE_MAX_NAME bytes use less
 *     than 32 KiB (measured on a painted stack), and run on a thread with a
 *     64 KiB stack;
 *   - no C++ runtime is loaded in this (C) process;
 *   - demangle_style_t and config.h's CONFIG_DEMANGLE_* agree.
 * Built twice: test_demangle links heapprof_introspect as shipped;
 * test_demangle_uncapped compiles demangle.c with a 1024-byte cap, so the
 * long names of the table are checked too (and the stack checks, which
 * hold for the shipped cap only, are not run; it says so).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <libiberty/demangle.h>

#include "config.h"
#include "demangle.h"
#include "testlib.h"

_Static_assert((int)DEMANGLE_SIMPLE == CONFIG_DEMANGLE_SIMPLE &&
                   (int)DEMANGLE_TEMPLATES == CONFIG_DEMANGLE_TEMPLATES &&
                   (int)DEMANGLE_FULL == CONFIG_DEMANGLE_FULL &&
                   (int)DEMANGLE_NONE == CONFIG_DEMANGLE_NONE,
               "HEAPPROF_DEMANGLE's numbers are demangle_style_t's");

/* ---- allocator calls, counted (-Wl,--wrap=... in CMakeLists.txt) ---- */

/* Calls on this thread. Volatile: the compiler takes malloc for a
 * function that changes no variable of the program, and would otherwise
 * keep a value of it read before a malloc the test makes itself. */
static __thread volatile long allocs;
void *__real_malloc(size_t);
void *__real_calloc(size_t, size_t);
void *__real_realloc(void *, size_t);
void __real_free(void *);
int __real_posix_memalign(void **, size_t, size_t);
void *__real_aligned_alloc(size_t, size_t);
void *__real_memalign(size_t, size_t);
char *__real_strdup(const char *);
char *__real_strndup(const char *, size_t);
void *__wrap_malloc(size_t n) { allocs++; return __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t m) { allocs++; return __real_calloc(n, m); }
void *__wrap_realloc(void *p, size_t n) { allocs++; return __real_realloc(p, n); }
void __wrap_free(void *p) { allocs += p != NULL; __real_free(p); }
int __wrap_posix_memalign(void **p, size_t a, size_t n) {
  allocs++;
  return __real_posix_memalign(p, a, n);
}
void *__wrap_aligned_alloc(size_t a, size_t n) {
  allocs++;
  return __real_aligned_alloc(a, n);
}
void *__wrap_memalign(size_t a, size_t n) { allocs++; return __real_memalign(a, n); }
char *__wrap_strdup(const char *s) { allocs++; return __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n) {
  allocs++;
  return __real_strndup(s, n);
}

/* demangle, checked to call no allocator function. */
static size_t dm(const char *name, int st, char *out, size_t cap) {
  long before = allocs;
  size_t n = demangle(name, (demangle_style_t)st, out, cap);
  CHECK(allocs == before, "%.80s (style %d): %ld allocator calls", name, st,
        allocs - before);
  return n;
}

/* ---- the table ---- */

enum { OTHER, RUST_LEGACY }; /* which cap a name is under */

typedef struct row {
  const char *name;
  const char *want[3]; /* SIMPLE, TEMPLATES, FULL; NULL: demangle gives 0 */
  int kind;
} row_t;

/* Every string is what go tool pprof 1.19 printed for the name (a profile
 * with Function.name == system_name == the name, read with -proto and
 * -symbolize=demangle=default, templates, full), except where a comment
 * says otherwise. */
static const row_t table[] = {
    {"_ZNSt6vectorIN3app6WidgetESaIS1_EE17_M_realloc_insertIJRiEEEvN9_"
     "_gnu_cxx17__normal_iteratorIPS1_S3_EEDpOT_",
     {"std::vector::_M_realloc_insert",
      "std::vector<app::Widget, std::allocator<app::Widget> >::_M_reall"
      "oc_insert<int&>",
      "void std::vector<app::Widget, std::allocator<app::Widget> >::_M_"
      "realloc_insert<int&>(__gnu_cxx::__normal_iterator<app::Widget*, "
      "std::vector<app::Widget, std::allocator<app::Widget> > >, int&)"},
     OTHER},
    {"_ZZ4mainENKUliE_clEi",
     {"main::{lambda(int)#1}::operator()",
      "main::{lambda(int)#1}::operator()",
      "main::{lambda(int)#1}::operator()(int) const"},
     OTHER},
    {"_ZZ4mainENKUliE0_clEi.constprop.0",
     {"main::{lambda(int)#2}::operator()",
      "main::{lambda(int)#2}::operator()",
      "main::{lambda(int)#2}::operator()(int) const"},
     OTHER},
    {"_ZZ4mainENUliiE1_4_FUNEii",
     {"main::{lambda(int, int)#3}::_FUN",
      "main::{lambda(int, int)#3}::_FUN",
      "main::{lambda(int, int)#3}::_FUN(int, int)"},
     OTHER},
    {"_ZNSt17_Function_handlerIFmiEZ4mainEUliE_E9_M_invokeERKSt9_Any_d"
     "ataOi",
     {"std::_Function_handler::_M_invoke",
      "std::_Function_handler<unsigned long (int), main::{lambda(int)#1"
      "}>::_M_invoke",
      "std::_Function_handler<unsigned long (int), main::{lambda(int)#1"
      "}>::_M_invoke(std::_Any_data const&, int&&)"},
     OTHER},
    {"_ZN3appltERKNS_6WidgetES2_",
     {"app::operator<",
      "app::operator<",
      "app::operator<(app::Widget const&, app::Widget const&)"},
     OTHER},
    {"_ZN3appleERKNS_6WidgetES2_",
     {"app::operator<=",
      "app::operator<=",
      "app::operator<=(app::Widget const&, app::Widget const&)"},
     OTHER},
    {"_ZN3appgtERKNS_6WidgetES2_",
     {"app::operator>",
      "app::operator>",
      "app::operator>(app::Widget const&, app::Widget const&)"},
     OTHER},
    {"_ZN3appgeERKNS_6WidgetES2_",
     {"app::operator>=",
      "app::operator>=",
      "app::operator>=(app::Widget const&, app::Widget const&)"},
     OTHER},
    {"_ZN3app6StreamlsEi.isra.0",
     {"app::Stream::operator<<",
      "app::Stream::operator<<",
      "app::Stream::operator<<(int)"},
     OTHER},
    {"_ZN3app6StreamrsERi.isra.0",
     {"app::Stream::operator>>",
      "app::Stream::operator>>",
      "app::Stream::operator>>(int&)"},
     OTHER},
    {"_ZNK3app3PtrINS_6WidgetEEptEv.isra.0",
     {"app::Ptr::operator->",
      "app::Ptr<app::Widget>::operator->",
      "app::Ptr<app::Widget>::operator->() const"},
     OTHER},
    {"_ZNK3app3PtrINS_6WidgetEEpmEMS1_i.isra.0",
     {"app::Ptr::operator->*",
      "app::Ptr<app::Widget>::operator->*",
      "app::Ptr<app::Widget>::operator->*(int app::Widget::*) const"},
     OTHER},
    {"_ZN12_GLOBAL__N_14helpEi",
     {"(anonymous namespace)::help",
      "(anonymous namespace)::help",
      "(anonymous namespace)::help(int)"},
     OTHER},
    {"_Z3fooii",
     {"foo",
      "foo",
      "foo(int, int)"},
     OTHER},
    {"_Z3fooi.constprop.0",
     {"foo",
      "foo",
      "foo(int)"},
     OTHER},
    {"_ZL3fooi.constprop.0.cold",
     {"foo",
      "foo",
      "foo(int)"},
     OTHER},
    {"_ZN3app5twiceIiEET_S1_",
     {"app::twice",
      "app::twice<int>",
      "int app::twice<int>(int)"},
     OTHER},
    {"_ZN3app3BoxIiE4makeIdEEPSt6vectorIT_SaIS4_EEi",
     {"app::Box::make",
      "app::Box<int>::make<double>",
      "std::vector<double, std::allocator<double> >* app::Box<int>::mak"
      "e<double>(int)"},
     OTHER},
    {"_ZN3app6taggedB5cxx11Ev",
     {"app::tagged[abi:cxx11]",
      "app::tagged[abi:cxx11]",
      "app::tagged[abi:cxx11]()"},
     OTHER},
    {"_ZN3applSIiEERNS_3BoxIT_EES4_i.isra.0",
     {"app::operator<<=",
      "app::operator<<=<int>",
      "app::Box<int>& app::operator<<=<int>(app::Box<int>&, int)"},
     OTHER},
    {"_ZN3appltIiEEbRKNS_3BoxIT_EES5_.isra.0",
     {"app::operator<",
      "app::operator< <int>",
      "bool app::operator< <int>(app::Box<int> const&, app::Box<int> co"
      "nst&)"},
     OTHER},
    {"_ZN3appssIiEEiRKNS_3BoxIT_EES5_.isra.0",
     {"app::operator<=>",
      "app::operator<=><int>",
      "int app::operator<=><int>(app::Box<int> const&, app::Box<int> co"
      "nst&)"},
     OTHER},
    {"_ZNK3app4ConvcvSt6vectorIiSaIiEEEv.isra.0",
     {"app::Conv::operator std::vector",
      "app::Conv::operator std::vector<int, std::allocator<int> >",
      "app::Conv::operator std::vector<int, std::allocator<int> >() con"
      "st"},
     OTHER},
    {"_ZZ4mainENKUlRKSt6vectorIiSaIiEEE_clES3_.isra.0",
     {"main::{lambda(std::vector const&)#1}::operator()",
      "main::{lambda(std::vector<int, std::allocator<int> > const&)#1}:"
      ":operator()",
      "main::{lambda(std::vector<int, std::allocator<int> > const&)#1}:"
      ":operator()(std::vector<int, std::allocator<int> > const&) const"},
     OTHER},
    {"_ZZZ4mainENKUlRKSt6vectorIiSaIiEEE_clES3_ENKUliE_clEi.isra.0.col"
     "d",
     {"main::{lambda(std::vector const&)#1}::operator()(std::vector con"
      "st&) const::{lambda(int)#1}::operator()",
      "main::{lambda(std::vector<int, std::allocator<int> > const&)#1}:"
      ":operator()(std::vector<int, std::allocator<int> > const&) const"
      "::{lambda(int)#1}::operator()",
      "main::{lambda(std::vector<int, std::allocator<int> > const&)#1}:"
      ":operator()(std::vector<int, std::allocator<int> > const&) const"
      "::{lambda(int)#1}::operator()(int) const"},
     OTHER},
    {"_ZNSt8_Rb_treeINSt7__cxx1112basic_stringIcSt11char_traitsIcESaIc"
     "EEESt4pairIKS5_St6vectorIiSaIiEEESt10_Select1stISB_ESt4lessIS5_E"
     "SaISB_EE8_M_eraseEPSt13_Rb_tree_nodeISB_E.isra.0",
     {"std::_Rb_tree::_M_erase",
      "std::_Rb_tree<std::__cxx11::basic_string<char, std::char_traits<"
      "char>, std::allocator<char> >, std::pair<std::__cxx11::basic_str"
      "ing<char, std::char_traits<char>, std::allocator<char> > const, "
      "std::vector<int, std::allocator<int> > >, std::_Select1st<std::p"
      "air<std::__cxx11::basic_string<char, std::char_traits<char>, std"
      "::allocator<char> > const, std::vector<int, std::allocator<int> "
      "> > >, std::less<std::__cxx11::basic_string<char, std::char_trai"
      "ts<char>, std::allocator<char> > >, std::allocator<std::pair<std"
      "::__cxx11::basic_string<char, std::char_traits<char>, std::alloc"
      "ator<char> > const, std::vector<int, std::allocator<int> > > > >"
      "::_M_erase",
      "std::_Rb_tree<std::__cxx11::basic_string<char, std::char_traits<"
      "char>, std::allocator<char> >, std::pair<std::__cxx11::basic_str"
      "ing<char, std::char_traits<char>, std::allocator<char> > const, "
      "std::vector<int, std::allocator<int> > >, std::_Select1st<std::p"
      "air<std::__cxx11::basic_string<char, std::char_traits<char>, std"
      "::allocator<char> > const, std::vector<int, std::allocator<int> "
      "> > >, std::less<std::__cxx11::basic_string<char, std::char_trai"
      "ts<char>, std::allocator<char> > >, std::allocator<std::pair<std"
      "::__cxx11::basic_string<char, std::char_traits<char>, std::alloc"
      "ator<char> > const, std::vector<int, std::allocator<int> > > > >"
      "::_M_erase(std::_Rb_tree_node<std::pair<std::__cxx11::basic_stri"
      "ng<char, std::char_traits<char>, std::allocator<char> > const, s"
      "td::vector<int, std::allocator<int> > > >*)"},
     OTHER},
    {"_ZGTtNKSt11logic_error4whatEv",
     {"transaction clone for std::logic_error::what() const",
      "transaction clone for std::logic_error::what() const",
      "transaction clone for std::logic_error::what() const"},
     OTHER},
    {"_ZNKSt7num_putIwSt19ostreambuf_iteratorIwSt11char_traitsIwEEE3pu"
     "tES3_RSt8ios_basewl",
     {"std::num_put::put",
      "std::num_put<wchar_t, std::ostreambuf_iterator<wchar_t, std::cha"
      "r_traits<wchar_t> > >::put",
      "std::num_put<wchar_t, std::ostreambuf_iterator<wchar_t, std::cha"
      "r_traits<wchar_t> > >::put(std::ostreambuf_iterator<wchar_t, std"
      "::char_traits<wchar_t> >, std::ios_base&, wchar_t, long) const"},
     OTHER},
    {"_ZNSolsEb",
     {"std::ostream::operator<<",
      "std::ostream::operator<<",
      "std::ostream::operator<<(bool)"},
     OTHER},
    {"_ZNSt13basic_ostreamIwSt11char_traitsIwEElsEPFRS2_S3_E",
     {"std::basic_ostream::operator<<",
      "std::basic_ostream<wchar_t, std::char_traits<wchar_t> >::operato"
      "r<<",
      "std::basic_ostream<wchar_t, std::char_traits<wchar_t> >::operato"
      "r<<(std::basic_ostream<wchar_t, std::char_traits<wchar_t> >& (*)"
      "(std::basic_ostream<wchar_t, std::char_traits<wchar_t> >&))"},
     OTHER},
    {"_ZNSbIwSt11char_traitsIwESaIwEEixEm",
     {"std::basic_string::operator[]",
      "std::basic_string<wchar_t, std::char_traits<wchar_t>, std::alloc"
      "ator<wchar_t> >::operator[]",
      "std::basic_string<wchar_t, std::char_traits<wchar_t>, std::alloc"
      "ator<wchar_t> >::operator[](unsigned long)"},
     OTHER},
    {"_ZNSsC1IPcEET_S1_RKSaIcE",
     {"std::basic_string::basic_string",
      "std::basic_string<char, std::char_traits<char>, std::allocator<c"
      "har> >::basic_string<char*>",
      "std::basic_string<char, std::char_traits<char>, std::allocator<c"
      "har> >::basic_string<char*>(char*, char*, std::allocator<char> c"
      "onst&)"},
     OTHER},
    {"_ZThn16_NSt13basic_fstreamIcSt11char_traitsIcEED0Ev",
     {"non-virtual thunk to std::basic_fstream::~basic_fstream()",
      "non-virtual thunk to std::basic_fstream<char, std::char_traits<c"
      "har> >::~basic_fstream()",
      "non-virtual thunk to std::basic_fstream<char, std::char_traits<c"
      "har> >::~basic_fstream()"},
     OTHER},
    {"_ZNKSt15__exception_ptr13exception_ptrcvMS0_FvvEEv",
     {"std::__exception_ptr::exception_ptr::operator void (std::__excep"
      "tion_ptr::exception_ptr::*)()",
      "std::__exception_ptr::exception_ptr::operator void (std::__excep"
      "tion_ptr::exception_ptr::*)()",
      "std::__exception_ptr::exception_ptr::operator void (std::__excep"
      "tion_ptr::exception_ptr::*)()() const"},
     OTHER},
    {"_ZNKSscvSt17basic_string_viewIcSt11char_traitsIcEEEv",
     {"std::string::operator std::basic_string_view",
      "std::string::operator std::basic_string_view<char, std::char_tra"
      "its<char> >",
      "std::string::operator std::basic_string_view<char, std::char_tra"
      "its<char> >() const"},
     OTHER},
    {"_ZNKSt3tr14hashISbIwSt11char_traitsIwESaIwEEEclES4_",
     {"std::tr1::hash::operator()",
      "std::tr1::hash<std::basic_string<wchar_t, std::char_traits<wchar"
      "_t>, std::allocator<wchar_t> > >::operator()",
      "std::tr1::hash<std::basic_string<wchar_t, std::char_traits<wchar"
      "_t>, std::allocator<wchar_t> > >::operator()(std::basic_string<w"
      "char_t, std::char_traits<wchar_t>, std::allocator<wchar_t> >) co"
      "nst"},
     OTHER},
    {"_ZNSt9bad_allocD1Ev",
     {"std::bad_alloc::~bad_alloc",
      "std::bad_alloc::~bad_alloc",
      "std::bad_alloc::~bad_alloc()"},
     OTHER},
    {"_ZNSt8ios_base7failureB5cxx11C2ERKNSt7__cxx1112basic_stringIcSt1"
     "1char_traitsIcESaIcEEE",
     {"std::ios_base::failure[abi:cxx11]::failure",
      "std::ios_base::failure[abi:cxx11]::failure",
      "std::ios_base::failure[abi:cxx11]::failure(std::__cxx11::basic_s"
      "tring<char, std::char_traits<char>, std::allocator<char> > const"
      "&)"},
     OTHER},
    {"_ZN4llvm11PassManagerINS_8FunctionENS_15AnalysisManagerIS1_JEEEJ"
     "EE10isRequiredEv",
     {"llvm::PassManager::isRequired",
      "llvm::PassManager<llvm::Function, llvm::AnalysisManager<llvm::Fu"
      "nction> >::isRequired",
      "llvm::PassManager<llvm::Function, llvm::AnalysisManager<llvm::Fu"
      "nction> >::isRequired()"},
     OTHER},
    {"_ZN1r4main17h6bb90cc9f4a014ccE",
     {"r::main",
      "r::main",
      "r::main"},
     RUST_LEGACY},
    {"_ZN37_$LT$r..Widget$u20$as$u20$r..Grow$GT$4grow17hf922db690534b2"
     "4eE",
     {"<r::Widget as r::Grow>::grow",
      "<r::Widget as r::Grow>::grow",
      "<r::Widget as r::Grow>::grow"},
     RUST_LEGACY},
    {"_ZN4core3ptr30drop_in_place$LT$r..Widget$GT$17hfd9ce68d7fed703aE",
     {"core::ptr::drop_in_place<r::Widget>",
      "core::ptr::drop_in_place<r::Widget>",
      "core::ptr::drop_in_place<r::Widget>"},
     RUST_LEGACY},
    {"_ZN4core3ptr62drop_in_place$LT$$LP$alloc..string..String$C$r..Wi"
     "dget$RP$$GT$17hc9504477653f126cE.llvm.7353608913677796158",
     {"core::ptr::drop_in_place<(alloc::string::String,r::Widget)>",
      "core::ptr::drop_in_place<(alloc::string::String,r::Widget)>",
      "core::ptr::drop_in_place<(alloc::string::String,r::Widget)>"},
     RUST_LEGACY},
    {"_ZN12panic_unwind8real_imp14find_eh_action28_$u7b$$u7b$closure$u"
     "7d$$u7d$17h385b3ff300586ab7E",
     {"panic_unwind::real_imp::find_eh_action::{{closure}}",
      "panic_unwind::real_imp::find_eh_action::{{closure}}",
      "panic_unwind::real_imp::find_eh_action::{{closure}}"},
     RUST_LEGACY},
    /* pprof 1.19 drops one underscore: "THREAD_INFO::_getit" */
    {"_ZN3std10sys_common11thread_info11THREAD_INFO7__getit17h1f2d3e7d"
     "b64f38aaE.llvm.14675764578384208085",
     {"std::sys_common::thread_info::THREAD_INFO::__getit",
      "std::sys_common::thread_info::THREAD_INFO::__getit",
      "std::sys_common::thread_info::THREAD_INFO::__getit"},
     RUST_LEGACY},
    {"_RNvCsi7GFBnvyxwE_1r4main",
     {"r::main",
      "r::main",
      "r::main"},
     OTHER},
    {"_RNvMCsi7GFBnvyxwE_1rNtB2_6Widget3new",
     {"<r::Widget>::new",
      "<r::Widget>::new",
      "<r::Widget>::new"},
     OTHER},
    {"_RNvXs_Csi7GFBnvyxwE_1rNtB4_6WidgetNtB4_4Grow4grow",
     {"<r::Widget as r::Grow>::grow",
      "<r::Widget as r::Grow>::grow",
      "<r::Widget as r::Grow>::grow"},
     OTHER},
    {"_RINvCsi7GFBnvyxwE_1r4makehEB2_",
     {"r::make::<u8>",
      "r::make::<u8>",
      "r::make::<u8>"},
     OTHER},
    {"_RINvNtCs6IL9ONYDOZW_4core3ptr13drop_in_placeNtNtCsihNoVIYWwLU_5"
     "alloc6string6StringECsi7GFBnvyxwE_1r.llvm.10601672899439777649",
     {"core::ptr::drop_in_place::<alloc::string::String>",
      "core::ptr::drop_in_place::<alloc::string::String>",
      "core::ptr::drop_in_place::<alloc::string::String>"},
     OTHER},
    {"_RNCINvNtCsdyIG5SqMl5y_3std2rt10lang_startuE0Csi7GFBnvyxwE_1r.ll"
     "vm.7539908314244527791",
     {"std::rt::lang_start::<()>::{closure#0}",
      "std::rt::lang_start::<()>::{closure#0}",
      "std::rt::lang_start::<()>::{closure#0}"},
     OTHER},
    {"_GLOBAL__I__Z3foov",
     {"global constructors keyed to foo()",
      "global constructors keyed to foo()",
      "global constructors keyed to foo()"},
     OTHER},
    {"_ZN3foo3barEv.llvm.123456",
     {"foo::bar",
      "foo::bar",
      "foo::bar()"},
     OTHER},
    {"_Z3fooiJUNK",
     {"foo",
      "foo",
      NULL},
     OTHER},
    {"malloc",
     {NULL,
      NULL,
      NULL},
     OTHER},
    {"main",
     {NULL,
      NULL,
      NULL},
     OTHER},
    {"plain_c_function",
     {NULL,
      NULL,
      NULL},
     OTHER},
    {"_GLOBAL__sub_I_w.cpp",
     {NULL,
      NULL,
      NULL},
     OTHER},
    {"_Z",
     {NULL,
      NULL,
      NULL},
     OTHER},
    {"_ZN",
     {NULL,
      NULL,
      NULL},
     OTHER},
    {"_R",
     {NULL,
      NULL,
      NULL},
     OTHER},
    {"_Zjunk",
     {NULL,
      NULL,
      NULL},
     OTHER},
    {"__Z3fooi",
     {NULL,
      NULL,
      NULL},
     OTHER},
    {"_RNvC",
     {NULL,
      NULL,
      NULL},
     OTHER},
    /* hand-made, an empty pack as in LLVM's pass managers: libiberty writes ">>" */
    {"_ZN2pm2PMINS_1FENS_2AMIS1_JEEEJEE1fEv",
     {"pm::PM::f",
      "pm::PM<pm::F, pm::AM<pm::F> >::f",
      "pm::PM<pm::F, pm::AM<pm::F> >::f()"},
     OTHER},
    /* hand-made from here on: expressions as template arguments */
    {"_ZN1SIXgtLi3ELi2EEE1fEv",
     {"S::f",
      "S<((3)>(2))>::f",
      "S<((3)>(2))>::f()"},
     OTHER},
    /* SIMPLE: the `<` operator does not balance; pprof shows "S::f" itself */
    {"_ZN1SIXltLi3ELi2EEE1fEv",
     {NULL,
      "S<(3)<(2)>::f",
      "S<(3)<(2)>::f()"},
     OTHER},
    /* SIMPLE: the `>>` operator does not balance; pprof shows "S::f" itself */
    {"_ZN1SIXrsLi8ELi1EEE1fEv",
     {NULL,
      "S<(8)>>(1)>::f",
      "S<(8)>>(1)>::f()"},
     OTHER},
};
#define NROWS (sizeof table / sizeof *table)

static const char *const style_names[] = {"simple", "templates", "full",
                                          "none"};

/* What demangle must give for row `r` in style `st` with the shipped caps:
 * NULL when it must give 0. */
static const char *expected(const row_t *r, int st) {
  size_t cap = r->kind == RUST_LEGACY ? DEMANGLE_MAX_RUST_LEGACY
                                      : DEMANGLE_MAX_NAME;
  if (st == DEMANGLE_NONE || strlen(r->name) > cap)
    return NULL;
  return r->want[st];
}

/* demangle into a roomy buffer; "" when it gives 0. */
static const char *run(const char *name, int st, char *buf, size_t cap) {
  size_t n = dm(name, st, buf, cap);
  CHECK(n == 0 || (n < cap && buf[n] == '\0' && strlen(buf) == n),
        "%s (%s): returned %zu, not the length of a NUL-ended string", name,
        style_names[st], n);
  return n ? buf : "";
}

/* Every row in every style, compared with the table; returns how many
 * rows were demangled (not 0) in at least one style. */
static size_t check_table(void) {
  static char buf[8192];
  size_t demangled = 0;
  for (size_t i = 0; i < NROWS; i++) {
    int any = 0;
    for (int st = 0; st <= DEMANGLE_NONE; st++) {
      const char *want = expected(&table[i], st);
      const char *got = run(table[i].name, st, buf, sizeof buf);
      CHECK(strcmp(got, want ? want : "") == 0,
            "%s (%s):\n  got  \"%s\"\n  want \"%s\"", table[i].name,
            style_names[st], got, want ? want : "(0: the name as it is)");
      any |= want != NULL;
    }
    demangled += any;
  }
  return demangled;
}

static void bad_calls(void) {
  char buf[64];
  CHECK(demangle(NULL, DEMANGLE_SIMPLE, buf, sizeof buf) == 0, "NULL name");
  CHECK(dm("_Z3fooi", DEMANGLE_SIMPLE, NULL, 64) == 0, "NULL out");
  CHECK(dm("_Z3fooi", DEMANGLE_SIMPLE, buf, 0) == 0, "cap 0");
  CHECK(dm("_Z3fooi", 42, buf, sizeof buf) == 0, "style 42");
  CHECK(dm("_Z3fooi", -1, buf, sizeof buf) == 0, "style -1");
  CHECK(dm("", DEMANGLE_FULL, buf, sizeof buf) == 0, "empty name");
  printf("ok: NULL, cap 0, bad styles, empty name\n");
}

/* `n` bytes: `head`, then `unit` repeated (whole units only), then
 * `tail`; malloc'd. */
static char *shape(size_t n, const char *head, const char *unit,
                   const char *tail) {
  char *s = malloc(n + 1);
  size_t at = strlen(head), u = strlen(unit), t = strlen(tail);
  memcpy(s, head, at);
  while (at + u + t <= n) {
    memcpy(s + at, unit, u);
    at += u;
  }
  memcpy(s + at, tail, t + 1);
  return s;
}

/* A name of `n` bytes, "_ZN3app" <length> "aaa..." "Ev", that demangles
 * to "app::aaa..."; `*id` gets the number of a's. */
static char *app_name(size_t n, size_t *id) {
  char *s = malloc(n + 1);
  for (size_t digits = 1; digits < 5; digits++) {
    *id = n - 9 - digits;
    if (snprintf(s, n + 1, "_ZN3app%zu", *id) == (int)(7 + digits))
      break;
  }
  memset(s + strlen(s), 'a', *id);
  strcpy(s + n - 2, "Ev");
  return s;
}

/* A legacy Rust name of at most `n` bytes, "_ZN" "4abcd"... "17h<hash>E",
 * that demangles to "abcd::abcd::..." (`*k` components). */
static char *rust_legacy_name(size_t n, size_t *k) {
  static const char hash[] = "17h0123456789abcdefE";
  char *s = malloc(n + 1);
  strcpy(s, "_ZN");
  for (*k = 0; 3 + 5 * (*k + 1) + sizeof hash - 1 <= n; ++*k)
    strcat(s, "4abcd");
  strcat(s, hash);
  return s;
}

/* The caps: a name of exactly the cap is read, one byte more is not; a
 * legacy Rust name far over DEMANGLE_MAX_NAME is; 100 KB names are not. */
static void caps(void) {
  char buf[8192];
  size_t id, k;
  char *at = app_name(DEMANGLE_MAX_NAME, &id);
  char *over = app_name(DEMANGLE_MAX_NAME + 1, &k);
  CHECK(strlen(at) == DEMANGLE_MAX_NAME && strlen(over) == DEMANGLE_MAX_NAME + 1,
        "app_name lengths");
  const char *got = run(at, DEMANGLE_SIMPLE, buf, sizeof buf);
  CHECK(strncmp(got, "app::aaa", 8) == 0 && strlen(got) == 5 + id,
        "a %d-byte name: \"%s\"", DEMANGLE_MAX_NAME, got);
  CHECK(dm(over, DEMANGLE_SIMPLE, buf, sizeof buf) == 0,
        "a name over DEMANGLE_MAX_NAME was read");
  free(at);
  free(over);

  char *rust = rust_legacy_name(DEMANGLE_MAX_RUST_LEGACY, &k);
  size_t n = dm(rust, DEMANGLE_SIMPLE, buf, sizeof buf);
  CHECK(n == k * 6 - 2 && strncmp(buf, "abcd::abcd::", 12) == 0,
        "a %d-byte legacy Rust name: %zu bytes", DEMANGLE_MAX_RUST_LEGACY, n);
  free(rust);
  rust = rust_legacy_name(DEMANGLE_MAX_RUST_LEGACY + 10, &k);
  CHECK(strlen(rust) > DEMANGLE_MAX_RUST_LEGACY &&
            dm(rust, DEMANGLE_SIMPLE, buf, sizeof buf) == 0,
        "a legacy Rust name over DEMANGLE_MAX_RUST_LEGACY was read");
  free(rust);

  char *huge[] = {shape(100000, "_ZN", "1a", "E"),
                  shape(100000, "_ZN", "4abcd", "17h0123456789abcdefE"),
                  shape(100000, "_RNv", "NvC1a", "1f")};
  for (size_t i = 0; i < 3; i++) {
    for (int st = 0; st <= DEMANGLE_NONE; st++)
      CHECK(dm(huge[i], st, buf, sizeof buf) == 0,
            "a 100 KB name was read");
    free(huge[i]);
  }
  printf("ok: caps %d and %d (legacy Rust) bytes, 100 KB names\n",
         DEMANGLE_MAX_NAME, DEMANGLE_MAX_RUST_LEGACY);
}

/* Output exactly at, one under and well under the room it needs, with
 * guard bytes after `cap`. */
static void fits(void) {
  enum { GUARD = 64 };
  static char buf[8192 + GUARD];
  size_t tries = 0;
  for (size_t i = 0; i < NROWS; i++)
    for (int st = 0; st < DEMANGLE_NONE; st++) {
      const char *want = expected(&table[i], st);
      if (want == NULL)
        continue;
      size_t len = strlen(want);
      for (size_t cap = 0; cap <= len + 2; cap++) {
        memset(buf, 0x5a, cap + GUARD);
        size_t n = dm(table[i].name, st, buf, cap);
        if (cap > len)
          CHECK(n == len && memcmp(buf, want, len + 1) == 0,
                "%s (%s) in %zu bytes: %zu", table[i].name, style_names[st],
                cap, n);
        else
          CHECK(n == 0, "%s (%s) did not fit %zu bytes but gave %zu",
                table[i].name, style_names[st], cap, n);
        for (size_t g = cap; g < cap + GUARD; g++)
          CHECK(buf[g] == 0x5a, "%s (%s): byte %zu written with cap %zu",
                table[i].name, style_names[st], g, cap);
        tries++;
      }
    }
  /* SIMPLE's short form fits though the form with templates does not. */
  const char *name = "_ZN3app3BoxIiE4makeIdEEPSt6vectorIT_SaIS4_EEi";
  CHECK(dm(name, DEMANGLE_TEMPLATES, buf, 16) == 0 &&
            dm(name, DEMANGLE_SIMPLE, buf, 16) == 14 &&
            strcmp(buf, "app::Box::make") == 0,
        "SIMPLE needs room for more than its own form: \"%s\"", buf);
  printf("ok: %zu caps around the exact size, no byte written past cap\n",
         tries);
}

/* Each name copied to the end of a page followed by a PROT_NONE page: a
 * read past its NUL faults. */
static void no_overread(void) {
  long page = sysconf(_SC_PAGESIZE);
  char *two = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(two != MAP_FAILED && mprotect(two + page, (size_t)page, PROT_NONE) == 0,
        "guard page");
  char buf[8192];
  for (size_t i = 0; i < NROWS; i++) {
    size_t n = strlen(table[i].name) + 1;
    if (n > (size_t)page)
      continue;
    char *name = two + page - n;
    memcpy(name, table[i].name, n);
    for (int st = 0; st <= DEMANGLE_NONE; st++)
      dm(name, st, buf, sizeof buf);
    for (size_t cut = 1; cut < n - 1; cut++) { /* every prefix too */
      memcpy(two + page - (n - cut), table[i].name, n - cut - 1);
      two[page - 1] = '\0';
      dm(two + page - (n - cut), DEMANGLE_FULL, buf, sizeof buf);
      dm(two + page - (n - cut), DEMANGLE_SIMPLE, buf, sizeof buf);
    }
  }
  munmap(two, 2 * (size_t)page);
  printf("ok: nothing read past a name's NUL (every row and prefix)\n");
}

static void *table_thread(void *arg) {
  static char bufs[8][8192];
  char *buf = bufs[*(int *)arg];
  for (int round = 0; round < 50; round++)
    for (size_t i = 0; i < NROWS; i++)
      for (int st = 0; st <= DEMANGLE_NONE; st++) {
        const char *want = expected(&table[i], st);
        size_t n = dm(table[i].name, st, buf, 8192);
        CHECK(want ? n == strlen(want) && strcmp(buf, want) == 0 : n == 0,
              "thread: %s (%s)", table[i].name, style_names[st]);
      }
  return NULL;
}

static void threads(void) {
  pthread_t t[8];
  int ids[8];
  for (int i = 0; i < 8; i++) {
    ids[i] = i;
    CHECK(pthread_create(&t[i], NULL, table_thread, &ids[i]) == 0, "thread");
  }
  for (int i = 0; i < 8; i++)
    pthread_join(t[i], NULL);
  printf("ok: 8 threads x 50 rounds of the table at once, no allocation\n");
}

#ifndef DEMANGLE_TEST_UNCAPPED
/* ---- stack ---- */

/* The budget is the shipped library's. An ASan build instruments the
 * frames of demangle.c's own functions (libiberty.a is not rebuilt) and
 * adds ~2 KiB at the deepest point; libheapprof.so is never built so. */
#if defined(__SANITIZE_ADDRESS__)
#define STACK_BUDGET (32768 + 4096)
#define BUDGET_NOTE " (an ASan build: 32 KiB + 4 KiB for its instrumented frames)"
#else
#define STACK_BUDGET 32768
#define BUDGET_NOTE ""
#endif
#define PROBE_STACK (1 << 20)
#define PAINT 0xa5

typedef struct probe {
  char *base;          /* the thread's stack, PROBE_STACK bytes */
  const char *name;
  int style;
  size_t used;         /* bytes of stack below the caller's frame */
} probe_t;

/* Paints the stack below this frame, demangles, and finds the deepest
 * byte written. Addresses are compared as integers: the stack block and
 * this frame's locals are different objects to the compiler. */
static void *probe_thread(void *arg) {
  static char buf[8192]; /* one probe at a time */
  probe_t *p = arg;
  char here;
  uintptr_t low = (uintptr_t)p->base, top = (uintptr_t)&here - 512, c;
  for (c = low; c < top; c++)
    *(volatile char *)c = (char)PAINT;
  demangle(p->name, (demangle_style_t)p->style, buf, sizeof buf);
  for (c = low; c < top && *(volatile unsigned char *)c == PAINT; c++)
    ;
  p->used = (uintptr_t)&here - c;
  return NULL;
}

/* The most stack `name` needs in any style. */
static size_t stack_used(char *base, const char *name) {
  size_t most = 0;
  for (int st = 0; st < DEMANGLE_NONE; st++) {
    probe_t p = {base, name, st, 0};
    pthread_attr_t at;
    pthread_t t;
    pthread_attr_init(&at);
    pthread_attr_setstack(&at, base, PROBE_STACK);
    CHECK(pthread_create(&t, &at, probe_thread, &p) == 0, "probe thread");
    pthread_join(t, NULL);
    pthread_attr_destroy(&at);
    most = p.used > most ? p.used : most;
  }
  return most;
}

static void *small_stack_thread(void *arg) {
  char **names = arg, buf[1024];
  for (; *names != NULL; names++)
    for (int st = 0; st < DEMANGLE_NONE; st++)
      demangle(*names, (demangle_style_t)st, buf, sizeof buf);
  return NULL;
}

#endif

/* The shapes that cost libiberty the most stack per byte (a search over
 * repeated units in template argument lists, parameter lists, nested
 * names and Rust v0 types), each DEMANGLE_MAX_NAME bytes long. */
static void stack(void) {
#ifdef DEMANGLE_TEST_UNCAPPED
  printf("stack: not checked (this build's cap is %d bytes, not the "
         "shipped one)\n", DEMANGLE_MAX_NAME);
#else
  size_t L = DEMANGLE_MAX_NAME, k;
  char *shapes[] = {
      shape(L, "_Z1f", "i", ""),              /* f(int, int, ...) */
      shape(L, "_Z1fI", "i", "Evv"),          /* f<int, int, ...>() */
      shape(L, "_Z1fIJ", "i", "EEvv"),        /* a pack of them */
      shape(L, "_Z1f", "Pi", ""),             /* f(int*, int*, ...) */
      shape(L, "_ZN", "1a", "1fEv"),          /* a::a::...::f() */
      shape(L, "_Z1fI", "S_", "Evv"),         /* substitutions */
      shape(L, "_Z1fPF", "PF", "vE"),         /* nested function types */
      shape(L, "_RINvC1a1f", "R", "hEC1a"),   /* Rust v0: &&&...u8 */
      shape(L, "_RINvC1a1f", "T", "hEC1a"),   /* Rust v0 tuples */
      rust_legacy_name(DEMANGLE_MAX_RUST_LEGACY, &k), /* constant stack */
      NULL};
  char *base = mmap(NULL, PROBE_STACK, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(base != MAP_FAILED, "probe stack");
  size_t worst = 0;
  const char *worst_name = "";
  for (char **s = shapes; *s != NULL; s++) {
    size_t used = stack_used(base, *s);
    if (used > worst) {
      worst = used;
      worst_name = *s;
    }
  }
  for (size_t i = 0; i < NROWS; i++) {
    size_t used = stack_used(base, table[i].name);
    if (used > worst) {
      worst = used;
      worst_name = table[i].name;
    }
  }
  printf("stack: at most %zu bytes, for %s\n", worst, worst_name);
  CHECK(worst < STACK_BUDGET, "demangle used %zu bytes of stack for %s",
        worst, worst_name);
  munmap(base, PROBE_STACK);

  /* And for real: every shape on a thread with a 64 KiB stack. */
  pthread_attr_t at;
  pthread_t t;
  pthread_attr_init(&at);
  CHECK(pthread_attr_setstacksize(&at, 64 << 10) == 0, "64 KiB stack");
  CHECK(pthread_create(&t, &at, small_stack_thread, shapes) == 0,
        "small-stack thread");
  pthread_join(t, NULL);
  pthread_attr_destroy(&at);
  for (char **s = shapes; *s != NULL; s++)
    free(*s);
  printf("ok: worst shapes under %d bytes of stack%s, and run on a 64 KiB "
         "stack\n", STACK_BUDGET, BUDGET_NOTE);
#endif
}

/* No C++ runtime in this process, demangling or not; a sanitizer build's
 * runtime (libasan, libubsan) brings libstdc++ itself, and says so. */
static void no_cxx_runtime(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  CHECK(f != NULL, "/proc/self/maps");
  char line[4096], cxx[4096] = "";
  int sanitizer = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strstr(line, "libstdc++") != NULL || strstr(line, "libc++") != NULL)
      snprintf(cxx, sizeof cxx, "%s", line);
    sanitizer |= strstr(line, "/libasan") != NULL ||
                 strstr(line, "/libubsan") != NULL ||
                 strstr(line, "/libtsan") != NULL;
  }
  fclose(f);
  CHECK(cxx[0] == '\0' || sanitizer, "a C++ runtime is loaded: %s", cxx);
  printf(cxx[0] == '\0' ? "ok: no C++ runtime loaded\n"
                        : "C++ runtime: loaded by the sanitizer runtime, not "
                          "checked in this build\n");
}

int main(void) {
  /* The wrapping sees libiberty's own calls: its malloc'ing entry point
   * is counted. */
  allocs = 0;
  char *m = cplus_demangle_v3("_Z3fooi", DMGL_PARAMS);
  CHECK(m != NULL && strcmp(m, "foo(int)") == 0 && allocs > 0,
        "the allocator wrapping does not see libiberty (%ld calls)", allocs);
  free(m);

  size_t demangled = check_table();
  printf("ok: %zu names x 4 styles as pprof shows them (%zu demangled, the "
         "rest left as they are), no allocator call\n", NROWS, demangled);
  bad_calls();
  caps();
  fits();
  no_overread();
  threads();
  stack();
  no_cxx_runtime();
  printf("ok\n");
  return 0;
}
