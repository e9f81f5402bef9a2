/*
 * test_limits — the profiler's memory is capped (HEAPPROF_MAX_MEM=16M here):
 * with far more distinct (stack, size) keys than fit, the program runs on,
 * every allocation works, samples beyond the cap are dropped and counted,
 * and the profile says how many.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heapprof.h"
#include "testlib.h"

/* 300,000 distinct sizes at one site: 300,000 buckets wanted. */
static __attribute__((noipa)) void many_sizes(void) {
  for (size_t n = 1; n <= 300000; n++) {
    char *p = malloc(n);
    CHECK(p != NULL, "malloc(%zu) failed", n);
    p[n - 1] = 1;
    free(p);
  }
}

int main(void) {
  many_sizes();
  heapprof_stats_t st;
  CHECK(heapprof_read_stats(&st) == 0, "stats");
  printf("buckets %llu, dropped %llu, profiler memory %llu bytes\n",
         (unsigned long long)st.buckets, (unsigned long long)st.dropped_samples,
         (unsigned long long)st.profiler_bytes);
  CHECK(st.profiler_bytes <= 16u << 20, "profiler memory %llu over the cap",
        (unsigned long long)st.profiler_bytes);
  CHECK(st.dropped_samples > 0, "nothing dropped: the cap was not reached");
  CHECK(st.buckets > 1000, "only %llu buckets recorded",
        (unsigned long long)st.buckets);
  CHECK(st.mallocs >= 300000 && st.frees >= 300000, "counts %llu/%llu",
        (unsigned long long)st.mallocs, (unsigned long long)st.frees);
  char path[512];
  snprintf(path, sizeof path, "%s/limits.pb.gz", tl_tmpdir());
  CHECK(heapprof_write_profile(path, HEAPPROF_HEAP) == 0, "write");
  tl_profile_t p;
  tl_read_profile(path, &p);
  CHECK(strstr(p.raw, "heapprof dropped") != NULL,
        "the profile does not say samples were dropped");
  tl_free_profile(&p);
  printf("ok\n");
  return 0;
}
