/*
 * pprof — turns bucket counters into a pprof Profile message shaped exactly
 * like Go's heap profile: sample types alloc_objects/count,
 * alloc_space/bytes, inuse_objects/count, inuse_space/bytes; period type
 * space/bytes; one sample per bucket with a numeric label "bytes".
 */
#ifndef HEAPPROF_PPROF_H
#define HEAPPROF_PPROF_H

#include <stddef.h>
#include <stdint.h>

#include "buckets.h"
#include "symbols.h"

typedef struct pprof_options {
  int64_t rate;           /* the period written (each bucket is un-sampled
                             by the rate its own samples were taken at) */
  int allocs_view;        /* nonzero: default_sample_type = alloc_space */
  int64_t time_nanos;     /* when the profile was taken */
  int64_t duration_nanos; /* 0 unless a delta profile */
  const char *const *comments;
  size_t ncomments;
  /* A delta profile (Go's ?seconds=N): counts taken earlier, subtracted
   * bucket by bucket; a bucket missing from base counts from zero. */
  const bucket_count_t *base;
  size_t nbase;
} pprof_options_t;

/* Un-sampled (objects, bytes) for `count` sampled objects of `size` bytes
 * each, as Go's scaleHeapSample computes them. */
void pprof_unsample(uint64_t count, uint64_t size, int64_t rate,
                    int64_t *objects, int64_t *bytes);

/* The un-sampled in-use (objects, bytes) of one bucket count, weighted by
 * the rate its bucket's samples were taken at, exactly as the profile
 * shows it; and the same summed over `n` counts. */
void pprof_inuse(const bucket_count_t *c, int64_t *objects, int64_t *bytes);
void pprof_inuse_total(const bucket_count_t *counts, size_t n,
                       int64_t *objects, int64_t *bytes);

/*
 * Encodes a profile of `n` bucket counts. `syms` may be NULL: locations
 * then carry addresses only. On success returns 0 and a malloc'd buffer of
 * the serialised (not gzipped) message; -1 when out of memory.
 */
int pprof_encode(const bucket_count_t *counts, size_t n, symbols_t *syms,
                 const pprof_options_t *opt, uint8_t **out, size_t *len);

/*
 * Go's legacy text heap format (/debug/pprof/heap?debug=1): a header with
 * totals and 2·rate, one line per bucket with raw sampled counts and its
 * return addresses, '#' lines naming each frame, and the process's memory
 * map so that pprof can find the binaries. A malloc'd NUL-terminated
 * string, or NULL when out of memory. `syms` may be NULL.
 */
char *pprof_text(const bucket_count_t *counts, size_t n, symbols_t *syms,
                 int64_t rate, size_t *len);

#endif /* HEAPPROF_PPROF_H */
