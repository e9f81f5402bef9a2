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

/* Learns the library's own code range and warms the unwinder up (its
 * first use allocates and takes the loader lock). Call once, early. */
void stack_init(void);

/* Fills up to `max` frames; returns how many. Never takes a profiler lock. */
int stack_capture(uintptr_t *pcs, int max);

#endif /* HEAPPROF_STACK_H */
