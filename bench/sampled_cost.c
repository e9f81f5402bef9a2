/*
 * sampled_cost — what one sampled allocation costs (stack capture + bucket
 * lookup + live record, and the free that settles it), at stack depths 10,
 * 30 and 60, and what labels add to it. Linked with -lheapprof: each depth
 * is timed at rate 0 (never sampled), rate 1 (always sampled) and rate 1
 * with 4 labels pushed (heapprof_label_push), in alternation; the
 * difference per malloc+free pair between rate 1 and rate 0 is the sampled
 * path's cost, and between rate 1 with and without labels what labels add
 * to each sample. Prints medians of 9 rounds, or of ROUNDS (`sampled_cost
 * ROUNDS`; each difference is taken within a round, then its median).
 *
 * `sampled_cost --once DEPTH LABELS PAIRS` instead makes PAIRS pairs at
 * rate 1 under LABELS labels (0..4) at DEPTH, after a warm-up run, for
 * callgrind: `--toggle-collect=measured` counts the instructions of those
 * pairs alone (the buckets exist by then), so that two runs that differ
 * only in LABELS give the labels' instructions per sample.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heapprof.h"

#define N 200000
#define ROUNDS_MAX 101

static int rounds = 9; /* `sampled_cost ROUNDS` for more */

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A volatile pointer: without it the compiler deletes malloc/free pairs. */
static void *volatile sink;

static __attribute__((noipa)) double leaf(long n) {
  double a = now();
  for (long i = 0; i < n; i++) {
    sink = malloc(64 + (size_t)(i & 7) * 8);
    free(sink);
  }
  return (now() - a) / (double)n * 1e9;
}

static __attribute__((noipa)) double deep(int depth, long n) {
  if (depth > 1) {
    double r = deep(depth - 1, n);
    __asm__ volatile("" ::: "memory"); /* no tail call: a real frame */
    return r;
  }
  return leaf(n);
}

/* The labels of a request, as a service would push them: 4 labels of
 * realistic lengths (alloc_bench's ALLOC_BENCH_LABELS=4 pushes the same). */
static const char *const keys[4] = {"tenant", "endpoint", "region", "subsystem"};
static const char *const values[4] = {"tenant-0", "/api/v1/orders", "eu-west-1", "cache"};

static void push_labels(int n) {
  for (int i = 0; i < n; i++) {
    int rc = heapprof_label_push(keys[i], values[i]);
    if (rc != 0) {
      fprintf(stderr, "sampled_cost: heapprof_label_push: %s\n", heapprof_strerror(rc));
      exit(1);
    }
  }
}

static void pop_labels(int n) {
  for (int i = 0; i < n; i++)
    heapprof_label_pop();
}

/* Rate 1, `labels` labels pushed around the run. */
static double labelled(int depth, int labels, long n) {
  push_labels(labels);
  double r = deep(depth, n);
  pop_labels(labels);
  return r;
}

/* The pairs callgrind counts (--once). The result is kept so that the
 * call to deep is never a tail call: with no labels to pop it would be,
 * and the stack one frame shorter than with labels. */
static volatile double kept;

static __attribute__((noipa)) void measured(int depth, int labels, long n) {
  kept = labelled(depth, labels, n);
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v) {
  qsort(v, (size_t)rounds, sizeof *v, cmp);
  return v[rounds / 2];
}

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "--once") == 0) {
    int depth = atoi(argv[2]), labels = atoi(argv[3]);
    long pairs = atol(argv[4]);
    if (depth < 1 || labels < 0 || labels > 4 || pairs < 1) {
      fprintf(stderr, "usage: sampled_cost --once DEPTH(>=1) LABELS(0..4) PAIRS\n");
      return 2;
    }
    heapprof_set_rate(1);
    labelled(depth, labels, 8); /* warm: the buckets exist */
    measured(depth, labels, pairs);
    return 0;
  }
  if (argc > 2 || (argc == 2 && ((rounds = atoi(argv[1])) < 1 || rounds > ROUNDS_MAX))) {
    fprintf(stderr, "usage: sampled_cost [ROUNDS(1..%d)] | sampled_cost --once DEPTH "
                    "LABELS PAIRS\n", ROUNDS_MAX);
    return 2;
  }
  static const int depths[] = {10, 30, 60};
  printf("%-6s %14s %14s %17s %14s %14s\n", "depth", "rate 0 ns/pair", "rate 1 ns/pair",
         "4 labels ns/pair", "sampled cost", "label cost");
  for (int d = 0; d < 3; d++) {
    double off[ROUNDS_MAX], on[ROUNDS_MAX], lab[ROUNDS_MAX], diff[ROUNDS_MAX],
        ldiff[ROUNDS_MAX];
    heapprof_set_rate(1);
    labelled(depths[d], 0, N); /* warm: buckets exist, unwinder caches filled */
    labelled(depths[d], 4, N);
    for (int r = 0; r < rounds; r++) {
      heapprof_set_rate(0);
      off[r] = labelled(depths[d], 0, N);
      heapprof_set_rate(1);
      if (r % 2 == 0) { /* either order half the time: neither gains by it */
        on[r] = labelled(depths[d], 0, N);
        lab[r] = labelled(depths[d], 4, N);
      } else {
        lab[r] = labelled(depths[d], 4, N);
        on[r] = labelled(depths[d], 0, N);
      }
      diff[r] = on[r] - off[r];
      ldiff[r] = lab[r] - on[r];
    }
    /* The medians of off/on/lab, then of the per-round differences. */
    double m_off = median(off), m_on = median(on), m_lab = median(lab);
    printf("%-6d %14.1f %14.1f %17.1f %11.1f ns %11.1f ns\n", depths[d], m_off, m_on,
           m_lab, median(diff), median(ldiff));
  }
  return 0;
}
