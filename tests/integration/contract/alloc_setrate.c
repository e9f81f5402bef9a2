/*
 * alloc_setrate — B14: heapprof_set_rate never re-weights history; each
 * sample is weighted by the rate it was taken at.
 *
 * At HEAPPROF_RATE=1 the program keeps 1,000 objects of 100 B from
 * keep_at_rate_1, then sets the rate to 524288. The profile must still
 * show exactly 1,000 objects and 100,000 bytes there, allocated and in use
 * (re-weighted by the new rate they were 5,243,380 objects). Then
 * alloc_at_new_rate allocates and frees 1,000,000 objects of 100 B. Each
 * is sampled with p = 1 − e^(−100/524288) = 1.907e-4 and a sample stands
 * for 1/p = 5243.38 objects, so the site's alloc_objects must be k·5243.38
 * (within the profile's rounding, < 1) for a whole number k of samples,
 * and k binomial(10^6, p): mean 190.7. It must lie in [126, 264]:
 * P(k ≤ 125) = 2.5e-7 and P(k ≥ 265) = 2.1e-7, so this test fails by
 * chance with probability 4.6e-7 — never with the fixed seed CTest sets.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "testlib.h"

#define KEPT 1000
#define SIZE 100
#define NEW_RATE 524288
#define MORE 1000000

static void *kept[KEPT];

static __attribute__((noipa)) void keep_at_rate_1(void) {
  for (int i = 0; i < KEPT; i++)
    kept[i] = malloc(SIZE);
  __asm__ volatile("" ::: "memory");
}

static __attribute__((noipa)) void alloc_at_new_rate(void) {
  for (long i = 0; i < MORE; i++) {
    void *volatile p = malloc(SIZE);
    free(p);
  }
}

static void read_profile(const char *name, tl_profile_t *p) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s.pb.gz", tl_tmpdir(), name);
  CHECK(tl_write_profile(path, 0) == 0, "write %s", path);
  tl_read_profile(path, p);
}

/* The site recorded at rate 1 is exact, whatever the rate is now. */
static void expect_history(const tl_profile_t *p, const char *when) {
  int64_t v[4];
  CHECK(tl_site(p, "keep_at_rate_1", v) > 0, "%s: no keep_at_rate_1:\n%s",
        when, p->raw);
  CHECK(v[0] == KEPT && v[1] == KEPT * SIZE && v[2] == KEPT &&
            v[3] == KEPT * SIZE,
        "%s: keep_at_rate_1 shows alloc %lld/%lld B, in use %lld/%lld B; "
        "want exactly %d/%d both", when, (long long)v[0], (long long)v[1],
        (long long)v[2], (long long)v[3], KEPT, KEPT * SIZE);
  printf("%s: keep_at_rate_1 %lld objects, %lld B in use: exact\n", when,
         (long long)v[2], (long long)v[3]);
}

int main(void) {
  keep_at_rate_1();
  CHECK(tl_set_rate(NEW_RATE) == 0, "heapprof_set_rate(%d)", NEW_RATE);
  tl_profile_t p;
  read_profile("after-set-rate", &p);
  expect_history(&p, "after set_rate");
  tl_free_profile(&p);

  alloc_at_new_rate();
  read_profile("after-more", &p);
  expect_history(&p, "after more allocation");
  int64_t v[4];
  size_t buckets = tl_site(&p, "alloc_at_new_rate", v);
  CHECK(buckets > 0, "no sample at alloc_at_new_rate:\n%s", p.raw);
  double weight = 1.0 / -expm1(-(double)SIZE / NEW_RATE);
  double k = nearbyint((double)v[0] / weight);
  CHECK(fabs((double)v[0] - k * weight) < 1 &&
            fabs((double)v[1] - k * SIZE * weight) < 1,
        "alloc_at_new_rate: %lld objects, %lld B is not a whole number of "
        "samples weighted at rate %d (%.2f objects each)", (long long)v[0],
        (long long)v[1], NEW_RATE, weight);
  CHECK(k >= 126 && k <= 264, "alloc_at_new_rate: %.0f samples of %d "
        "allocations, want 126..264 (mean 190.7)", k, MORE);
  CHECK(v[2] == 0, "alloc_at_new_rate: %lld objects in use after all were "
        "freed", (long long)v[2]);
  printf("alloc_at_new_rate: %.0f samples, each %.2f objects: %lld objects\n",
         k, weight, (long long)v[0]);
  tl_free_profile(&p);
  for (int i = 0; i < KEPT; i++)
    free(kept[i]);
  printf("ok\n");
  return 0;
}
