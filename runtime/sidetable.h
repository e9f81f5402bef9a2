/*
 * sidetable — attach mode's record of sampled blocks: address → bucket.
 *
 * In attach mode a sampled block is the next allocator's block unchanged
 * (no header: research §0.4), so what preload mode keeps in the header
 * lives here, keyed by the block's address, for sampled blocks only. Each
 * record goes with the block's bare bit in the sampled map (sampled.h),
 * which this module alone sets and clears in attach mode: free asks the
 * map (its page filter, then the bit), lock-free and inline, and only a
 * set bit brings it here.
 *
 * Every operation is lock-free and allocates only from the arena (mmap):
 * a signal handler, fork's handlers and a thread inside heapprof may all
 * call it, and fork needs no handler of its own (sidetable.c says why).
 *
 * A record can go stale: the program frees a sampled block by a way that
 * bypasses heapprof (a function pointer taken before the attach, a free
 * after the detach), and the allocator hands the address out again. A
 * stale record is never a crash, only an accounting delay: the next record
 * put at that address, or the next take of it (the free of whatever block
 * lives there then), takes it out, and its bucket counts the block freed.
 */
#ifndef HEAPPROF_SIDETABLE_H
#define HEAPPROF_SIDETABLE_H

#include <stddef.h>

#include "buckets.h"

/* Records sampled block `p` of bucket `b` and sets its bit. A record
 * already at `p` (stale; it has its bit, so it is looked for only when
 * the bit is set) is taken out first and its bucket returned in *stale
 * (else NULL): the caller counts it freed. 0, or -1 when there is no
 * memory for the record or the bit (nothing recorded; *stale still says
 * what was taken out). */
int sidetable_put(void *p, bucket_t *b, bucket_t **stale);

/* Takes `p`'s record out and clears its bit: its bucket, or NULL if `p`
 * has no record (its bit is cleared all the same). */
bucket_t *sidetable_take(void *p);

/* A record held out of the table while realloc runs: its address is
 * free for the allocator to hand out meanwhile (the bit is cleared), but
 * the record can be put back without a chance of failing. */
typedef struct sidetable_hold {
  void *slot; /* NULL: nothing held */
  void *p;
  bucket_t *bucket;
} sidetable_hold_t;

/* Like sidetable_take, but keeps the record's slot for
 * sidetable_release. Returns h->bucket (NULL if `p` has no record). */
bucket_t *sidetable_hold(void *p, sidetable_hold_t *h);

/* Ends a hold: `restore` puts the record (and its bit) back as it was;
 * otherwise its slot is given up. Never fails. */
void sidetable_release(sidetable_hold_t *h, int restore);

/* Takes every record out (detach), clearing their bits, and calls
 * `freed` with each one's bucket. Records put meanwhile may stay. */
void sidetable_forget(void (*freed)(bucket_t *b));

/* Records in the table now (a walk: for tests and diagnostics). */
size_t sidetable_count(void);

#endif /* HEAPPROF_SIDETABLE_H */
