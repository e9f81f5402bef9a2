/*
 * test_demangle — demangle(), heapprof's in-process C++ and Rust demangler
 * (runtime/introspect/demangle.h), on the caller's stack and on a
 * demangle_stack_t:
 *   - a table of real names (from libstdc++'s exports, g++ -O2/-O3 and
 *     Debian rustc 1.63 binaries with both manglings, libLLVM-14) gives,
 *     for each style, what go tool pprof 1.19 prints for the same name with
 *     -symbolize=demangle=default/templates/full, or 0 ("use the name as it
 *     is") where pprof prints the name unchanged; DEMANGLE_NONE and bad
 *     styles give 0; names over the caps give 0: on the caller's stack the
 *     long ones (106 to 545 bytes), on a stack of its own none of them;
 *   - the table's names that are not mangled (DW_AT_name of inlined
 *     functions of a g++ program, and hand-made edges) give what pprof's
 *     heuristic makes of them;
 *   - demangling calls no allocator function (malloc and friends are
 *     wrapped at link time and counted);
 *   - a form that does not fit `cap` gives 0, one that fits exactly is
 *     written whole, and no byte at or past out[cap] is ever written;
 *     SIMPLE needs room for the short form only;
 *   - no byte past a name's NUL is read (names end at a PROT_NONE page);
 *   - eight threads demangling the table at once, half on stacks of their
 *     own, all get the right names;
 *   - the caller's stack: the worst shapes found at DEMANGLE_MAX_NAME bytes
 *     use less than 32 KiB (measured on a painted stack), and run on a
 *     thread with a 64 KiB stack;
 *   - a stack of its own: names of DEMANGLE_MAX_NAME_SWITCHED bytes crafted
 *     to need the most stack use less than half of it (the guard page below
 *     it is never reached; test_demangle_guard shows that it would be);
 *     output that doubles at each level, of C++ and Rust names up to the
 *     cap, is given up on: 0 at once, 10,000 times in a row (1,000 under
 *     TSan) with no allocator call, no new mapping and no growth of the
 *     heap or of the memory resident;
 *     a name longer than the cap, or than DEMANGLE_MAX_NAME_PACKS when
 *     its pack expansions may walk without printing, gives 0; the caller's
 *     signal mask, with signals blocked and one pending, is the same before,
 *     during (the pending signal is not delivered) and after every call;
 *     stacks made and freed leave no mapping behind;
 *   - no C++ runtime is loaded in this (C) process;
 *   - demangle_style_t and config.h's CONFIG_DEMANGLE_* agree.
 * Built twice: test_demangle links heapprof_introspect as shipped;
 * test_demangle_guard compiles demangle.c with a 64 KiB stack and checks
 * only that a deep name on it dies of SIGSEGV in the guard page (in a
 * child process).
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
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

/* demangle on `stack` (NULL: the caller's), checked to call no allocator
 * function. */
static size_t dm_on(const char *name, int st, char *out, size_t cap,
                    demangle_stack_t *stack) {
  long before = allocs;
  size_t n = demangle(name, (demangle_style_t)st, out, cap, stack);
  CHECK(allocs == before, "%.80s (style %d, %s): %ld allocator calls", name,
        st, stack ? "switched" : "caller's stack", allocs - before);
  return n;
}

/* A stack of its own, failing loudly. */
static demangle_stack_t *new_stack(void) {
  demangle_stack_t *s = demangle_stack_new();
  CHECK(s != NULL, "demangle_stack_new: %m");
  return s;
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

/* The mappings of this process, as "start-end perms" lines. */
static char *maps(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  CHECK(f != NULL, "/proc/self/maps");
  size_t cap = 1 << 16, len = 0;
  char *all = malloc(cap), line[4096];
  while (fgets(line, sizeof line, f) != NULL) {
    char *sp = strchr(line, ' ');
    size_t n = sp != NULL ? (size_t)(sp - line) + 5 : strlen(line);
    if (len + n + 2 > cap)
      all = realloc(all, cap *= 2);
    memcpy(all + len, line, n);
    len += n;
    all[len++] = '\n';
  }
  all[len] = '\0';
  fclose(f);
  return all;
}

/* The guard of the one stack made between `before` and `after`: the
 * last DEMANGLE_GUARD_BYTES of a PROT_NONE mapping of `after` that is not
 * in `before` and ends where a read-write one of at least
 * DEMANGLE_STACK_BYTES starts (a sanitizer's runtime maps regions of its
 * own meanwhile; one exactly the guard's size is preferred). */
static void new_guard(const char *before, const char *after, uintptr_t *lo,
                      uintptr_t *hi) {
  int found = 0, exact = 0;
  for (const char *l = after; *l != '\0'; l = strchr(l, '\n') + 1) {
    unsigned long a, b, c, d;
    char perms[5], next[5];
    size_t n = (size_t)(strchr(l, '\n') - l);
    if (sscanf(l, "%lx-%lx %4s", &a, &b, perms) == 3 &&
        strcmp(perms, "---p") == 0 && b - a >= DEMANGLE_GUARD_BYTES &&
        memmem(before, strlen(before), l, n) == NULL &&
        sscanf(l + n + 1, "%lx-%lx %4s", &c, &d, next) == 3 && c == b &&
        strcmp(next, "rw-p") == 0 && d - c >= DEMANGLE_STACK_BYTES &&
        !(exact && b - a != DEMANGLE_GUARD_BYTES)) {
      CHECK(!(exact && b - a == DEMANGLE_GUARD_BYTES),
            "two new guards below a stack");
      found = 1;
      exact = b - a == DEMANGLE_GUARD_BYTES;
      *lo = b - DEMANGLE_GUARD_BYTES;
      *hi = b;
    }
  }
  CHECK(found, "no guard below the stack");
}

#ifdef DEMANGLE_TEST_GUARD
/* ---- test_demangle_guard: a stack too small for a name ---- */

static uintptr_t guard_lo, guard_hi;

static void on_segv(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)uc;
  uintptr_t at = (uintptr_t)si->si_addr;
  _exit(at >= guard_lo && at < guard_hi ? 42 : 43);
}

/* In a child: a name that fits the tiny stack demangles; one that needs
 * ~430 KB (libiberty's first step is its 64 KiB array of components)
 * faults in the guard below it (the handler runs on an alternate stack and
 * says where the fault was). */
static void guard(void) {
  pid_t pid = fork();
  CHECK(pid >= 0, "fork");
  if (pid == 0) {
    char buf[8192], *before = maps();
    demangle_stack_t *stack = new_stack();
    char *after = maps();
    new_guard(before, after, &guard_lo, &guard_hi);
    if (dm_on("_ZN3app3BoxIiE4makeIdEEPSt6vectorIT_SaIS4_EEi", DEMANGLE_FULL,
              buf, sizeof buf, stack) == 0)
      _exit(44);
    static char alt[1 << 16];
    stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt};
    struct sigaction sa = {0};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    if (sigaltstack(&ss, NULL) != 0 || sigaction(SIGSEGV, &sa, NULL) != 0)
      _exit(45);
    char *deep = shape(DEMANGLE_MAX_NAME_SWITCHED, "_Z1f", "i", "");
    demangle(deep, DEMANGLE_FULL, buf, sizeof buf, stack);
    _exit(46);
  }
  int status;
  CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 42,
        "a %d-byte stack: status %#x (42: a fault in the guard; 43: "
        "elsewhere; 44: a short name failed; 46: no fault)",
        DEMANGLE_STACK_BYTES, status);
  printf("ok: a name too deep for a %d-byte stack faults in the guard "
         "below it\n", DEMANGLE_STACK_BYTES);
}

