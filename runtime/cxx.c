/*
 * cxx — C++'s operator new and delete, routed through the malloc family.
 *
 * libstdc++'s operator new calls malloc, so under glibc heapprof would see
 * it anyway; but jemalloc and tcmalloc define their own operator new that
 * goes straight to their allocator, and C++ allocations then vanished from
 * profiles. Exporting the whole family here (heapprof comes first in the
 * lookup order) sends every new through malloc/aligned_alloc and every
 * delete through free, whatever allocator lies beneath; our frames are
 * trimmed from stacks like malloc's, so the leaf is the code that said new.
 *
 * On failure, C++ requires the new_handler loop and std::bad_alloc, which C
 * cannot raise: the call is handed to the next operator new in the lookup
 * order (libstdc++'s, or the allocator's), which retries and throws. The
 * nothrow forms return NULL after the same hand-over.
 *
 * Names are the Itanium ABI's for x86-64 (size_t is `m`).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef HEAPPROF_EXPORT
#error "HEAPPROF_EXPORT is defined by CMake (target_compile_definitions)"
#endif

typedef void *(*new_fn)(size_t);
typedef void *(*new_aligned_fn)(size_t, size_t);

/* The next operator `name` (resolved on the rare failure path only). */
static void *next_op(const char *name) {
  void *f = dlsym(RTLD_NEXT, name);
  if (f == NULL) {
    static const char msg[] =
        "heapprof: out of memory in operator new, and no C++ runtime after "
        "heapprof to report it; aborting\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
    abort();
  }
  return f;
}

static void *plain_new(size_t n, const char *next_name) {
  void *p = malloc(n);
  return p != NULL ? p : ((new_fn)next_op(next_name))(n);
}

static void *aligned_new(size_t n, size_t align, const char *next_name) {
  void *p = NULL;
  if (posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align,
                     n ? n : 1) == 0)
    return p;
  return ((new_aligned_fn)next_op(next_name))(n, align);
}

/* The nothrow forms: NULL on failure, after the next one's own attempt
 * (which runs the new_handler loop and does not throw). */
static void *plain_new_nothrow(size_t n, const void *tag, const char *next_name) {
  void *p = malloc(n);
  return p != NULL ? p
                   : ((void *(*)(size_t, const void *))next_op(next_name))(n, tag);
}

static void *aligned_new_nothrow(size_t n, size_t align, const void *tag,
                                 const char *next_name) {
  void *p = NULL;
  if (posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align,
                     n ? n : 1) == 0)
    return p;
  return ((void *(*)(size_t, size_t, const void *))next_op(next_name))(n, align, tag);
}

#define NEW(sym) HEAPPROF_EXPORT void *sym(size_t n)
NEW(_Znwm) { return plain_new(n, "_Znwm"); }
NEW(_Znam) { return plain_new(n, "_Znam"); }

HEAPPROF_EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const void *t) {
  return plain_new_nothrow(n, t, "_ZnwmRKSt9nothrow_t");
}
HEAPPROF_EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const void *t) {
  return plain_new_nothrow(n, t, "_ZnamRKSt9nothrow_t");
}
HEAPPROF_EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t a) {
  return aligned_new(n, a, "_ZnwmSt11align_val_t");
}
HEAPPROF_EXPORT void *_ZnamSt11align_val_t(size_t n, size_t a) {
  return aligned_new(n, a, "_ZnamSt11align_val_t");
}
HEAPPROF_EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t a,
                                                         const void *t) {
  return aligned_new_nothrow(n, a, t, "_ZnwmSt11align_val_tRKSt9nothrow_t");
}
HEAPPROF_EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t a,
                                                         const void *t) {
  return aligned_new_nothrow(n, a, t, "_ZnamSt11align_val_tRKSt9nothrow_t");
}

/* Every delete is a free: sizes and alignments are not needed by free. */
HEAPPROF_EXPORT void _ZdlPv(void *p) { free(p); }
HEAPPROF_EXPORT void _ZdaPv(void *p) { free(p); }
HEAPPROF_EXPORT void _ZdlPvm(void *p, size_t n) { (void)n, free(p); }
HEAPPROF_EXPORT void _ZdaPvm(void *p, size_t n) { (void)n, free(p); }
HEAPPROF_EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const void *t) { (void)t, free(p); }
HEAPPROF_EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const void *t) { (void)t, free(p); }
HEAPPROF_EXPORT void _ZdlPvSt11align_val_t(void *p, size_t a) { (void)a, free(p); }
HEAPPROF_EXPORT void _ZdaPvSt11align_val_t(void *p, size_t a) { (void)a, free(p); }
HEAPPROF_EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t a) {
  (void)n, (void)a, free(p);
}
HEAPPROF_EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t a) {
  (void)n, (void)a, free(p);
}
HEAPPROF_EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a,
                                                         const void *t) {
  (void)a, (void)t, free(p);
}
HEAPPROF_EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a,
                                                         const void *t) {
  (void)a, (void)t, free(p);
}
