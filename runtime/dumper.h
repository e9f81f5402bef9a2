/*
 * dumper — the thread that writes profiles, and what wakes it: the dump
 * signal, a timer (HEAPPROF_INTERVAL), growth of the in-use estimate
 * (HEAPPROF_GROWTH), and the high-water mark (HEAPPROF_PEAK), whose
 * profile it keeps.
 *
 * The allocation path feeds it only from the sampled slow path: while a
 * trigger that reads it is configured (growth, peak, leak watch), each
 * sampled allocation and free moves an atomic in-use estimate by the
 * object's un-sampled weight and compares it with one threshold.
 */
#ifndef HEAPPROF_DUMPER_H
#define HEAPPROF_DUMPER_H

#include <stddef.h>
#include <stdint.h>

#include "../profile/buckets.h"
#include "config.h"

/* Starts the thread (if any trigger needs it) and installs the signal.
 * -1 with errno when the thread cannot start. */
int dumper_start(const hp_config_t *cfg);

/* A sampled object of `size` bytes was allocated (+1) or freed (-1). */
void dumper_note(uint64_t size, int64_t rate, int sign);

/* The in-use estimate in bytes, as the heap profile would show it; kept
 * only while growth, peak or leak watch is on (else 0). */
int64_t dumper_inuse(void);

/* A copy of the bucket counts at the high-water mark (malloc'd, the
 * caller frees). 0, or -1 when peak tracking is off or nothing was kept. */
int dumper_peak(bucket_count_t **out, size_t *n, int64_t *peak_bytes);

/* Set in a forked child whose parent had a dump thread: the child's first
 * allocation starts its own (dumper_restart), so that a child that only
 * execs never pays for a thread. */
extern _Atomic int dumper_restart_pending;
void dumper_restart(void);

void dumper_fork_prepare(void);
void dumper_fork_parent(void);
void dumper_fork_child(void);

#endif /* HEAPPROF_DUMPER_H */
