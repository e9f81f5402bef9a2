/*
 * stats — runtime statistics in the spirit of Go's runtime.ReadMemStats:
 * exact allocation counts summed over threads, the allocator's own view of
 * the heap, and the profiler's estimate and bookkeeping.
 */
#ifndef HEAPPROF_STATS_H
#define HEAPPROF_STATS_H

#include "heapprof.h"
#include "thread.h"

/* Finds the allocator's statistics call. Once, at start-up. */
void stats_init(void);

/* Adds thread `t` to the registry (its counts are summed from then on, and
 * folded into the totals when it exits). Once per thread, from the slow
 * path, with t->busy set. */
void stats_thread_register(hp_thread_t *t);

/* Fills `s` (heapprof.h): the counts summed over every thread, the
 * allocator's view, and the profiler's own — which snapshots every bucket
 * to un-sample the in-use estimate, so it costs O(buckets). 0, or -1 with
 * errno EINVAL. */
int stats_read(heapprof_stats_t *s);

void stats_fork_prepare(void);
void stats_fork_parent(void);
void stats_fork_child(void);

#endif /* HEAPPROF_STATS_H */
