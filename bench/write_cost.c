/*
 * write_cost — what writing a profile costs, and whom it holds up: with
 * 10,000, 100,000 and 1,000,000 buckets, the time heapprof_write_profile
 * takes, how far the process's peak RSS rises above its RSS before the
 * write (the dump's memory: snapshot, symbols, encoder, zlib), and the
 * longest a thread allocating meanwhile waited for one malloc+free. Linked
 * with -lheapprof; run at HEAPPROF_RATE=1 so that each of the distinct
 * sizes below makes its own bucket (each block is freed at once: the
 * bucket stays). 5 writes a row.
 *
 * The first write of the process builds the symbolizer (maps, symbol
 * indexes, DWARF line tables: with libc6-dbg installed, libc's are large);
 * later writes reuse it. So each row gives its first write ("first ms") and
 * the median of the other four ("steady ms"); in the first row the first
 * write is the process's first.
 *
 * "RSS MB" is the process's RSS before the first write of a row;
 * "+RSS first" / "+RSS steady" how far the RSS rose above what it was just
 * before the write, during the row's first write and, at most, during the
 * other four (VmHWM in /proc/self/status, reset by writing 5 into
 * /proc/self/clear_refs before each write); "kept MB" how much higher the
 * RSS is after the row's writes than before them (the symbolizer keeps
 * what it learned, and the allocator keeps freed memory). Memory the allocator keeps after a write
 * stays in the RSS of the next row, so a row measured on its own (the
 * sizes as arguments: write_cost 1000000) is the cleanest figure. Where
 * the reset is refused the column says "n/a".
 *
 * On a shared 2-core machine the allocating thread is sometimes
 * descheduled for a millisecond or more, which says nothing about the
 * profiler. So each wait over 100 µs is checked against the thread's
 * context switches: a voluntary one means it slept (a lock, a page fault
 * on a busy mmap_lock: the profiler's doing, or the allocator's); an
 * involuntary one means the scheduler took the CPU away. The table gives
 * the longest wait (each write's longest, median of the 5), the longest
 * with no involuntary switch (over all 5), and the voluntary switches
 * (sleeps) of the allocating thread while the 5 writes ran.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "heapprof.h"
#include "procstat.h"

#define WRITES 5

static atomic_int phase; /* 1: measuring, 2: stop */
static _Atomic int64_t worst_ns, worst_unpreempted_ns;
static atomic_long slept; /* voluntary context switches while measuring */

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Allocates 64-byte blocks in a loop at rate 1 (the slow path, with a
 * stack capture each time) and keeps the longest single malloc+free. */
static void switches(long *voluntary, long *involuntary) {
  struct rusage u;
  getrusage(RUSAGE_THREAD, &u);
  *voluntary = u.ru_nvcsw, *involuntary = u.ru_nivcsw;
}

static void keep_max(_Atomic int64_t *worst, int64_t d) {
  if (d > atomic_load(worst))
    atomic_store(worst, d);
}

static void *allocator(void *arg) {
  (void)arg;
  long vol_start = -1;
  while (atomic_load(&phase) != 2) {
    long vol, invol; /* before each window: a switch inside it is its own */
    switches(&vol, &invol);
    int measuring = atomic_load(&phase) == 1;
    int64_t t0 = now_ns();
    void *p = malloc(64);
    __asm__ volatile("" : : "r"(p) : "memory");
    free(p);
    int64_t d = now_ns() - t0;
    if (!measuring)
      continue;
    if (vol_start < 0)
      vol_start = vol;
    keep_max(&worst_ns, d);
    if (d > 100000) { /* the slow ones: preempted, or slept? */
      long v, i;
      switches(&v, &i);
      if (i == invol)
        keep_max(&worst_unpreempted_ns, d);
    }
  }
  if (vol_start >= 0) {
    long v, i;
    switches(&v, &i);
    atomic_fetch_add(&slept, v - vol_start);
  }
  return NULL;
}

static int cmp(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static __attribute__((noipa)) void make_bucket(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" : : "r"(p) : "memory");
  free(p);
}

int main(int argc, char **argv) {
  size_t sizes[16] = {10000, 100000, 1000000};
  int nsizes = 3;
  if (argc > 1) {
    for (nsizes = 0; nsizes < argc - 1 && nsizes < 16; nsizes++)
      sizes[nsizes] = strtoul(argv[nsizes + 1], NULL, 10);
  }
  char out[] = "/tmp/heapprof-write-cost.XXXXXX";
  int fd = mkstemp(out); /* a regular file the profile replaces each time */
  if (fd < 0)
    return 1;
  close(fd);
  printf("%-8s %9s %10s %8s %11s %12s %8s %16s %25s %6s\n", "buckets",
         "first ms", "steady ms", "RSS MB", "+RSS first", "+RSS steady",
         "kept MB", "longest wait us", "longest not preempted us", "slept");
  size_t made = 0;
  for (int s = 0; s < nsizes; s++) {
    for (; made < sizes[s]; made++) /* distinct sizes: one bucket each */
      make_bucket(16 + made);
    int64_t took[WRITES], waited[WRITES], unpreempted = 0;
    long rss = status_kb("VmRSS:"), hwm[WRITES], before[WRITES];
    int resets = 1;
    atomic_store(&slept, 0);
    for (int w = 0; w < WRITES; w++) {
      pthread_t t;
      atomic_store(&worst_ns, 0);
      atomic_store(&worst_unpreempted_ns, 0);
      atomic_store(&phase, 0);
      pthread_create(&t, NULL, allocator, NULL);
      usleep(20000);
      atomic_store(&phase, 1);
      resets &= reset_peak();
      before[w] = status_kb("VmRSS:");
      int64_t t0 = now_ns();
      if (heapprof_write_profile(out, HEAPPROF_HEAP) != 0)
        return 1;
      took[w] = now_ns() - t0;
      hwm[w] = status_kb("VmHWM:");
      atomic_store(&phase, 2);
      pthread_join(t, NULL);
      waited[w] = atomic_load(&worst_ns);
      if (atomic_load(&worst_unpreempted_ns) > unpreempted)
        unpreempted = atomic_load(&worst_unpreempted_ns);
    }
    int64_t first = took[0];
    long steady_rise = -1;
    for (int w = 1; w < WRITES; w++)
      if (hwm[w] - before[w] > steady_rise)
        steady_rise = hwm[w] - before[w];
    long kept = status_kb("VmRSS:") - rss;
    qsort(took + 1, WRITES - 1, sizeof *took, cmp);
    qsort(waited, WRITES, sizeof *waited, cmp);
    char quiet[32] = "< 100", peak0[32] = "n/a", peak1[32] = "n/a";
    if (unpreempted)
      snprintf(quiet, sizeof quiet, "%.1f", (double)unpreempted / 1e3);
    if (resets && rss >= 0 && hwm[0] >= 0 && steady_rise >= 0) {
      snprintf(peak0, sizeof peak0, "%.1f", (double)(hwm[0] - before[0]) / 1024);
      snprintf(peak1, sizeof peak1, "%.1f", (double)steady_rise / 1024);
    }
    printf("%-8zu %9.1f %10.1f %8.1f %11s %12s %8.1f %16.1f %25s %6ld\n",
           sizes[s], (double)first / 1e6,
           (double)took[1 + (WRITES - 1) / 2] / 1e6, (double)rss / 1024, peak0,
           peak1, (double)kept / 1024,
           (double)waited[WRITES / 2] / 1e3, quiet, atomic_load(&slept));
  }
  unlink(out);
  return 0;
}
