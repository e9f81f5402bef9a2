/*
 * test_threads — 16 threads allocate at rate 1 and free each other's blocks
 * (through a shared ring, so most frees happen on another thread than the
 * allocation). Afterwards the profiler's live-sample count equals the
 * profile's in-use objects (the records and the buckets agree), and the
 * in-use at the threads' site equals the program's own count, exactly.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "heapprof.h"
#include "testlib.h"

#define THREADS 16
#define ROUNDS 60000
#define RING 4096

static _Atomic(void *) ring[RING];
static atomic_long kept; /* blocks the threads left alive at the end */

static __attribute__((noipa)) void *cross_alloc(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}

static void *worker(void *arg) {
  uint64_t s = (uintptr_t)arg * 0x9e3779b97f4a7c15ULL;
  for (int i = 0; i < ROUNDS; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    void *p = cross_alloc(16 + s % 512);
    /* Swap it into a random ring slot; free whatever another thread left. */
    void *old = atomic_exchange(&ring[s % RING], p);
    free(old);
  }
  return NULL;
}

int main(void) {
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++)
    pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  for (int i = 0; i < RING; i++)
    kept += atomic_load(&ring[i]) != NULL;

  heapprof_stats_t st;
  CHECK(heapprof_read_stats(&st) == 0, "stats");
  char path[512];
  snprintf(path, sizeof path, "%s/threads.pb.gz", tl_tmpdir());
  CHECK(heapprof_write_profile(path, HEAPPROF_HEAP) == 0, "write");
  tl_profile_t p;
  tl_read_profile(path, &p);
  int64_t total = 0, v[4];
  for (size_t i = 0; i < p.nsamples; i++)
    total += p.samples[i].v[2];
  tl_site(&p, "cross_alloc", v);
  printf("live samples %llu, profile in-use objects %lld; cross_alloc: alloc "
         "%lld, in use %lld, the program holds %ld\n",
         (unsigned long long)st.live_samples, (long long)total,
         (long long)v[0], (long long)v[2], atomic_load(&kept));
  CHECK(v[0] == (int64_t)THREADS * ROUNDS, "alloc count %lld", (long long)v[0]);
  CHECK(v[2] == atomic_load(&kept), "in use %lld, the program holds %ld",
        (long long)v[2], atomic_load(&kept));
  CHECK((int64_t)st.live_samples == total,
        "live-sample records %llu != profile in-use objects %lld",
        (unsigned long long)st.live_samples, (long long)total);
  tl_free_profile(&p);
  printf("ok\n");
  return 0;
}
