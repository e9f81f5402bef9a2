/*
 * memory_cost — the profiler's own memory against the live heap it
 * profiles: builds a live heap of ~256 MB in mixed sizes (16 B – 4 KiB,
 * 8 call sites), then prints the heap in use (glibc's view), the
 * profiler's own memory (heapprof_read_stats) and their ratio. Run it at
 * the default rate and at HEAPPROF_RATE=1; at rate 1 each block also
 * carries a 16-byte header in the heap itself, which the heap figure
 * includes.
 */
#include <stdio.h>
#include <stdlib.h>

#include "heapprof.h"

#define SITE(k)                                                                \
  static __attribute__((noipa)) void *site##k(size_t n) {                     \
    void *p = malloc(n);                                                       \
    __asm__ volatile("" ::: "memory");                                         \
    return p;                                                                  \
  }
SITE(0) SITE(1) SITE(2) SITE(3) SITE(4) SITE(5) SITE(6) SITE(7)
static void *(*const sites[8])(size_t) = {site0, site1, site2, site3,
                                          site4, site5, site6, site7};

int main(void) {
  size_t total = 0, n = 0, cap = 1 << 20;
  void **blocks = malloc(cap * sizeof *blocks);
  uint64_t s = 88172645463325252ULL;
  while (total < ((size_t)256 << 20)) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    size_t size = (size_t)16 << (s % 9);
    if (n == cap)
      blocks = realloc(blocks, (cap *= 2) * sizeof *blocks);
    blocks[n++] = sites[n & 7](size);
    total += size;
  }
  heapprof_stats_t st;
  heapprof_read_stats(&st);
  long rss_kb = 0;
  char line[256];
  FILE *f = fopen("/proc/self/status", "r");
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "VmRSS: %ld kB", &rss_kb) == 1)
      break;
  if (f != NULL)
    fclose(f);
  printf("rate %7lld: %zu live blocks, heap in use %.1f MB, RSS %.1f MB; "
         "profiler's own maps %.2f MB (address space, mostly untouched), "
         "%llu buckets\n",
         (long long)st.rate, n, (double)st.heap_inuse_bytes / 1e6,
         (double)rss_kb / 1e3, (double)st.profiler_bytes / 1e6,
         (unsigned long long)st.buckets);
  return 0;
}
