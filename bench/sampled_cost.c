/*
 * sampled_cost — what one sampled allocation costs (stack capture + bucket
 * lookup + live record, and the free that settles it), at stack depths 10,
 * 30 and 60. Linked with -lheapprof: each depth is timed at rate 0 (never
 * sampled) and rate 1 (always sampled) in alternation; the difference per
 * malloc+free pair is the sampled path's cost. Prints medians of 9 rounds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "heapprof.h"

#define N 200000
#define ROUNDS 9

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A volatile pointer: without it the compiler deletes malloc/free pairs. */
static void *volatile sink;

static __attribute__((noipa)) double leaf(void) {
  double a = now();
  for (int i = 0; i < N; i++) {
    sink = malloc(64 + (size_t)(i & 7) * 8);
    free(sink);
  }
  return (now() - a) / N * 1e9;
}

static __attribute__((noipa)) double deep(int depth) {
  if (depth > 1) {
    double r = deep(depth - 1);
    __asm__ volatile("" ::: "memory"); /* no tail call: a real frame */
    return r;
  }
  return leaf();
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(void) {
  static const int depths[] = {10, 30, 60};
  printf("%-6s %14s %14s %14s\n", "depth", "rate 0 ns/pair", "rate 1 ns/pair",
         "sampled cost");
  for (int d = 0; d < 3; d++) {
    double off[ROUNDS], on[ROUNDS], diff[ROUNDS];
    heapprof_set_rate(1);
    deep(depths[d]); /* warm: buckets exist, unwinder caches filled */
    for (int r = 0; r < ROUNDS; r++) {
      heapprof_set_rate(0);
      off[r] = deep(depths[d]);
      heapprof_set_rate(1);
      on[r] = deep(depths[d]);
      diff[r] = on[r] - off[r];
    }
    qsort(off, ROUNDS, sizeof *off, cmp);
    qsort(on, ROUNDS, sizeof *on, cmp);
    qsort(diff, ROUNDS, sizeof *diff, cmp);
    printf("%-6d %14.1f %14.1f %11.1f ns\n", depths[d], off[ROUNDS / 2],
           on[ROUNDS / 2], diff[ROUNDS / 2]);
  }
  return 0;
}
