/*
 * stack — captures the call stack of a sampled allocation.
 *
 * The profiler's own frames are trimmed, so pcs[0] is the return address
 * into the function that called malloc (or operator new, which pprof.c
 * trims by name). Addresses are return addresses, leaf first.
 */
#ifndef HEAPPROF_STACK_H
#define HEAPPROF_STACK_H

#include <stdint.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "buckets.h"

/* Room for the profiler's own leading frames, unwound and then cut. */
#define STACK_OWN_MAX 8

/* Finds the functions heapprof's pipe2, read and syscall forward to, so
 * that no program call of them (read is async-signal-safe) runs dlsym.
 * Call at start-up, whatever the rate. */
void stack_resolve(void);

/* Learns the code ranges of the library and of libunwind. Call once,
 * early. */
void stack_init(void);

/* Copies the `n` frames of `raw` after the profiler's leading ones, up to
 * `max`, into `pcs`; returns how many. */
int stack_trim(void *const *raw, int n, uintptr_t *pcs, int max);

/* Fills up to `max` frames; returns how many. Never takes a profiler lock.
 * Always inlined: every frame of the profiler's own is one more for
 * libunwind to step through (≈ 70 instructions each) and then throw away,
 * so the unwinding starts in the slow path that decided to sample. */
static inline __attribute__((always_inline)) int stack_capture(uintptr_t *pcs,
                                                               int max) {
  void *raw[BUCKET_MAX_FRAMES + STACK_OWN_MAX];
  if (max > BUCKET_MAX_FRAMES)
    max = BUCKET_MAX_FRAMES;
  return stack_trim(raw, unw_backtrace(raw, max + STACK_OWN_MAX), pcs, max);
}

#endif /* HEAPPROF_STACK_H */