int main(void) {
  guard();
  printf("ok\n");
  return 0;
}

#else /* the whole test */

/* ---- the table ---- */

/* Which cap a name is under: DEMANGLE_MAX_NAME (or _SWITCHED), the legacy
 * Rust one, or none (not mangled: pprof's heuristic). */
enum { OTHER, RUST_LEGACY, PLAIN };

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
    /* real names longer than DEMANGLE_MAX_NAME, 130 to 545 bytes (libLLVM-14):
       demangled on a demangle_stack_t only; the first has an empty pack */
    {"_ZNSt6vectorIN4llvm18wholeprogramdevirt10VTableBitsESaIS2_EE17_M"
     "_realloc_insertIJEEEvN9__gnu_cxx17__normal_iteratorIPS2_S4_EEDpO"
     "T_",
     {"std::vector::_M_realloc_insert",
      "std::vector<llvm::wholeprogramdevirt::VTableBits, std::allocator"
      "<llvm::wholeprogramdevirt::VTableBits> >::_M_realloc_insert<>",
      "void std::vector<llvm::wholeprogramdevirt::VTableBits, std::allo"
      "cator<llvm::wholeprogramdevirt::VTableBits> >::_M_realloc_insert"
      "<>(__gnu_cxx::__normal_iterator<llvm::wholeprogramdevirt::VTable"
      "Bits*, std::vector<llvm::wholeprogramdevirt::VTableBits, std::al"
      "locator<llvm::wholeprogramdevirt::VTableBits> > >)"},
     OTHER},
    {"_ZN4llvm13CodeExtractor33calculateNewCallTerminatorWeightsEPNS_1"
     "0BasicBlockERNS_8DenseMapIS2_NS_14BlockFrequencyENS_12DenseMapIn"
     "foIS2_vEENS_6detail12DenseMapPairIS2_S4_EEEEPNS_21BranchProbabil"
     "ityInfoE",
     {"llvm::CodeExtractor::calculateNewCallTerminatorWeights",
      "llvm::CodeExtractor::calculateNewCallTerminatorWeights",
      "llvm::CodeExtractor::calculateNewCallTerminatorWeights(llvm::Bas"
      "icBlock*, llvm::DenseMap<llvm::BasicBlock*, llvm::BlockFrequency"
      ", llvm::DenseMapInfo<llvm::BasicBlock*, void>, llvm::detail::Den"
      "seMapPair<llvm::BasicBlock*, llvm::BlockFrequency> >&, llvm::Bra"
      "nchProbabilityInfo*)"},
     OTHER},
    {"_ZSt9__find_ifIPPN4llvm11AnalysisKeyEN9__gnu_cxx5__ops10_Iter_pr"
     "edIZNS0_25OuterAnalysisManagerProxyINS0_15AnalysisManagerINS0_6M"
     "oduleEJEEENS0_13LazyCallGraph3SCCEJRSB_EE6Result10invalidateERSC"
     "_RKNS0_17PreservedAnalysesERNS8_ISC_JSD_EE11InvalidatorEEUlS2_E_"
     "EEET_SP_SP_T0_St26random_access_iterator_tag",
     {"std::__find_if",
      "std::__find_if<llvm::AnalysisKey**, __gnu_cxx::__ops::_Iter_pred"
      "<llvm::OuterAnalysisManagerProxy<llvm::AnalysisManager<llvm::Mod"
      "ule>, llvm::LazyCallGraph::SCC, llvm::LazyCallGraph&>::Result::i"
      "nvalidate(llvm::LazyCallGraph::SCC&, llvm::PreservedAnalyses con"
      "st&, llvm::AnalysisManager<llvm::LazyCallGraph::SCC, llvm::LazyC"
      "allGraph&>::Invalidator&)::{lambda(llvm::AnalysisKey*)#1}> >",
      "llvm::AnalysisKey** std::__find_if<llvm::AnalysisKey**, __gnu_cx"
      "x::__ops::_Iter_pred<llvm::OuterAnalysisManagerProxy<llvm::Analy"
      "sisManager<llvm::Module>, llvm::LazyCallGraph::SCC, llvm::LazyCa"
      "llGraph&>::Result::invalidate(llvm::LazyCallGraph::SCC&, llvm::P"
      "reservedAnalyses const&, llvm::AnalysisManager<llvm::LazyCallGra"
      "ph::SCC, llvm::LazyCallGraph&>::Invalidator&)::{lambda(llvm::Ana"
      "lysisKey*)#1}> >(llvm::AnalysisKey**, llvm::AnalysisKey**, __gnu"
      "_cxx::__ops::_Iter_pred<llvm::OuterAnalysisManagerProxy<llvm::An"
      "alysisManager<llvm::Module>, llvm::LazyCallGraph::SCC, llvm::Laz"
      "yCallGraph&>::Result::invalidate(llvm::LazyCallGraph::SCC&, llvm"
      "::PreservedAnalyses const&, llvm::AnalysisManager<llvm::LazyCall"
      "Graph::SCC, llvm::LazyCallGraph&>::Invalidator&)::{lambda(llvm::"
      "AnalysisKey*)#1}>, std::random_access_iterator_tag)"},
     OTHER},
    {"_ZNSt10_HashtableISt5tupleIJmjEESt4pairIKS1_St10unique_ptrIN4llv"
     "m23MCPseudoProbeInlineTreeESt14default_deleteIS6_EEESaISA_ENSt8_"
     "_detail10_Select1stESt8equal_toIS1_ENS5_27MCPseudoProbeInlineTre"
     "eBaseINS5_13MCPseudoProbeES6_E14InlineSiteHashENSC_18_Mod_range_"
     "hashingENSC_20_Default_ranged_hashENSC_20_Prime_rehash_policyENS"
     "C_17_Hashtable_traitsILb1ELb0ELb1EEEE13_M_rehash_auxEmSt17integr"
     "al_constantIbLb1EE",
     {"std::_Hashtable::_M_rehash_aux",
      "std::_Hashtable<std::tuple<unsigned long, unsigned int>, std::pa"
      "ir<std::tuple<unsigned long, unsigned int> const, std::unique_pt"
      "r<llvm::MCPseudoProbeInlineTree, std::default_delete<llvm::MCPse"
      "udoProbeInlineTree> > >, std::allocator<std::pair<std::tuple<uns"
      "igned long, unsigned int> const, std::unique_ptr<llvm::MCPseudoP"
      "robeInlineTree, std::default_delete<llvm::MCPseudoProbeInlineTre"
      "e> > > >, std::__detail::_Select1st, std::equal_to<std::tuple<un"
      "signed long, unsigned int> >, llvm::MCPseudoProbeInlineTreeBase<"
      "llvm::MCPseudoProbe, llvm::MCPseudoProbeInlineTree>::InlineSiteH"
      "ash, std::__detail::_Mod_range_hashing, std::__detail::_Default_"
      "ranged_hash, std::__detail::_Prime_rehash_policy, std::__detail:"
      ":_Hashtable_traits<true, false, true> >::_M_rehash_aux",
      "std::_Hashtable<std::tuple<unsigned long, unsigned int>, std::pa"
      "ir<std::tuple<unsigned long, unsigned int> const, std::unique_pt"
      "r<llvm::MCPseudoProbeInlineTree, std::default_delete<llvm::MCPse"
      "udoProbeInlineTree> > >, std::allocator<std::pair<std::tuple<uns"
      "igned long, unsigned int> const, std::unique_ptr<llvm::MCPseudoP"
      "robeInlineTree, std::default_delete<llvm::MCPseudoProbeInlineTre"
      "e> > > >, std::__detail::_Select1st, std::equal_to<std::tuple<un"
      "signed long, unsigned int> >, llvm::MCPseudoProbeInlineTreeBase<"
      "llvm::MCPseudoProbe, llvm::MCPseudoProbeInlineTree>::InlineSiteH"
      "ash, std::__detail::_Mod_range_hashing, std::__detail::_Default_"
      "ranged_hash, std::__detail::_Prime_rehash_policy, std::__detail:"
      ":_Hashtable_traits<true, false, true> >::_M_rehash_aux(unsigned "
      "long, std::integral_constant<bool, true>)"},
     OTHER},
    {"_ZN15LiveDebugValues16InstrRefBasedLDV21depthFirstVLocAndEmitEjR"
     "KN4llvm8DenseMapIPKNS1_12LexicalScopeEPKNS1_10DILocationENS1_12D"
     "enseMapInfoIS5_vEENS1_6detail12DenseMapPairIS5_S8_EEEERKNS2_IS5_"
     "NS1_8SmallSetINS1_13DebugVariableELj4ESt4lessISI_EEESA_NSC_IS5_S"
     "L_EEEERNS2_IS5_NS1_11SmallPtrSetIPNS1_17MachineBasicBlockELj4EEE"
     "SA_NSC_IS5_ST_EEEERNS1_11SmallVectorINSX_ISt4pairISI_NS_8DbgValu"
     "eEELj8EEELj8EEEPPNS_10ValueIDNumES16_RNS1_15SmallVectorImplINS_1"
     "1VLocTrackerEEERNS1_15MachineFunctionERNS2_ISI_jNS9_ISI_vEENSC_I"
     "SI_jEEEERKNS1_16TargetPassConfigE",
     {"LiveDebugValues::InstrRefBasedLDV::depthFirstVLocAndEmit",
      "LiveDebugValues::InstrRefBasedLDV::depthFirstVLocAndEmit",
      "LiveDebugValues::InstrRefBasedLDV::depthFirstVLocAndEmit(unsigne"
      "d int, llvm::DenseMap<llvm::LexicalScope const*, llvm::DILocatio"
      "n const*, llvm::DenseMapInfo<llvm::LexicalScope const*, void>, l"
      "lvm::detail::DenseMapPair<llvm::LexicalScope const*, llvm::DILoc"
      "ation const*> > const&, llvm::DenseMap<llvm::LexicalScope const*"
      ", llvm::SmallSet<llvm::DebugVariable, 4u, std::less<llvm::DebugV"
      "ariable> >, llvm::DenseMapInfo<llvm::LexicalScope const*, void>,"
      " llvm::detail::DenseMapPair<llvm::LexicalScope const*, llvm::Sma"
      "llSet<llvm::DebugVariable, 4u, std::less<llvm::DebugVariable> > "
      "> > const&, llvm::DenseMap<llvm::LexicalScope const*, llvm::Smal"
      "lPtrSet<llvm::MachineBasicBlock*, 4u>, llvm::DenseMapInfo<llvm::"
      "LexicalScope const*, void>, llvm::detail::DenseMapPair<llvm::Lex"
      "icalScope const*, llvm::SmallPtrSet<llvm::MachineBasicBlock*, 4u"
      "> > >&, llvm::SmallVector<llvm::SmallVector<std::pair<llvm::Debu"
      "gVariable, LiveDebugValues::DbgValue>, 8u>, 8u>&, LiveDebugValue"
      "s::ValueIDNum**, LiveDebugValues::ValueIDNum**, llvm::SmallVecto"
      "rImpl<LiveDebugValues::VLocTracker>&, llvm::MachineFunction&, ll"
      "vm::DenseMap<llvm::DebugVariable, unsigned int, llvm::DenseMapIn"
      "fo<llvm::DebugVariable, void>, llvm::detail::DenseMapPair<llvm::"
      "DebugVariable, unsigned int> >&, llvm::TargetPassConfig const&)"},
     OTHER},
    /* not mangled: DW_AT_name of functions inlined in a g++ 12 -O2 -g
       program (lambdas, std::function, std::invoke, make_shared); pprof
       removes (...) and <...> from them */
    {"_M_access<main(int, char**)::<lambda(int)> >",
     {"_M_access",
      "_M_access<main::<lambda> >",
      NULL},
     PLAIN},
    {"_M_create<const main(int, char**)::<lambda(int)>&>",
     {"_M_create",
      "_M_create<const main::<lambda>&>",
      NULL},
     PLAIN},
    {"_M_create<main(int, char**)::<lambda(int)>&>",
     {"_M_create",
      "_M_create<main::<lambda>&>",
      NULL},
     PLAIN},
    {"_M_get_pointer",
     {NULL,
      NULL,
      NULL},
     PLAIN},
    {"_M_init_functor<const main(int, char**)::<lambda(int)>&>",
     {"_M_init_functor",
      "_M_init_functor<const main::<lambda>&>",
      NULL},
     PLAIN},
    {"_M_init_functor<main(int, char**)::<lambda(int)>&>",
     {"_M_init_functor",
      "_M_init_functor<main::<lambda>&>",
      NULL},
     PLAIN},
    {"_M_invoke",
     {NULL,
      NULL,
      NULL},
     PLAIN},
    {"_M_manager",
     {NULL,
      NULL,
      NULL},
     PLAIN},
    {"_M_not_empty_function<main(int, char**)::<lambda(int)> >",
     {"_M_not_empty_function",
      "_M_not_empty_function<main::<lambda> >",
      NULL},
     PLAIN},
    {"__invoke<main(int, char**)::<lambda(int)>&, int&>",
     {"__invoke",
      "__invoke<main::<lambda>&, int&>",
      NULL},
     PLAIN},
    {"__invoke_impl<long unsigned int, main(int, char**)::<lambda(int)"
     ">&, int&>",
     {"__invoke_impl",
      "__invoke_impl<long unsigned int, main::<lambda>&, int&>",
      NULL},
     PLAIN},
    {"__invoke_impl<long unsigned int, main(int, char**)::<lambda(int)"
     ">&, int>",
     {"__invoke_impl",
      "__invoke_impl<long unsigned int, main::<lambda>&, int>",
      NULL},
     PLAIN},
    {"__invoke_r<long unsigned int, main(int, char**)::<lambda(int)>&,"
     " int>",
     {"__invoke_r",
      "__invoke_r<long unsigned int, main::<lambda>&, int>",
      NULL},
     PLAIN},
    {"function<main(int, char**)::<lambda(int)>&>",
     {"function",
      "function<main::<lambda>&>",
      NULL},
     PLAIN},
    {"invoke<main(int, char**)::<lambda(int)>&, int&>",
     {"invoke",
      "invoke<main::<lambda>&, int&>",
      NULL},
     PLAIN},
    {"operator()",
     {NULL,
      NULL,
      NULL},
     PLAIN},
    {"operator()<int>",
     {"operator",
      "operator<int>",
      NULL},
     PLAIN},
    /* DW_AT_name of other functions of that program (with linkage names) */
    {"operator< <char, std::char_traits<char>, std::allocator<char> >",
     {NULL,
      NULL,
      NULL},
     PLAIN},
    {"operator[]",
     {NULL,
      NULL,
      NULL},
     PLAIN},
    {"operator-<int*, std::vector<int, std::allocator<int> > >",
     {"operator-",
      NULL,
      NULL},
     PLAIN},
    {"operator std::__cxx11::basic_string<char>::__sv_type",
     {"operator std::__cxx11::basic_string::__sv_type",
      NULL,
      NULL},
     PLAIN},
    {"__allocate_guarded<std::allocator<std::_Sp_counted_ptr_inplace<a"
     "pp::Widget, std::allocator<void>, (__gnu_cxx::_Lock_policy)2> > "
     ">",
     {"__allocate_guarded",
      "__allocate_guarded<std::allocator<std::_Sp_counted_ptr_inplace<a"
      "pp::Widget, std::allocator<void>, 2> > >",
      NULL},
     PLAIN},
    {"pair<std::_Rb_tree_node_base*&, std::_Rb_tree_node_base*&>",
     {"pair",
      NULL,
      NULL},
     PLAIN},
    /* hand-made: what removeMatching does at the edges */
    {"operator>",
     {NULL,
      NULL,
      NULL},
     PLAIN},
    {"operator>>",
     {NULL,
      NULL,
      NULL},
     PLAIN},
    {"operator->",
     {NULL,
      NULL,
      NULL},
     PLAIN},
    {"operator<",
     {NULL,
      NULL,
      NULL},
     PLAIN},
    {"operator<=",
     {NULL,
      NULL,
      NULL},
     PLAIN},
    {"a(b)c)d",
     {NULL,
      NULL,
      NULL},
     PLAIN},
    {"f(x)<g",
     {"f<g",
      "f<g",
      NULL},
     PLAIN},
    {"java.lang.Object.<init>",
     {NULL,
      NULL,
      NULL},
     PLAIN},
    {"main.(*T[go.shape.int]).Method",
     {NULL,
      NULL,
      NULL},
     PLAIN},
    {"std::vector<int>::push_back",
     {"std::vector::push_back",
      NULL,
      NULL},
     PLAIN},
    {"operator()(int)",
     {NULL,
      NULL,
      NULL},
     PLAIN},
    {"(anonymous namespace)::helper",
     {"::helper",
      "::helper",
      NULL},
     PLAIN},
    {"a::b(c)d)e",
     {"a::bd)e",
      "a::bd)e",
      NULL},
     PLAIN},
    {"a::f<g>h>i",
     {"a::fh>i",
      NULL,
      NULL},
     PLAIN},
    {"a::f<x",
     {NULL,
      NULL,
      NULL},
     PLAIN},
    {"a::f<b<c>>::g",
     {"a::f::g",
      NULL,
      NULL},
     PLAIN},
    {"<lambda(int)>",
     {NULL,
      "<lambda>",
      NULL},
     PLAIN},
    {"std::x.<y>",
     {NULL,
      NULL,
      NULL},
     PLAIN},
    {"a::f()<",
     {"a::f<",
      "a::f<",
      NULL},
     PLAIN},
    {"[abi:cxx11]",
     {NULL,
      NULL,
      NULL},
     PLAIN},
    {"f[3]",
     {NULL,
      NULL,
      NULL},
     PLAIN},
    /* hand-made: nothing is removed after the first unmatched closer */
    {"a::b)c(d)e",
     {NULL,
      NULL,
      NULL},
     PLAIN},
    {"a::f>g<h>i",
     {NULL,
      NULL,
      NULL},
     PLAIN},
    {"a::f<x>y>z<w>",
     {"a::fy>z<w>",
      NULL,
      NULL},
     PLAIN},
    {"a::f(x)y)z(w)",
     {"a::fy)z(w)",
      "a::fy)z(w)",
      NULL},
     PLAIN},
    /* mangled-looking but not mangled: libiberty first, then the heuristic */
    {"_Z3foo<int>",
     {"foo",
      "foo",
      NULL},
     PLAIN},
    {"_Z3fooi<x>",
     {"foo",
      "foo",
      NULL},
     PLAIN},
    {"_ZN3fooEv::bar",
     {"foo",
      "foo",
      NULL},
     PLAIN},
    /* FULL: libiberty does not read it with parameters, so it stays as it
       is, and pprof, given it, shows "foo(int)" itself */
    {"_Z3fooi.cold<x>",
     {"foo",
      "foo",
      NULL},
     PLAIN},
    {"_Rb_tree<int>::x",
     {"_Rb_tree::x",
      NULL,
      NULL},
     PLAIN},
    {"_ZN1a1bE[x]",
     {"a::b",
      "a::b",
      NULL},
     PLAIN},

};
#define NROWS (sizeof table / sizeof *table)
#define STR_(x) #x
#define STR(x) STR_(x)

