/*
 * pprof — turns bucket counters into a pprof profile shaped exactly like
 * Go's heap profile: sample types alloc_objects/count, alloc_space/bytes,
 * inuse_objects/count, inuse_space/bytes; period type space/bytes; one
 * sample per bucket with a numeric label "bytes", and a labelled bucket's
 * labels (labels.h) as string labels. The profile is streamed
 * into a sink (sink.h) as it is made, gzipped, in chunks of a few KiB: the
 * encoder's memory grows with the distinct locations, functions and
 * strings, never with the number of buckets.
 */
#ifndef HEAPPROF_PPROF_H
#define HEAPPROF_PPROF_H

#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "buckets.h"
#include "sink.h"
#include "symtab.h"

typedef struct pprof_options {
  int64_t rate;           /* the period written (each bucket is un-sampled
                             by the rate its own samples were taken at) */
  int allocs_view;        /* nonzero: default_sample_type = alloc_space */
  int64_t time_nanos;     /* when the profile was taken */
  int64_t duration_nanos; /* 0 unless a delta profile */
  const char *const *comments;
  size_t ncomments;
  /* A delta profile (Go's ?seconds=N): counts taken earlier, subtracted
   * bucket by bucket; a bucket missing from base counts from zero. With
   * `inuse_absolute` (godeltaprof's delta_heap) only the alloc_* values
   * are differences and inuse_* stay as they are now. */
  const bucket_count_t *base;
  size_t nbase;
  int inuse_absolute;
  const prof_alloc_t *alloc; /* its working memory (alloc.h); required:
                                 zlib's state goes through it too */
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
 * Streams the gzipped profile of `n` bucket counts into `out`. `syms` may
 * be NULL: locations then carry addresses only; otherwise its strings must
 * stay valid until the call returns (symtab.h), as must
 * opt->comments. Working memory: ~290 KiB to start (zlib's deflate state
 * and 12 KiB of buffers), then 60–100 bytes per distinct location,
 * function and string (a map's slots at most half full, and briefly two
 * maps while one doubles): 680 KiB in all for 4,096 locations, however
 * many buckets. Nothing per bucket (a label set's encoded labels are kept
 * once per set), except for a delta whose base is not
 * in the order bucket_snapshot gives (an index of the base). Returns 0,
 * or -1 with errno ENOMEM or the sink's errno; nothing is left allocated
 * either way (the sink may hold part of the profile).
 */
int pprof_write_gzip(const bucket_count_t *counts, size_t n,
                     const prof_symtab_t *syms,
                     const pprof_options_t *opt, const pprof_sink_t *out);

/*
 * Go's legacy text heap format (/debug/pprof/heap?debug=1), streamed (not
 * gzipped) into `out`: a header with totals and 2·rate, one line per
 * bucket with sampled counts and its return addresses, '#' lines naming
 * each frame, and the process's memory map so that pprof can find the
 * binaries. A bucket taken at another rate than `rate` gets its counts
 * converted (see the comment at text_counts in pprof.c). `syms` may be
 * NULL. No heap memory is used. 0, or -1 with the sink's errno.
 */
int pprof_write_text(const bucket_count_t *counts, size_t n,
                     const prof_symtab_t *syms,
                     int64_t rate, const pprof_sink_t *out);

#endif /* HEAPPROF_PPROF_H */
