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

#include "../profile/buckets.h"

/* Room for the profiler's own leading frames, unwound and then cut. */
#define STACK_OWN_MAX 8

/* Learns the code ranges of the library and of libunwind. Call once,
 * early. */
void stack_init(void);

/* Copies the `n` frames of `raw` after the profiler's leading ones, up to
 * `max`, into `pcs`; returns how many. */
int stack_trim(void *const *raw, int n, uintptr_t *pcs, int max);

/* libunwind's validation pipe (its own static array, learned from its
 * pipe2 call) and the unwinds under way: the last one out closes the pipe
 * (stack.c). */
extern int *stack_pipe __attribute__((visibility("hidden")));
extern int stack_unwinding __attribute__((visibility("hidden")));
void stack_close_pipe(void);

/* In a forked child: only the forking thread came along. */
void stack_fork_child(void);

/* Fills up to `max` frames; returns how many. Never takes a profiler lock.
 * Always inlined: every frame of the profiler's own is one more for
 * libunwind to step through (≈ 70 instructions each) and then throw away,
 * so the unwinding starts in the slow path that decided to sample. */
static inline __attribute__((always_inline)) int stack_capture(uintptr_t *pcs,
                                                               int max) {
  void *raw[BUCKET_MAX_FRAMES + STACK_OWN_MAX];
  if (max > BUCKET_MAX_FRAMES)
    max = BUCKET_MAX_FRAMES;
  __atomic_add_fetch(&stack_unwinding, 1, __ATOMIC_ACQ_REL);
  int n = unw_backtrace(raw, max + STACK_OWN_MAX);
  if (__atomic_sub_fetch(&stack_unwinding, 1, __ATOMIC_ACQ_REL) == 0 &&
      __builtin_expect(stack_pipe != NULL && stack_pipe[0] >= 0, 0))
    stack_close_pipe();
  return stack_trim(raw, n, pcs, max);
}

#endif /* HEAPPROF_STACK_H */