static const char *const style_names[] = {"simple", "templates", "full",
                                          "none"};

/* demangle.h's rule for a C++ name whose pack expansions may walk without
 * printing (held to DEMANGLE_MAX_NAME_PACKS on a stack of its own),
 * restated: an empty pack or sP, and sp, sZ or a Dp of anything but a
 * (qualified) template parameter without template arguments. */
static int packs_walk(const char *name) {
  if (strstr(name, "JE") == NULL && strstr(name, "sP") == NULL)
    return 0;
  if (strstr(name, "sp") != NULL || strstr(name, "sZ") != NULL)
    return 1;
  for (const char *p = strstr(name, "Dp"); p != NULL; p = strstr(p + 2, "Dp")) {
    size_t q = 2 + strspn(p + 2, "rVKROP");
    if (p[q] != 'T')
      return 1;
    q += 1 + strspn(p + q + 1, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    if (p[q] != '_' || p[q + 1] == 'I')
      return 1;
  }
  return 0;
}

/* The longest name of row r's kind demangle reads, on the caller's stack
 * or on one of its own. */
static size_t name_cap(const row_t *r, int switched) {
  if (r->kind == PLAIN)
    return SIZE_MAX;
  if (r->kind == RUST_LEGACY)
    return DEMANGLE_MAX_RUST_LEGACY;
  if (!switched)
    return DEMANGLE_MAX_NAME;
  return packs_walk(r->name) ? DEMANGLE_MAX_NAME_PACKS
                             : DEMANGLE_MAX_NAME_SWITCHED;
}

/* What demangle must give for row `r` in style `st` with the shipped caps:
 * NULL when it must give 0. */
static const char *expected(const row_t *r, int st, int switched) {
  if (st == DEMANGLE_NONE || strlen(r->name) > name_cap(r, switched))
    return NULL;
  return r->want[st];
}

/* demangle into a roomy buffer; "" when it gives 0. */
static const char *run(const char *name, int st, char *buf, size_t cap,
                       demangle_stack_t *stack) {
  size_t n = dm_on(name, st, buf, cap, stack);
  CHECK(n == 0 || (n < cap && buf[n] == '\0' && strlen(buf) == n),
        "%s (%s): returned %zu, not the length of a NUL-ended string", name,
        style_names[st], n);
  return n ? buf : "";
}

/* Every row in every style, compared with the table; returns how many
 * rows were demangled (not 0) in at least one style. */
static size_t check_table(demangle_stack_t *stack) {
  static char buf[8192];
  size_t demangled = 0;
  for (size_t i = 0; i < NROWS; i++) {
    int any = 0;
    for (int st = 0; st <= DEMANGLE_NONE; st++) {
      const char *want = expected(&table[i], st, stack != NULL);
      const char *got = run(table[i].name, st, buf, sizeof buf, stack);
      CHECK(strcmp(got, want ? want : "") == 0,
            "%s (%s, %s):\n  got  \"%s\"\n  want \"%s\"", table[i].name,
            style_names[st], stack ? "switched" : "caller's stack", got,
            want ? want : "(0: the name as it is)");
      any |= want != NULL;
    }
    demangled += any;
  }
  return demangled;
}

static void bad_calls(demangle_stack_t *stack) {
  char buf[64];
  CHECK(demangle(NULL, DEMANGLE_SIMPLE, buf, sizeof buf, stack) == 0,
        "NULL name");
  CHECK(dm_on("_Z3fooi", DEMANGLE_SIMPLE, NULL, 64, stack) == 0, "NULL out");
  CHECK(dm_on("_Z3fooi", DEMANGLE_SIMPLE, buf, 0, stack) == 0, "cap 0");
  CHECK(dm_on("_Z3fooi", 42, buf, sizeof buf, stack) == 0, "style 42");
  CHECK(dm_on("_Z3fooi", -1, buf, sizeof buf, stack) == 0, "style -1");
  CHECK(dm_on("", DEMANGLE_FULL, buf, sizeof buf, stack) == 0, "empty name");
  CHECK(dm_on("a::f<int>", DEMANGLE_SIMPLE, buf, 0, stack) == 0,
        "cap 0, not mangled");
  printf("ok: NULL, cap 0, bad styles, empty name (%s)\n",
         stack ? "switched" : "caller's stack");
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

/* A C++ name of `n` bytes, "_Z1fIJEEv", then `unit` repeated, then as
 * many "i" as make up `n`: f<>() with an empty pack, whose parameters are
 * expansions of the pack (DpT_: nothing but ", " printed) or of a pattern
 * without it (Dp1a: "a..."), then ints. */
static char *pack_name(size_t n, const char *unit) {
  char *s = shape(n - 1, "_Z1fIJEEv", unit, "i");
  size_t len = strlen(s);
  s = realloc(s, n + 1);
  memset(s + len, 'i', n - len);
  s[n] = '\0';
  return s;
}

/* The caps: a name of exactly the cap is read, one byte more is not; a
 * legacy Rust name far over DEMANGLE_MAX_NAME is; 100 KB names are not. */
static void caps(demangle_stack_t *stack) {
  char buf[8192];
  size_t id, k, cap = stack ? DEMANGLE_MAX_NAME_SWITCHED : DEMANGLE_MAX_NAME;
  char *at = app_name(cap, &id);
  char *over = app_name(cap + 1, &k);
  CHECK(strlen(at) == cap && strlen(over) == cap + 1, "app_name lengths");
  const char *got = run(at, DEMANGLE_SIMPLE, buf, sizeof buf, stack);
  CHECK(strncmp(got, "app::aaa", 8) == 0 && strlen(got) == 5 + id,
        "a %zu-byte name: \"%s\"", cap, got);
  CHECK(dm_on(over, DEMANGLE_SIMPLE, buf, sizeof buf, stack) == 0,
        "a name over the cap (%zu) was read", cap);
  free(at);
  free(over);

  if (stack != NULL) { /* pack expansions: DEMANGLE_MAX_NAME_PACKS */
    char *safe = pack_name(DEMANGLE_MAX_NAME_SWITCHED, "DpT_");
    char *walks = pack_name(DEMANGLE_MAX_NAME_PACKS, "Dp1a");
    char *walks_over = pack_name(DEMANGLE_MAX_NAME_PACKS + 1, "Dp1a");
    CHECK(!packs_walk(safe) && packs_walk(walks), "pack_name");
    got = run(safe, DEMANGLE_FULL, buf, sizeof buf, stack);
    CHECK(strncmp(got, "void f<>(, , ", 13) == 0 &&
              strcmp(got + strlen(got) - 6, ", int)") == 0,
          "a %d-byte name expanding an empty pack parameter: \"%s\"",
          DEMANGLE_MAX_NAME_SWITCHED, got);
    CHECK(strncmp(run(walks, DEMANGLE_FULL, buf, sizeof buf, stack),
                  "void f<>(a..., a..., ", 20) == 0,
          "a %d-byte name with an empty pack and Dp1a: \"%s\"",
          DEMANGLE_MAX_NAME_PACKS, buf);
    CHECK(dm_on(walks_over, DEMANGLE_FULL, buf, sizeof buf, stack) == 0,
          "a name with an empty pack and Dp1a over %d bytes was read",
          DEMANGLE_MAX_NAME_PACKS);
    /* a parameter with template arguments: they are searched too */
    char *args_over = pack_name(DEMANGLE_MAX_NAME_PACKS + 1, "DpT_IiE");
    CHECK(packs_walk(args_over) &&
              dm_on(args_over, DEMANGLE_FULL, buf, sizeof buf, stack) == 0,
          "a name with an empty pack and DpT_IiE over %d bytes was read",
          DEMANGLE_MAX_NAME_PACKS);
    free(safe);
    free(walks);
    free(walks_over);
    free(args_over);
  }

  char *rust = rust_legacy_name(DEMANGLE_MAX_RUST_LEGACY, &k);
  size_t n = dm_on(rust, DEMANGLE_SIMPLE, buf, sizeof buf, stack);
  CHECK(n == k * 6 - 2 && strncmp(buf, "abcd::abcd::", 12) == 0,
        "a %d-byte legacy Rust name: %zu bytes", DEMANGLE_MAX_RUST_LEGACY, n);
  free(rust);
  rust = rust_legacy_name(DEMANGLE_MAX_RUST_LEGACY + 10, &k);
  CHECK(strlen(rust) > DEMANGLE_MAX_RUST_LEGACY &&
            dm_on(rust, DEMANGLE_SIMPLE, buf, sizeof buf, stack) == 0,
        "a legacy Rust name over DEMANGLE_MAX_RUST_LEGACY was read");
  free(rust);

  char *huge[] = {shape(100000, "_ZN", "1a", "E"),
                  shape(100000, "_ZN", "4abcd", "17h0123456789abcdefE"),
                  shape(100000, "_RNv", "NvC1a", "1f")};
  for (size_t i = 0; i < 3; i++) {
    for (int st = 0; st <= DEMANGLE_NONE; st++)
      CHECK(dm_on(huge[i], st, buf, sizeof buf, stack) == 0,
            "a 100 KB name was read");
    free(huge[i]);
  }
  printf("ok: caps %zu%s and %d (legacy Rust) bytes, 100 KB names (%s)\n",
         cap, stack ? ", " STR(DEMANGLE_MAX_NAME_PACKS) " with packs" : "",
         DEMANGLE_MAX_RUST_LEGACY, stack ? "switched" : "caller's stack");
}

/* Output exactly at, one under and well under the room it needs, with
 * guard bytes after `cap`. */
static void fits(demangle_stack_t *stack) {
  enum { GUARD = 64 };
  static char buf[8192 + GUARD];
  size_t tries = 0;
  for (size_t i = 0; i < NROWS; i++)
    for (int st = 0; st < DEMANGLE_NONE; st++) {
      const char *want = expected(&table[i], st, stack != NULL);
      if (want == NULL)
        continue;
      size_t len = strlen(want);
      for (size_t cap = 0; cap <= len + 2; cap++) {
        memset(buf, 0x5a, cap + GUARD);
        size_t n = dm_on(table[i].name, st, buf, cap, stack);
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
  CHECK(dm_on(name, DEMANGLE_TEMPLATES, buf, 16, stack) == 0 &&
            dm_on(name, DEMANGLE_SIMPLE, buf, 16, stack) == 14 &&
            strcmp(buf, "app::Box::make") == 0,
        "SIMPLE needs room for more than its own form: \"%s\"", buf);
  /* libiberty hands its output over in pieces of 255 bytes; when one ends
   * with the space of "operator< <int>", which SIMPLE takes back, the form
   * kept is one byte longer than the result for a moment: exactly cap. */
  if (stack != NULL) {
    char *op = malloc(300);
    snprintf(op, 300, "_ZN243%0243dltIiEEvi", 0);
    memset(op + 6, 'a', 243);
    CHECK(dm_on(op, DEMANGLE_SIMPLE, buf, 255, stack) == 254 &&
              strcmp(buf + 243, "::operator<") == 0,
          "a 254-byte operator< whose space ends a 255-byte piece, in 255 "
          "bytes: \"%.20s...\"", buf);
    free(op);
  }
  printf("ok: %zu caps around the exact size, no byte written past cap "
         "(%s)\n", tries, stack ? "switched" : "caller's stack");
}

/* Each name copied to the end of a page followed by a PROT_NONE page: a
 * read past its NUL faults. */
static void no_overread(demangle_stack_t *stack) {
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
      dm_on(name, st, buf, sizeof buf, stack);
    for (size_t cut = 1; cut < n - 1; cut++) { /* every prefix too */
      memcpy(two + page - (n - cut), table[i].name, n - cut - 1);
      two[page - 1] = '\0';
      dm_on(two + page - (n - cut), DEMANGLE_FULL, buf, sizeof buf, stack);
      dm_on(two + page - (n - cut), DEMANGLE_SIMPLE, buf, sizeof buf, stack);
    }
  }
  munmap(two, 2 * (size_t)page);
  printf("ok: nothing read past a name's NUL (every row and prefix, %s)\n",
         stack ? "switched" : "caller's stack");
}

/* Threads with an even number use a stack of their own. */
static void *table_thread(void *arg) {
  static char bufs[8][8192];
  int id = *(int *)arg;
  char *buf = bufs[id];
  demangle_stack_t *stack = id % 2 == 0 ? new_stack() : NULL;
  for (int round = 0; round < 50; round++)
    for (size_t i = 0; i < NROWS; i++)
      for (int st = 0; st <= DEMANGLE_NONE; st++) {
        const char *want = expected(&table[i], st, stack != NULL);
        size_t n = dm_on(table[i].name, st, buf, 8192, stack);
        CHECK(want ? n == strlen(want) && strcmp(buf, want) == 0 : n == 0,
              "thread %d: %s (%s)", id, table[i].name, style_names[st]);
      }
  demangle_stack_free(stack);
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
  printf("ok: 8 threads (4 on stacks of their own) x 50 rounds of the "
         "table at once, no allocation\n");
}

/* ---- the caller's stack ---- */

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
  demangle(p->name, (demangle_style_t)p->style, buf, sizeof buf, NULL);
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
      demangle(*names, (demangle_style_t)st, buf, sizeof buf, NULL);
  return NULL;
}

/* The shapes that cost libiberty the most stack per byte (a search over
 * repeated units in template argument lists, parameter lists, nested
 * names and Rust v0 types), each `n` bytes long; NULL-terminated. */
static void deep_shapes(char *shapes[12], size_t n) {
  size_t k;
  char *s[] = {
      shape(n, "_Z1f", "i", ""),              /* f(int, int, ...) */
      shape(n, "_Z1fI", "i", "Evv"),          /* f<int, int, ...>() */
      shape(n, "_Z1fIJ", "i", "EEvv"),        /* a pack of them */
      shape(n, "_Z1f", "Pi", ""),             /* f(int*, int*, ...) */
      shape(n, "_ZN", "1a", "1fEv"),          /* a::a::...::f() */
      shape(n, "_Z1fI", "S_", "Evv"),         /* substitutions */
      shape(n, "_Z1fPF", "PF", "vE"),         /* nested function types */
      shape(n, "_RINvC1a1f", "R", "hEC1a"),   /* Rust v0: &&&...u8 */
      shape(n, "_RINvC1a1f", "T", "hEC1a"),   /* Rust v0 tuples */
      rust_legacy_name(DEMANGLE_MAX_RUST_LEGACY, &k), /* constant stack */
      NULL};
  memcpy(shapes, s, sizeof s);
}

static void callers_stack(void) {
  char *shapes[12];
  deep_shapes(shapes, DEMANGLE_MAX_NAME);
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
  printf("caller's stack: at most %zu bytes, for %s\n", worst, worst_name);
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
}

/* A hang detector: if the phase named takes more than `seconds`, fail
 * (a name that is not given up on prints forever); 0 seconds: disarm. */
static const char *volatile phase;

static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "FAIL: hang (alarm) in: ";
  if (write(2, msg, sizeof msg - 1) > 0 && write(2, phase, strlen(phase)) > 0)
    (void)!write(2, "\n", 1);
  _exit(1);
}

static void hang_after(unsigned seconds, const char *what) {
  phase = what;
  signal(SIGALRM, on_alarm);
  alarm(seconds);
}

/* ---- a stack of its own ---- */

static size_t count_lines(const char *s) {
  size_t n = 0;
  for (; *s != '\0'; s++)
    n += *s == '\n';
  return n;
}

/* ---- output that doubles at each level ---- */

/* A substitution's name, S_, S0_, S1_, ... (base 36). */
static void seq_id(char *out, size_t i) {
  static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  char tmp[16];
  size_t n = 0;
  if (i-- == 0) {
    strcpy(out, "S_");
    return;
  }
  do
    tmp[n++] = digits[i % 36];
  while ((i /= 36) > 0);
  *out++ = 'S';
  while (n > 0)
    *out++ = tmp[--n];
  strcpy(out, "_");
}

/* A C++ name of at most `n` bytes whose every level is b<previous,
 * previous>: as function parameters, f(a, b<a, a>, b<b<a, a>, ...>, ...),
 * or as template arguments, which SIMPLE strips. malloc'd. */
static char *cxx_doubling(size_t n, int templates) {
  char *s = malloc(n + 1), ref[16], unit[48];
  strcpy(s, templates ? "_Z1fI1a1bIS0_S0_E" : "_Z1f1a1bIS_S_E");
  for (size_t i = templates ? 3 : 2;; i++) { /* b<a, a> first */
    seq_id(ref, i);
    snprintf(unit, sizeof unit, "%sI%s%sE", templates ? "S1_" : "S0_", ref,
             ref);
    if (strlen(s) + strlen(unit) + (templates ? 3 : 0) > n)
      break;
    strcat(s, unit);
  }
  if (templates)
    strcat(s, "Evv");
  return s;
}

/* A Rust v0 name of at most `n` bytes, f::<u8, (u8, u8), ((u8, u8), (u8,
 * u8)), ...>: each tuple back-references the previous one twice. */
static char *rust_doubling(size_t n) {
  char *s = malloc(n + 1), unit[64];
  strcpy(s, "_RINvC1a1fh");
  size_t prev = 8; /* the offset of "h" after "_R" */
  for (;;) {
    char ref[16], tmp[16];
    size_t i = 0, v = prev;
    if (v == 0) {
      strcpy(ref, "_");
    } else {
      static const char d62[] =
          "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
      v--;
      do
        tmp[i++] = d62[v % 62];
      while ((v /= 62) > 0);
      size_t j = 0;
      while (i > 0)
        ref[j++] = tmp[--i];
      ref[j++] = '_';
      ref[j] = '\0';
    }
    snprintf(unit, sizeof unit, "TB%sB%sE", ref, ref);
    if (strlen(s) + strlen(unit) + 1 > n)
      break;
    prev = strlen(s) - 2;
    strcat(s, unit);
  }
  strcat(s, "E");
  return s;
}

/* Names of DEMANGLE_MAX_NAME_SWITCHED bytes that need the most stack:
 * the deep shapes of the caller's stack, and many references to a
 * template parameter (`RT_`, each a scope libiberty saves in an array on
 * the stack) before levels of b<previous, previous> or a list: the
 * deepest found, 180 and 36 levels, needs ~574 KB. */
static char *refs_name(size_t refs, size_t levels) {
  char *s = malloc(DEMANGLE_MAX_NAME_SWITCHED + 1), ref[16], unit[48];
  strcpy(s, "_Z1fIiEv1bI");
  for (size_t i = 0; i < refs; i++)
    strcat(s, "RT_");
  strcat(s, "E");
  for (size_t i = 0; i < levels; i++) { /* f=S_, b=S0_, T_ and RT_ each */
    seq_id(ref, 2 * refs + 2 + i);
    snprintf(unit, sizeof unit, "S0_I%s%sE", ref, ref);
    if (strlen(s) + strlen(unit) > DEMANGLE_MAX_NAME_SWITCHED)
      break;
    strcat(s, unit);
  }
  memset(s + strlen(s), 'i', DEMANGLE_MAX_NAME_SWITCHED - strlen(s));
  s[DEMANGLE_MAX_NAME_SWITCHED] = '\0';
  return s;
}

static void switched_stack(void) {
  hang_after(120, "the deepest names");
  char *shapes[12];
  deep_shapes(shapes, DEMANGLE_MAX_NAME_SWITCHED);
  char *refs[] = {refs_name(180, 36), refs_name(200, 0), refs_name(330, 0),
                  refs_name(100, 20)};
  char *all[24], buf[8192];
  size_t n = 0, worst = 0, demangled = 0;
  for (char **s = shapes; *s != NULL; s++)
    all[n++] = *s;
  for (size_t i = 0; i < sizeof refs / sizeof *refs; i++)
    all[n++] = refs[i];
  const char *worst_name = "";
  for (size_t i = 0; i < n; i++)
    for (int st = 0; st < DEMANGLE_NONE; st++) {
      char *before = maps();
      demangle_stack_t *stack = new_stack();
      char *after = maps();
      uintptr_t lo, hi;
      new_guard(before, after, &lo, &hi);
      demangled += dm_on(all[i], st, buf, sizeof buf, stack) > 0;
      size_t used = demangle_stack_used(stack);
      if (used > worst) {
        worst = used;
        worst_name = all[i];
      }
      char *later = maps();
      char guard[64];
      snprintf(guard, sizeof guard, "%lx-%lx ---p\n", (unsigned long)lo,
               (unsigned long)hi);
      CHECK(strstr(later, guard) != NULL, "the guard page is gone: %s", guard);
      demangle_stack_free(stack);
      free(before);
      free(after);
      free(later);
    }
  hang_after(0, "");
  printf("stack of its own: at most %zu bytes of %d, for %.60s... "
         "(%zu of %zu demangled)\n",
         worst, DEMANGLE_STACK_BYTES, worst_name, demangled, 3 * n);
  CHECK(worst < DEMANGLE_STACK_BYTES / 2,
        "%zu bytes of a %d-byte stack for %s", worst, DEMANGLE_STACK_BYTES,
        worst_name);
  CHECK(demangled >= 3 * 3, "the deep shapes were not demangled (%zu)",
        demangled);
  for (size_t i = 0; i < n; i++)
    free(all[i]);
  printf("ok: the deepest names found at %d bytes use less than half of the "
         "stack; the guard page below stays\n", DEMANGLE_MAX_NAME_SWITCHED);
}

/* This process's resident memory, from /proc/self/status. */
static long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  CHECK(f != NULL, "/proc/self/status");
  char line[256];
  long kib = -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
      break;
  fclose(f);
  CHECK(kib > 0, "VmRSS");
  return kib;
}

