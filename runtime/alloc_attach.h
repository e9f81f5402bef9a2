/*
 * alloc_attach — the malloc family and operator new/delete for a process
 * heapprof was attached to (dlopen'ed late, then its modules' GOT slots
 * patched: got.h). The preload functions (alloc_api.c, cxx.c) stay as they
 * are; the GOTs point here instead.
 *
 * The same sampling as preload mode — the same countdown, decision, stats
 * counts, labels, buckets and in-use accounting (alloc_sampled.h) — but a
 * sampled block is the next allocator's own block, unchanged: no header,
 * no offset. It is known by its bit in the sampled map and its record in
 * the side table (sidetable.h). So a block may be freed by a path that
 * bypasses heapprof (a function pointer taken before the attach, a free
 * after the detach) without harm to the program: its record goes stale,
 * an accounting error that the next record at that address repairs.
 *
 * The next allocator is the program's own binding, dlsym(RTLD_DEFAULT)
 * from a library loaded RTLD_LOCAL (alloc_attach_resolve), never
 * RTLD_NEXT, which finds glibc's malloc under a program linked with
 * jemalloc (research §0.2).
 */
#ifndef HEAPPROF_ALLOC_ATTACH_H
#define HEAPPROF_ALLOC_ATTACH_H

#include <stddef.h>

#include "got.h"

/*
 * Fills the next-allocator table (alloc_next.h) and every hook's
 * `original` with dlsym(RTLD_DEFAULT, name), which from a library loaded
 * RTLD_LOCAL is the program's binding. Call before any patching, on a
 * thread that holds no allocator lock; dlsym may allocate (through the
 * program's malloc, not yet patched). A name the program does not bind
 * (operator new in a C program), or that resolves to heapprof itself,
 * gets original NULL: such a hook must not be patched.
 * 0, or -1 with errno: EBUSY when malloc or free resolves to heapprof
 * itself (heapprof was preloaded or linked: not a late load), ENOENT when
 * one of the malloc family is not found at all. On -1 nothing was changed.
 */
int alloc_attach_resolve(void);

/* The program's binding of `name` (dlsym(RTLD_DEFAULT), NULL if it is
 * heapprof's own). With `alias` NULL: the function to call. Otherwise:
 * what the program's slots hold, and in *alias the definition behind it
 * when that is a non-PIE executable's canonical PLT stub (else NULL) —
 * got_hook_t's original and alias. */
void *alloc_attach_binding(const char *name, void **alias);

/*
 * name → attach_* replacement → original, for got_patch: the free family
 * first (free, realloc, reallocarray, the 12 operator deletes), then the
 * allocating functions (malloc, calloc, the aligned ones, the 8 operator
 * news). Not const: alloc_attach_resolve fills `original`.
 * malloc_usable_size is not in it: blocks are unchanged, so the program's
 * own binding answers for every block, and its slots stay as they are.
 */
extern got_hook_t alloc_attach_hooks[];
extern const size_t alloc_attach_nhooks;
/* How many of the hooks, from the first, are the free family. */
extern const size_t alloc_attach_nfree_hooks;

/* At detach, after the slots are restored: every live record dropped (its
 * bucket counts the block as freed) and its map bit cleared, because the
 * program's allocator now frees those blocks without heapprof. Records
 * made meanwhile by threads still inside an attach_* function may stay
 * (an accounting error, never a crash). */
void alloc_attach_forget(void);

/* The replacements (hidden): what the patched slots call. */
void *attach_malloc(size_t n);
void attach_free(void *p);
void *attach_calloc(size_t c, size_t n);
void *attach_realloc(void *p, size_t n);
void *attach_reallocarray(void *p, size_t c, size_t n);
int attach_posix_memalign(void **out, size_t align, size_t n);
void *attach_aligned_alloc(size_t align, size_t n);
void *attach_memalign(size_t align, size_t n);
void *attach_valloc(size_t n);
void *attach_pvalloc(size_t n);
size_t attach_malloc_usable_size(void *p);

/* Test seam — for tests only, not part of heapprof's API (heapprof.h).
 * attach_* are hidden; a test that dlopens the library (as an attach
 * does) calls them through this, without patching a GOT. Exported as
 * heapprof__test_attach_seam. */
typedef struct alloc_attach_seam {
  got_hook_t *hooks; /* alloc_attach_hooks */
  size_t nhooks;
  int (*resolve)(void);
  void (*forget)(void);
  size_t (*usable_size)(void *); /* attach_malloc_usable_size */
  size_t (*records)(void);       /* sidetable_count */
  int (*begin)(void);            /* sampling on as an attach turns it on,
                                    settings from the test's environment,
                                    no slot patched */
} alloc_attach_seam_t;

#endif /* HEAPPROF_ALLOC_ATTACH_H */
