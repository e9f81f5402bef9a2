/*
 * test_sites — a program with known allocation sites checks its own profile
 * as `go tool pprof` reads it.
 *
 *   test_sites exact    at HEAPPROF_RATE=1 every site's alloc and in-use
 *                       objects and bytes must be exact;
 *   test_sites sampled  at the default rate each large site's estimate must
 *                       lie within 5 standard deviations of the truth, the
 *                       deviation derived from the site's sample count
 *                       (false-failure rate ≈ 6e-7 per check for a random
 *                       seed; CTest fixes HEAPPROF_SEED, so runs repeat).
 *
 * The same source runs preloaded, linked with -lheapprof, and built
 * without -g; every variant must show the site names.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#define NOINLINE __attribute__((noipa))

static void *volatile sink;

NOINLINE void site_kept(void **out, int n) {
  for (int i = 0; i < n; i++)
    out[i] = malloc(1000);
}

NOINLINE void site_churn(int n) {
  for (int i = 0; i < n; i++) {
    char *p = malloc(512);
    p[0] = 1;
    sink = p;
    free(p);
  }
}

NOINLINE void site_calloc(void **out, int n) {
  for (int i = 0; i < n; i++)
    out[i] = calloc(10, 100);
}

NOINLINE void site_memalign(void **out, int n) {
  for (int i = 0; i < n; i++)
    CHECK(posix_memalign(&out[i], 64, 4096) == 0, "posix_memalign failed");
}

NOINLINE void *site_realloc(void) {
  char *p = malloc(16);
  for (int k = 0; k < 10; k++)
    p = realloc(p, (size_t)32 << k);
  return p;
}

NOINLINE void site_aligned(void **out, int n) {
  for (int i = 0; i < n; i++)
    out[i] = aligned_alloc(256, 2560);
}

NOINLINE void site_partly(void **out, int n) {
  for (int i = 0; i < n; i++)
    out[i] = malloc(300);
}

static void expect(const tl_profile_t *p, const char *site, int64_t ao,
                   int64_t as, int64_t io, int64_t is) {
  int64_t v[4];
  size_t n = tl_site(p, site, v);
  CHECK(n > 0, "no sample has %s as its leaf; profile:\n%s", site, p->raw);
  CHECK(v[0] == ao && v[1] == as && v[2] == io && v[3] == is,
        "%s: got alloc %lld/%lld inuse %lld/%lld, want %lld/%lld %lld/%lld",
        site, (long long)v[0], (long long)v[1], (long long)v[2],
        (long long)v[3], (long long)ao, (long long)as, (long long)io,
        (long long)is);
  printf("%-14s alloc %6lld objs %9lld B   inuse %6lld objs %9lld B  exact\n",
         site, (long long)v[0], (long long)v[1], (long long)v[2],
         (long long)v[3]);
}

static void run_exact(const char *path) {
  static void *kept[100], *cal[50], *mem[20], *al[10], *part[200];
  site_kept(kept, 100);
  site_churn(1000);
  site_calloc(cal, 50);
  site_memalign(mem, 20);
  void *grown = site_realloc();
  site_aligned(al, 10);
  site_partly(part, 200);
  for (int i = 0; i < 150; i++)
    free(part[i]);
  CHECK(tl_write_profile(path, 0) == 0, "writing %s failed", path);

  tl_profile_t p;
  tl_read_profile(path, &p);
  CHECK(p.period == 1, "period %lld, want 1", (long long)p.period);
  expect(&p, "site_kept", 100, 100000, 100, 100000);
  expect(&p, "site_churn", 1000, 512000, 0, 0);
  expect(&p, "site_calloc", 50, 50000, 50, 50000);
  expect(&p, "site_memalign", 20, 81920, 20, 81920);
  expect(&p, "site_realloc", 11, 16 + 32 * 1023, 1, 16384);
  expect(&p, "site_aligned", 10, 25600, 10, 25600);
  expect(&p, "site_partly", 200, 60000, 50, 15000);
  for (size_t i = 0; i < p.nsamples; i++) {
    CHECK(p.samples[i].bytes >= 0, "sample %zu has no bytes label", i);
    for (size_t j = 0; j < p.samples[i].nlocs; j++)
      CHECK(strchr(p.samples[i].funcs[j], '@') == NULL,
            "symbol version left in a name: %s", p.samples[i].funcs[j]);
  }
  tl_free_profile(&p);
  sink = grown;
}

/* Checks one un-sampled estimate against the truth. */
static void within(const char *what, int64_t est, int64_t truth, double sigma) {
  double dev = fabs((double)est - (double)truth);
  printf("%-26s estimate %11lld  truth %11lld  off %5.2f%%  (%.2f sigma)\n",
         what, (long long)est, (long long)truth, 100.0 * dev / (double)truth,
         sigma > 0 ? dev / sigma : 0.0);
  CHECK(dev <= 5 * sigma, "%s: estimate %lld vs truth %lld is %.1f sigma off",
        what, (long long)est, (long long)truth, dev / sigma);
}

