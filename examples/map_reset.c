/*
 * map_reset — two ways to empty a map of 1,000,000 entries, measured:
 * deleting every key (the map keeps every bucket, and refilling it
 * allocates nothing) or building a new map (the memory goes back, and
 * refilling it grows the map again from nothing).
 *
 * usage: map_reset [ENTRIES]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "heapprof.h"
#include "map_story.h"

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

typedef struct figures {
  double clear_ms, refill_ms;
  uint64_t clear_mallocs, refill_mallocs, refill_bytes;
  uint64_t inuse_after_clear;
} figures_t;

static void stats(heapprof_stats_t *st) { heapprof_read_stats(st); }

static int measure(size_t n, int rebuild, figures_t *f) {
  story_t s;
  heapprof_stats_t a, b, c;
  if (story_init(&s, STORY_INT, n) || story_fill(&s))
    return -1;
  stats(&a);
  double t0 = now_ms();
  if (rebuild) {
    if (story_rebuild(&s))
      return -1;
  } else {
    story_delete_all(&s);
  }
  double t1 = now_ms();
  stats(&b);
  if (story_fill(&s))
    return -1;
  double t2 = now_ms();
  stats(&c);
  *f = (figures_t){t1 - t0, t2 - t1, b.mallocs - a.mallocs,
                   c.mallocs - b.mallocs, c.total_alloc_bytes - b.total_alloc_bytes,
                   b.heap_inuse_bytes};
  story_free(&s);
  return 0;
}

int main(int argc, char **argv) {
  size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
  figures_t del, reb;
  if (measure(n, 0, &del) || measure(n, 1, &reb)) {
    fprintf(stderr, "map_reset: out of memory\n");
    return 1;
  }
  printf("emptying a map of %zu int→int entries, then filling it again\n", n);
  printf("%-22s %10s %14s %12s %12s %16s\n", "method", "clear ms",
         "in use after", "refill ms", "refill mallocs", "refill allocated");
  const char *names[2] = {"delete every key", "build a new map"};
  figures_t *fs[2] = {&del, &reb};
  for (int i = 0; i < 2; i++)
    printf("%-22s %10.1f %11.1f MB %12.1f %12llu %13.1f MB\n", names[i],
           fs[i]->clear_ms, (double)fs[i]->inuse_after_clear / 1e6,
           fs[i]->refill_ms, (unsigned long long)fs[i]->refill_mallocs,
           (double)fs[i]->refill_bytes / 1e6);
  return 0;
}
