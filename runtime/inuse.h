/*
 * inuse — the in-use estimate and the high-water mark, fed by the sampled
 * slow path.
 *
 * While a trigger reads it (growth, peak, leak watch), each sampled
 * allocation and free moves an atomic estimate by the object's un-sampled
 * weight and compares it with one threshold; otherwise a sample pays
 * nothing here.
 */
#ifndef HEAPPROF_INUSE_H
#define HEAPPROF_INUSE_H

#include <stdint.h>

#include "buckets.h"

/* Turns tracking on for what is configured: a growth step of `growth`
 * bytes (0: off) calls on_growth, from the allocating thread, which must
 * only post a wake-up; `peak` keeps the counts at each new high-water
 * mark; `watch` (leak watch) only reads the estimate. Once, at start-up. */
void inuse_start(int64_t growth, int peak, int watch, void (*on_growth)(void));

/* A sampled object of `size` bytes, taken at `rate`, was allocated (+1)
 * or freed (-1). */
void inuse_note(uint64_t size, int64_t rate, int sign);

/* Bucket `b` is about to change: with peak tracking on, its counters are
 * kept as they stood at the mark (O(1), once per bucket and mark). */
void inuse_keep(bucket_t *b);

/* The estimate in bytes, as the heap profile would show it; 0 unless a
 * trigger tracks it. */
int64_t inuse_bytes(void);

/* The keeping epoch of the high-water mark (for bucket_snapshot), 0 while
 * there is none; its estimate in *bytes when that is not NULL. */
uint32_t inuse_peak_epoch(int64_t *bytes);

void inuse_fork_prepare(void);
void inuse_fork_parent(void);
void inuse_fork_child(void);

#endif /* HEAPPROF_INUSE_H */