/* A site of `count` objects of `size` bytes, all alive or all freed. */
static void expect_sampled(const tl_profile_t *p, const char *site,
                           int64_t size, int64_t count, int alive) {
  int64_t v[4];
  tl_site(p, site, v);
  double prob = 1.0 - exp(-(double)size / (double)p->period);
  /* The estimate is k / prob objects for k samples; Binomial(count, prob)
   * samples give sd(k) = sqrt(count·prob·(1-prob)). */
  double sd_objects = sqrt((double)count * prob * (1 - prob)) / prob;
  char what[64];
  snprintf(what, sizeof what, "%s alloc_space", site);
  within(what, v[1], count * size, sd_objects * (double)size);
  snprintf(what, sizeof what, "%s inuse_space", site);
  if (alive) {
    within(what, v[3], count * size, sd_objects * (double)size);
  } else {
    CHECK(v[3] == 0, "%s: inuse %lld after every object was freed", site,
          (long long)v[3]);
    printf("%-26s 0 after all frees  exact\n", what);
  }
}

NOINLINE void site_big(void **out, int n) {
  for (int i = 0; i < n; i++)
    out[i] = malloc((size_t)2 << 20);
}

NOINLINE void site_small(void **out, int n) {
  for (int i = 0; i < n; i++)
    out[i] = malloc(4096);
}

NOINLINE void site_small_churn(int n) {
  for (int i = 0; i < n; i++) {
    char *p = malloc(8192);
    p[0] = 1;
    sink = p;
    free(p);
  }
}

static void run_sampled(const char *path) {
  enum { BIG = 128, SMALL = 32768, CHURN = 65536 };
  void **big = malloc(BIG * sizeof *big), **small = malloc(SMALL * sizeof *small);
  site_big(big, BIG);
  site_small(small, SMALL);
  site_small_churn(CHURN);
  CHECK(tl_write_profile(path, 0) == 0, "writing %s failed", path);
  tl_profile_t p;
  tl_read_profile(path, &p);
  CHECK(p.period == 524288, "period %lld, want the default 524288",
        (long long)p.period);
  expect_sampled(&p, "site_big", (int64_t)2 << 20, BIG, 1);
  expect_sampled(&p, "site_small", 4096, SMALL, 1);
  expect_sampled(&p, "site_small_churn", 8192, CHURN, 0);
  tl_free_profile(&p);
  for (int i = 0; i < BIG; i++)
    free(big[i]);
  for (int i = 0; i < SMALL; i++)
    free(small[i]);
  free(big);
  free(small);
}

/* The allocs view opens on alloc_space, the heap view on inuse_space. */
static void check_views(const char *dir) {
  char heap[512], allocs[512];
  snprintf(heap, sizeof heap, "%s/heap.pb.gz", dir);
  snprintf(allocs, sizeof allocs, "%s/allocs.pb.gz", dir);
  CHECK(tl_write_profile(heap, 0) == 0, "writing %s", heap);
  CHECK(tl_write_profile(allocs, 1) == 0, "writing %s", allocs);
  char *out;
  char *argv1[] = {"go", "tool", "pprof", "-top", heap, NULL};
  CHECK(tl_run(argv1, &out) == 0 && strstr(out, "Type: inuse_space"),
        "heap view:\n%s", out);
  free(out);
  char *argv2[] = {"go", "tool", "pprof", "-top", allocs, NULL};
  CHECK(tl_run(argv2, &out) == 0 && strstr(out, "Type: alloc_space"),
        "allocs view:\n%s", out);
  free(out);
}

int main(int argc, char **argv) {
  CHECK(argc == 2, "usage: test_sites exact|sampled");
  char path[512];
  snprintf(path, sizeof path, "%s/sites.pb.gz", tl_tmpdir());
  if (strcmp(argv[1], "exact") == 0)
    run_exact(path);
  else if (strcmp(argv[1], "sampled") == 0)
    run_sampled(path);
  else
    CHECK(0, "unknown mode %s", argv[1]);
  check_views(tl_tmpdir());
  printf("ok\n");
  return 0;
}
