/*
 * map_bench — the map-delete story as a workload, without the profiler's
 * API (so that it also runs with no profiler at all): fill a Go-style map
 * with 1,000,000 entries, delete every key, rebuild it, fill it again.
 * Prints the elapsed seconds.
 */
#include <stdio.h>
#include <time.h>

#include "gomap.h"

int main(void) {
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  gomap_type_t t = gomap_type_u64(sizeof(uint64_t));
  gomap_t *m = gomap_new(&t, 0);
  for (int round = 0; round < 2; round++) {
    for (uint64_t i = 0; i < 1000000; i++)
      if (gomap_insert_u64(m, i, &i) != 0)
        return 1;
    for (uint64_t i = 0; i < 1000000; i++)
      gomap_delete_u64(m, i);
    gomap_free(m);
    m = gomap_new(&t, 0);
  }
  gomap_free(m);
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%.4f\n", (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
  return 0;
}
