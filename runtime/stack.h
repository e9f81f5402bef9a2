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

#include <stdatomic.h>

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

/*
 * The loader gate. heapprof's own calls that take the loader's lock
 * (libunwind's dl_iterate_phdr while unwinding, the symbolizer's refresh)
 * pass it, so that fork never happens while one of them holds that lock:
 * a child inherits it held, nothing there will release it, and the
 * child's first sampled allocation would hang in dl_iterate_phdr with
 * every signal blocked (libunwind blocks them around it). fork's prepare
 * handler closes the gate and waits, 100 ms at most, for the calls inside
 * to leave; new ones wait for the fork. (A dlopen of the program's own in
 * progress at fork time cannot be waited for: RELIABILITY.md.)
 */
extern _Atomic int stack_gate_closed __attribute__((visibility("hidden")));
extern _Atomic int stack_gate_inside __attribute__((visibility("hidden")));
extern __thread int stack_gate_here
    __attribute__((tls_model("initial-exec"), visibility("hidden")));
void stack_loader_wait(void);

static inline void stack_loader_enter(void) {
  if (__builtin_expect(atomic_load_explicit(&stack_gate_closed,
                                            memory_order_acquire), 0))
    stack_loader_wait();
  atomic_fetch_add(&stack_gate_inside, 1);
  if (__builtin_expect(atomic_load(&stack_gate_closed), 0)) {
    atomic_fetch_sub(&stack_gate_inside, 1); /* the fork came first */
    stack_loader_enter();
    return;
  }
  stack_gate_here++;
}

static inline void stack_loader_leave(void) {
  stack_gate_here--;
  atomic_fetch_sub_explicit(&stack_gate_inside, 1, memory_order_release);
}

void stack_fork_prepare(void);
void stack_fork_parent(void);
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
  stack_loader_enter();
  int n = unw_backtrace(raw, max + STACK_OWN_MAX);
  stack_loader_leave();
  return stack_trim(raw, n, pcs, max);
}

#endif /* HEAPPROF_STACK_H */