/* The output of a name grows as it should: by half or more at each
 * level, at least three times (so these names are what they claim). */
static void check_doubles(const char *what, char *(*make)(size_t, int),
                          int arg, demangle_stack_t *stack) {
  static char buf[1 << 16];
  size_t last = 0, grew = 0;
  for (size_t n = 20; n < 200; n++) {
    char *s = make(n, arg);
    size_t len = dm_on(s, DEMANGLE_FULL, buf, sizeof buf, stack);
    free(s);
    if (2 * len > 3 * last && last > 0)
      grew++;
    if (len > last)
      last = len;
  }
  CHECK(grew >= 3 && last > 2048, "%s: the output does not double (%zu)",
        what, last);
}

static char *cxx_params(size_t n, int unused) {
  (void)unused;
  return cxx_doubling(n, 0);
}
static char *cxx_templates(size_t n, int unused) {
  (void)unused;
  return cxx_doubling(n, 1);
}
static char *rust(size_t n, int unused) {
  (void)unused;
  return rust_doubling(n);
}

/* Names whose output doubles at each level, up to the cap: given up on
 * (0) in every style, however long their output would be (2^80 bytes at
 * the cap: hang_after() fails the test if the demangler is not stopped), and
 * GIVE_UPS times in a row with nothing left behind; the stack then works
 * as before. A TSan build makes a fiber for each call (~0.6 ms) and runs
 * the sink instrumented: 1,000 there. */
