/*
 * got_lib — a library whose way to the malloc family goes through every
 * kind of slot runtime/got.c rewrites, for test_got. Linked with
 * -z lazy, so its JUMP_SLOTs stay unbound until their first call.
 *
 *   calloc, free   R_X86_64_JUMP_SLOT (plain calls through the PLT)
 *   malloc         R_X86_64_GLOB_DAT (its address loaded from the GOT, so
 *                  its calls go through .plt.got: no JUMP_SLOT), and
 *                  R_X86_64_64 in .data (`tab`, `tab2`), in RELRO
 *                  (`ro_tab`), and with an addend (`plus`, never patched)
 *   free           R_X86_64_64 in .data (`tab`)
 *
 * test_got checks with readelf that the built library has each of them.
 * Built twice: libgot_lib (linked into test_got) and libgot_lib2
 * (-DGOT_LIB2: the same code under other names, dlopen'ed after the first
 * patch, with an IBT PLT whose lazy stubs start with endbr64).
 */
#include <stdlib.h>

#ifdef GOT_LIB2
#define F(x) gotlib2_##x
#else
#define F(x) gotlib_##x
#endif

/* volatile: read at every call, never folded into a direct call. */
static struct {
  void *(*volatile m)(size_t);
  void (*volatile f)(void *);
} tab = {malloc, free};
/* An entry the program rewrites (F(tamper)) before the patch. */
static void *(*volatile tab2)(size_t) = malloc;
/* const: placed in .data.rel.ro, inside PT_GNU_RELRO. */
static void *(*const ro_tab[1])(size_t) = {malloc};
/* R_X86_64_64 malloc + 1. */
__attribute__((used)) static char *volatile plus = (char *)malloc + 1;

static int fake_calls;
static void *fake_malloc(size_t n) {
  (void)n;
  fake_calls++;
  return &fake_calls;
}

void F(tamper)(void) { tab2 = fake_malloc; }
/* Never called: a write keeps `tab` in .data (a static nobody writes is
 * placed in .data.rel.ro, inside RELRO). Not of free: its address taken in
 * code would make a GLOB_DAT, and its calls would use that, not a
 * JUMP_SLOT. */
void F(tab_reset)(void) { tab.m = malloc; }
int F(fake_calls)(void) { return fake_calls; }

void *F(calloc)(size_t n) { return calloc(1, n); }
void F(release)(void *p) { free(p); }
void *F(via_got)(size_t n) {
  void *(*volatile f)(size_t) = malloc;
  return f(n);
}
void *F(tab_alloc)(size_t n) { return tab.m(n); }
void F(tab_free)(void *p) { tab.f(p); }
void *F(tab2_alloc)(size_t n) { return tab2(n); }
void *F(ro_alloc)(size_t n) {
  void *(*const *t)(size_t) = ro_tab;
  __asm__("" : "+r"(t)); /* the compiler no longer knows what t[0] holds */
  return t[0](n);
}
