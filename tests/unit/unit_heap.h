/*
 * unit_heap — the C library's allocator as profile/'s prof_alloc_t, for
 * unit tests and fuzzers that need no counting (test_pprof counts).
 */
#ifndef HEAPPROF_UNIT_HEAP_H
#define HEAPPROF_UNIT_HEAP_H

#include <stdlib.h>

#include "alloc.h"

__attribute__((unused)) static void *unit_heap_realloc(void *ctx, void *p, size_t old_size,
                               size_t new_size) {
  (void)ctx, (void)old_size;
  if (new_size == 0) {
    free(p);
    return NULL;
  }
  return realloc(p, new_size);
}

static const prof_alloc_t unit_heap = {unit_heap_realloc, NULL};

/* Memory for buckets (bucket_set_memory): zeroed, aligned, never freed. */
__attribute__((unused)) static void *unit_permanent(size_t bytes) {
  void *p = NULL;
  if (posix_memalign(&p, 64, bytes) != 0)
    return NULL;
  __builtin_memset(p, 0, bytes);
  return p;
}

#endif /* HEAPPROF_UNIT_HEAP_H */