#if defined(__SANITIZE_THREAD__)
#define GIVE_UPS 1000
#else
#define GIVE_UPS 10000
#endif
static void gives_up(demangle_stack_t *stack) {
  static char buf[4096];
  hang_after(120, "names whose output doubles");
  check_doubles("C++ parameters", cxx_params, 0, stack);
  check_doubles("C++ template arguments", cxx_templates, 0, stack);
  check_doubles("Rust v0", rust, 0, stack);
  char *bombs[] = {cxx_doubling(DEMANGLE_MAX_NAME_SWITCHED, 0),
                   cxx_doubling(DEMANGLE_MAX_NAME_SWITCHED, 1),
                   rust_doubling(DEMANGLE_MAX_NAME_SWITCHED),
                   rust_doubling(196)};
  enum { NBOMBS = sizeof bombs / sizeof *bombs };
  for (size_t i = 0; i < NBOMBS; i++)
    for (int st = 0; st < DEMANGLE_NONE; st++) {
      /* C++ parameters are printed in FULL only */
      const char *want = i == 0 && st != DEMANGLE_FULL ? "f" : "";
      const char *got = run(bombs[i], st, buf, sizeof buf, stack);
      CHECK(strcmp(got, want) == 0, "%.60s (%s): \"%.60s\", not %s",
            bombs[i], style_names[st], got, *want ? want : "given up on");
    }

  /* Warm up (every page of the stack these touch is touched), then GIVE_UPS
   * more: no allocator call (dm_on), no heap growth, no new mapping, no
   * resident memory growth. */
  for (int i = 0; i < 100; i++)
    dm_on(bombs[1 + i % (NBOMBS - 1)], i % 3, buf, sizeof buf, stack);
  char *maps0 = maps();
  long rss0 = rss_kib();
  struct mallinfo2 m0 = mallinfo2();
  for (int i = 0; i < GIVE_UPS; i++)
    CHECK(dm_on(bombs[1 + i % (NBOMBS - 1)], i % 3, buf, sizeof buf, stack) ==
              0,
          "give-up %d", i);
  struct mallinfo2 m1 = mallinfo2();
  long rss1 = rss_kib();
  char *maps1 = maps();
  hang_after(0, "");
  printf("%d give-ups: resident %ld -> %ld KiB, heap in use %zu -> %zu\n",
         GIVE_UPS, rss0, rss1, m0.uordblks, m1.uordblks);
  CHECK(m1.uordblks == m0.uordblks && m1.hblkhd == m0.hblkhd,
        "the heap grew: %zu -> %zu (mmapped %zu -> %zu)", m0.uordblks,
        m1.uordblks, m0.hblkhd, m1.hblkhd);
#if defined(__SANITIZE_ADDRESS__)
  /* ASan's allocator grows its regions for the test's own allocations
   * (freed memory waits in quarantine): count the mappings only. */
  CHECK(count_lines(maps0) == count_lines(maps1),
        "the mappings changed:\n%s\n---\n%s", maps0, maps1);
#else
  CHECK(strcmp(maps0, maps1) == 0, "the mappings changed:\n%s\n---\n%s",
        maps0, maps1);
#endif
  CHECK(rss1 - rss0 < 256, "resident memory grew by %ld KiB", rss1 - rss0);
  free(maps0);
  free(maps1);
  for (size_t i = 0; i < NBOMBS; i++)
    free(bombs[i]);
  check_table(stack);
  printf("ok: names whose output doubles at each level (C++ and Rust, up "
         "to %d bytes) given up on, %d times in a row; the stack works on\n",
         DEMANGLE_MAX_NAME_SWITCHED, GIVE_UPS);
}

