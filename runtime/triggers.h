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

/* Installs the dump signal and arms the dump thread's start at the first
 * sample, if any trigger needs the thread. */
void dumper_start(const hp_config_t *cfg);

/* Finds the sigaction and signal heapprof's own forward to, so that no
 * program call (sigaction is async-signal-safe) runs dlsym. At start-up,
 * whatever the rate. */
void dumper_resolve(void);

/* Bucket `b` is about to change: with HEAPPROF_PEAK on, its counters are
 * kept as they stood at the mark (O(1), once per bucket and mark). */
void dumper_keep(bucket_t *b);

/* A sampled object of `size` bytes was allocated (+1) or freed (-1). */
void dumper_note(uint64_t size, int64_t rate, int sign);

/* The in-use estimate in bytes, as the heap profile would show it; kept
 * only while growth, peak or leak watch is on (else 0). */
int64_t dumper_inuse(void);

/* A copy of the bucket counts at the high-water mark (malloc'd, the
 * caller frees). 0, or -1 when peak tracking is off or nothing was kept. */
int dumper_peak(bucket_count_t **out, size_t *n, int64_t *peak_bytes);

/* Set while the dump thread is wanted but not started: the next sample
 * (should_sample, on a program thread) starts it with
 * dumper_start_thread. In a forked child too, so that a child that only
 * execs never pays for a thread. */
extern _Atomic int dumper_start_pending;
void dumper_start_thread(void);

/* Ends the dump thread (after the dump in progress) and arms its start at
 * the next sample: 1 if there was one. For a program that must be
 * single-threaded for a moment (control.c's unshare). */
int dumper_stop_thread(void);

void dumper_fork_prepare(void);
void dumper_fork_parent(void);
void dumper_fork_child(void);

#endif /* HEAPPROF_DUMPER_H */
