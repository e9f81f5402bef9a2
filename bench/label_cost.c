/*
 * label_cost — what heapprof's label calls cost the thread that makes
 * them, and what labelled buckets cost a profile write. Linked with
 * -lheapprof.
 *
 * `label_cost [HITS]` prints the calls' table, ns per operation:
 *   - hits (the node for the push exists, the common case: a service's
 *     few tenants or endpoints): push+pop of one label on none, of a 4th
 *     label on 3, a request's 4 pushes and 4 pops, and a save/restore
 *     pair (a request handed to a worker); loops of HITS (1M), median
 *     of 9 (under callgrind, each hit function's inclusive instructions
 *     over 10 × HITS are the instructions per operation);
 *   - misses (the first time any thread makes this push): a push that
 *     makes a new node, a new set and a new value string, and one that
 *     makes a new node whose set exists (the same labels reached in
 *     another order); each call timed on its own (clock overhead, the
 *     median of empty timings, taken off), 3 rounds of 1,000 calls, the
 *     median and 90th percentile over all 3,000. The process's caps
 *     (HEAPPROF_LABEL_SETS_MAX) bound how many misses one process can
 *     make, so these are fresh calls, never repeated.
 *
 * `label_cost write BUCKETS LABELS [WRITES]` makes BUCKETS buckets at
 * rate 1 (distinct sizes, 10-frame stacks), each under LABELS labels (0
 * or 4: tenant — one of 16 —, endpoint, region, subsystem), then writes
 * the profile WRITES times (default 5) into a memfd and prints the first
 * write's ms, the median of the others, and the profile's gzipped bytes.
 * Under callgrind, `--toggle-collect=steady_writes` counts the writes
 * after the first (the symbolizer built by then): instructions per write.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "heapprof.h"

#define ROUNDS 9
#define MISS_ROUNDS 3
#define MISSES 1000

/* Loop length of the hit timings (1M; fewer for callgrind). */
static int hits = 1000000;

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void check(int rc, const char *what) {
  if (rc != 0) {
    fprintf(stderr, "label_cost: %s: %s\n", what, heapprof_strerror(rc));
    exit(1);
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static const char *const keys[4] = {"tenant", "endpoint", "region", "subsystem"};
static const char *const values[4] = {"tenant-0", "/api/v1/orders", "eu-west-1", "cache"};

/* ---- hits ---- */

static __attribute__((noipa)) double one_on_none(void) {
  int64_t a = now_ns();
  for (int i = 0; i < hits; i++) {
    heapprof_label_push(keys[0], values[0]);
    heapprof_label_pop();
  }
  return (double)(now_ns() - a) / hits;
}

static __attribute__((noipa)) double fourth_on_three(void) {
  for (int k = 0; k < 3; k++)
    check(heapprof_label_push(keys[k], values[k]), "push");
  int64_t a = now_ns();
  for (int i = 0; i < hits; i++) {
    heapprof_label_push(keys[3], values[3]);
    heapprof_label_pop();
  }
  double r = (double)(now_ns() - a) / hits;
  for (int k = 0; k < 3; k++)
    heapprof_label_pop();
  return r;
}

static __attribute__((noipa)) double request_of_four(void) {
  int64_t a = now_ns();
  for (int i = 0; i < hits; i++) {
    for (int k = 0; k < 4; k++)
      heapprof_label_push(keys[k], values[k]);
    for (int k = 0; k < 4; k++)
      heapprof_label_pop();
  }
  return (double)(now_ns() - a) / hits;
}

static __attribute__((noipa)) double save_restore(void) {
  for (int k = 0; k < 4; k++)
    check(heapprof_label_push(keys[k], values[k]), "push");
  heapprof_label_token_t request = heapprof_label_save(), prev;
  for (int k = 0; k < 4; k++)
    heapprof_label_pop();
  int64_t a = now_ns();
  for (int i = 0; i < hits; i++) {
    heapprof_label_restore(request, &prev); /* a worker takes the request on */
    heapprof_label_restore(prev, NULL);     /* and goes back to its own */
  }
  return (double)(now_ns() - a) / hits;
}

/* ---- misses ---- */

/* The median of a back-to-back pair of clock reads. */
static int64_t clock_overhead(void) {
  int64_t d[1001];
  for (int i = 0; i < 1001; i++) {
    int64_t a = now_ns();
    d[i] = now_ns() - a;
  }
  qsort(d, 1001, sizeof *d, cmp_i64);
  return d[500];
}

static void calls(void) {
  static double hit[4][ROUNDS];
  static double (*const fn[4])(void) = {one_on_none, fourth_on_three, request_of_four,
                                       save_restore};
  static const char *const what[4] = {
      "hit: push + pop of 1 label on none",
      "hit: push + pop of a 4th label on 3",
      "hit: a request's 4 pushes + 4 pops",
      "hit: save + restore + restore back (a worker)"};
  for (int f = 0; f < 4; f++)
    fn[f](); /* warm: the nodes exist */
  for (int r = 0; r < ROUNDS; r++)
    for (int f = 0; f < 4; f++)
      hit[f][r] = fn[f]();

  int64_t over = clock_overhead();
  static int64_t fresh[MISS_ROUNDS * MISSES], known[MISS_ROUNDS * MISSES];
  char v[32];
  int m = 0;
  for (int r = 0; r < MISS_ROUNDS; r++) {
    /* A new value: a new string, a new node, a new set {request=v}. */
    for (int i = 0; i < MISSES; i++, m++) {
      snprintf(v, sizeof v, "req-%d-%d", r, i);
      int64_t a = now_ns();
      int rc = heapprof_label_push("request", v);
      heapprof_label_pop();
      fresh[m] = now_ns() - a - over;
      check(rc, "push (miss)");
    }
  }
  m = 0;
  check(heapprof_label_push("request", "other"), "push");
  heapprof_label_pop();
  for (int r = 0; r < MISS_ROUNDS; r++) {
    /* request=v on top of request=other: a new node, the set {request=v}
     * exists (made above), the strings too. */
    for (int i = 0; i < MISSES; i++, m++) {
      snprintf(v, sizeof v, "req-%d-%d", r, i);
      check(heapprof_label_push("request", "other"), "push");
      int64_t a = now_ns();
      int rc = heapprof_label_push("request", v);
      heapprof_label_pop();
      known[m] = now_ns() - a - over;
      check(rc, "push (miss)");
      heapprof_label_pop();
    }
  }
  qsort(fresh, (size_t)m, sizeof *fresh, cmp_i64);
  qsort(known, (size_t)m, sizeof *known, cmp_i64);

  printf("%-48s %10s\n", "operation", "ns");
  for (int f = 0; f < 4; f++) {
    qsort(hit[f], ROUNDS, sizeof *hit[f], cmp_double);
    printf("%-48s %10.1f\n", what[f], hit[f][ROUNDS / 2]);
  }
  printf("%-48s %10lld  (p90 %lld)\n", "miss: push + pop, new node, set and string",
         (long long)fresh[m / 2], (long long)fresh[m * 9 / 10]);
  printf("%-48s %10lld  (p90 %lld)\n", "miss: push + pop, new node, set exists",
         (long long)known[m / 2], (long long)known[m * 9 / 10]);
  printf("(clock overhead %lld ns, taken off each miss; hits: median of %d loops of "
         "%d, misses: %d calls each)\n",
         (long long)over, ROUNDS, hits, m);
}

/* ---- profile writes ---- */

static __attribute__((noipa)) void make(int depth, size_t n) {
  if (depth > 1) {
    make(depth - 1, n);
    __asm__ volatile("" ::: "memory"); /* no tail call: a real frame */
    return;
  }
  void *p = malloc(n);
  __asm__ volatile("" : : "r"(p) : "memory");
  free(p);
}

static int64_t write_once(int fd) {
  if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
    perror("label_cost: memfd");
    exit(1);
  }
  int64_t a = now_ns();
  check(heapprof_write_profile_fd(fd, HEAPPROF_HEAP), "write");
  return now_ns() - a;
}

static __attribute__((noipa)) void steady_writes(int fd, int writes, int64_t *took) {
  for (int w = 1; w < writes; w++)
    took[w] = write_once(fd);
}

static int writes_table(long buckets, int labels, int writes) {
  if (buckets < 1 || (labels != 0 && labels != 4) || writes < 2 || writes > 64) {
    fprintf(stderr, "usage: label_cost write BUCKETS LABELS(0|4) [WRITES(2..64)]\n");
    return 2;
  }
  check(heapprof_set_rate(1), "set_rate");
  for (long i = 0; i < buckets; i++) {
    char tenant[16];
    snprintf(tenant, sizeof tenant, "tenant-%ld", i % 16);
    for (int k = 0; k < labels; k++)
      check(heapprof_label_push(keys[k], k == 0 ? tenant : values[k]), "push");
    make(10, 16 + (size_t)i); /* distinct sizes: one bucket each */
    for (int k = 0; k < labels; k++)
      heapprof_label_pop();
  }
  int fd = memfd_create("label_cost", 0);
  if (fd < 0) {
    perror("label_cost: memfd_create");
    return 1;
  }
  int64_t took[64];
  took[0] = write_once(fd);
  steady_writes(fd, writes, took);
  struct stat st;
  fstat(fd, &st);
  qsort(took + 1, (size_t)writes - 1, sizeof *took, cmp_i64);
  printf("%-8s %-7s %9s %10s %12s\n", "buckets", "labels", "first ms", "steady ms",
         "gzip bytes");
  printf("%-8ld %-7d %9.1f %10.2f %12lld\n", buckets, labels, (double)took[0] / 1e6,
         (double)took[1 + (writes - 1) / 2] / 1e6, (long long)st.st_size);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 4 && strcmp(argv[1], "write") == 0)
    return writes_table(atol(argv[2]), atoi(argv[3]), argc > 4 ? atoi(argv[4]) : 5);
  if (argc > 2 || (argc == 2 && (hits = atoi(argv[1])) < 1)) {
    fprintf(stderr, "usage: label_cost [HITS] | label_cost write BUCKETS LABELS(0|4) "
                    "[WRITES]\n");
    return 2;
  }
  calls();
  return 0;
}