/* ---- the signal mask ---- */

static volatile sig_atomic_t in_call, delivered;

static void on_usr1(int sig) {
  (void)sig;
  delivered = in_call ? 2 : 1;
}

static int same_mask(const sigset_t *a, const sigset_t *b) {
  for (int sig = 1; sig < SIGRTMAX; sig++)
    if (sigismember(a, sig) != sigismember(b, sig))
      return 0;
  return 1;
}

/* With SIGUSR1 (pending), SIGUSR2 and SIGRTMIN+3 blocked: every kind of
 * call (demangled, given up, not mangled, too long, rejected) leaves the
 * mask as it was, and the pending signal is not delivered during it
 * (it would be, on a context carrying another mask). */
static void signal_mask(demangle_stack_t *stack) {
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  CHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction");
  sigset_t block, old, before, after, pending;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGUSR2);
  sigaddset(&block, SIGRTMIN + 3);
  CHECK(pthread_sigmask(SIG_BLOCK, &block, &old) == 0, "block");
  CHECK(raise(SIGUSR1) == 0 && delivered == 0, "raise");
  char *bomb = rust_doubling(DEMANGLE_MAX_NAME_SWITCHED), buf[4096];
  char *too_long = shape(DEMANGLE_MAX_NAME_SWITCHED + 1, "_Z1f", "i", "");
  const char *names[] = {"_ZN3app3BoxIiE4makeIdEEPSt6vectorIT_SaIS4_EEi",
                         bomb,
                         "__invoke_impl<void, main()::<lambda(int)>&, int>",
                         too_long,
                         "_Zjunk",
                         "malloc"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    for (int st = 0; st <= DEMANGLE_NONE; st++) {
      pthread_sigmask(SIG_SETMASK, NULL, &before);
      in_call = 1;
      dm_on(names[i], st, buf, sizeof buf, stack);
      in_call = 0;
      pthread_sigmask(SIG_SETMASK, NULL, &after);
      CHECK(same_mask(&before, &after), "%.40s (%s): the mask changed",
            names[i], style_names[st]);
      CHECK(delivered == 0, "%.40s (%s): SIGUSR1 was delivered %s", names[i],
            style_names[st], delivered == 2 ? "during the call" : "");
      CHECK(sigpending(&pending) == 0 && sigismember(&pending, SIGUSR1),
            "SIGUSR1 no longer pending");
    }
  CHECK(pthread_sigmask(SIG_SETMASK, &old, NULL) == 0 && delivered == 1,
        "SIGUSR1 not delivered once unblocked (%d)", (int)delivered);
  free(bomb);
  free(too_long);
  printf("ok: the signal mask (3 signals blocked, 1 pending) is the "
         "caller's before, during and after every call\n");
}

/* No handler of the program's runs on the demangle stack: a signal that
 * arrives while a name is demangled waits until the call returns. Another
 * thread sends SIGUSR2 (unblocked) to this one over and over while it
 * demangles; every handler must find itself on this thread's own stack
 * (a GC's stop-the-world handler scans from its stack pointer up). */
static uintptr_t own_lo, own_hi;
static volatile sig_atomic_t handled, foreign;
static atomic_int sending;

static void on_usr2(int sig) {
  (void)sig;
  char here;
  uintptr_t at = (uintptr_t)&here;
  handled++;
  if (at < own_lo || at >= own_hi)
    foreign++;
}

static void *send_usr2(void *arg) {
  pthread_t to = *(pthread_t *)arg;
  while (atomic_load(&sending)) {
    pthread_kill(to, SIGUSR2);
    sched_yield();
  }
  return NULL;
}

static void no_handler_on_stack(demangle_stack_t *stack) {
  pthread_attr_t attr;
  void *lo;
  size_t size;
  CHECK(pthread_getattr_np(pthread_self(), &attr) == 0 &&
            pthread_attr_getstack(&attr, &lo, &size) == 0,
        "this thread's stack");
  pthread_attr_destroy(&attr);
  own_lo = (uintptr_t)lo;
  own_hi = own_lo + size;
  struct sigaction sa = {0};
  sa.sa_handler = on_usr2;
  CHECK(sigaction(SIGUSR2, &sa, NULL) == 0, "sigaction");
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  pthread_sigmask(SIG_UNBLOCK, &usr2, NULL);
  pthread_t self = pthread_self(), sender;
  atomic_store(&sending, 1);
  pthread_create(&sender, NULL, send_usr2, &self);
  char buf[4096];
  const char *name = "_ZNSt6vectorIN3app6WidgetESaIS1_EE17_M_realloc_insertIJS1_"
                     "EEEvN9__gnu_cxx17__normal_iteratorIPS1_S3_EEDpOT_";
  for (int i = 0; i < 20000 && handled < 2000; i++)
    dm_on(name, DEMANGLE_FULL, buf, sizeof buf, stack);
  atomic_store(&sending, 0);
  pthread_join(sender, NULL);
  signal(SIGUSR2, SIG_IGN);
  CHECK(handled > 0, "no SIGUSR2 was handled: the check saw nothing");
  CHECK(foreign == 0, "%d of %d handlers ran off this thread's stack (on the "
        "demangle stack)", (int)foreign, (int)handled);
  printf("ok: %d signal handlers during demangling, all on the thread's own "
         "stack\n", (int)handled);
}

/* Stacks made, used, given up on and freed leave no mapping behind. */
static void stacks_come_and_go(void) {
  char *before = maps(), buf[256];
  char *bomb = rust_doubling(200);
  for (int i = 0; i < 1000; i++) {
    demangle_stack_t *s = new_stack();
    CHECK(dm_on("_Z3fooi", DEMANGLE_FULL, buf, sizeof buf, s) == 8 &&
              dm_on(bomb, DEMANGLE_FULL, buf, sizeof buf, s) == 0,
          "stack %d", i);
    demangle_stack_free(s);
  }
  demangle_stack_free(NULL);
  char *after = maps();
  CHECK(count_lines(before) == count_lines(after),
        "%zu mappings before, %zu after", count_lines(before),
        count_lines(after));
  free(before);
  free(after);
  free(bomb);
  printf("ok: 1,000 stacks made, used and freed: no mapping left\n");
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

  demangle_stack_t *stack = new_stack();
  size_t on_ours = check_table(NULL), switched = check_table(stack);
  printf("ok: %zu names x 4 styles as pprof shows them (demangled or tidied: "
         "%zu on the caller's stack, %zu on a stack of its own; the rest "
         "left as they are), no allocator call\n",
         NROWS, on_ours, switched);
  CHECK(switched > on_ours, "no more names on a stack of its own");
  for (int i = 0; i < 2; i++) {
    demangle_stack_t *s = i ? stack : NULL;
    bad_calls(s);
    caps(s);
    fits(s);
    no_overread(s);
  }
  threads();
  callers_stack();
  switched_stack();
  gives_up(stack);
  signal_mask(stack);
  no_handler_on_stack(stack);
  stacks_come_and_go();
  demangle_stack_free(stack);
  no_cxx_runtime();
  printf("ok\n");
  return 0;
}

#endif /* DEMANGLE_TEST_GUARD */
