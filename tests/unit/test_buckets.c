/*
 * test_buckets — the (stack, size) map with fake stacks: one bucket per key,
 * found again by every later lookup, from many threads at once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "buckets.h"
#include "testlib.h"
#include "unit_heap.h"

#define THREADS 4
#define KEYS 20000

static void fake_stack(uintptr_t *pcs, int key, uint32_t *n) {
  *n = 3 + (uint32_t)(key % 5);
  for (uint32_t i = 0; i < *n; i++)
    pcs[i] = 0x400000 + (uintptr_t)key * 64 + i;
}

static void *hammer(void *arg) {
  (void)arg;
  uintptr_t pcs[16];
  uint32_t n;
  for (int round = 0; round < 3; round++) {
    for (int k = 0; k < KEYS; k++) {
      fake_stack(pcs, k, &n);
      bucket_t *b = bucket_get(pcs, n, 100 + (uint64_t)(k % 3), 1, 0);
      CHECK(b != NULL, "bucket_get failed for key %d", k);
      bucket_note_alloc(b);
      if (round == 2)
        bucket_note_free(b);
    }
  }
  return NULL;
}

int main(void) {
  uintptr_t pcs[16];
  uint32_t n;
  fake_stack(pcs, 7, &n);
  CHECK(bucket_get(pcs, n, 64, 1, 0) == NULL && bucket_dropped() == 1,
        "without memory handed in, a bucket is a drop");
  bucket_set_memory(unit_permanent);
  bucket_t *a = bucket_get(pcs, n, 64, 1, 0), *b = bucket_get(pcs, n, 64, 1, 0);
  CHECK(a == b, "same key gave two buckets");
  CHECK(bucket_get(pcs, n, 65, 1, 0) != a, "a different size must be a new bucket");
  CHECK(bucket_get(pcs, n - 1, 64, 1, 0) != a, "a shorter stack must be a new bucket");
  CHECK(bucket_get(pcs, n, 64, 4096, 0) != a, "a different rate must be a new bucket");
  CHECK(a->nframes == n && a->size == 64 && a->pcs[0] == pcs[0],
        "bucket key not stored");
  uint64_t before = bucket_total();

  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++)
    pthread_create(&t[i], NULL, hammer, NULL);
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);

  /* Keys (k, 100 + k % 3) are all distinct stacks; key 7 with size 101 is
   * new too (the size-64/65 buckets above differ by size). */
  CHECK(bucket_total() == before + KEYS, "%llu buckets created, want %d",
        (unsigned long long)(bucket_total() - before), KEYS);
  bucket_snapshot_t snap;
  CHECK(bucket_snapshot(&unit_heap, 0, &snap) == 0, "snapshot: %d", errno);
  bucket_count_t *counts = snap.counts;
  size_t nc = snap.n;
  CHECK(nc == bucket_total(), "snapshot has %zu of %llu buckets", nc,
        (unsigned long long)bucket_total());
  size_t seen = 0;
  for (size_t i = 0; i < nc; i++) {
    if (counts[i].bucket->size < 100)
      continue;
    seen++;
    CHECK(counts[i].allocs == 3 * THREADS && counts[i].frees == THREADS,
          "bucket %zu: allocs %llu frees %llu", i,
          (unsigned long long)counts[i].allocs,
          (unsigned long long)counts[i].frees);
  }
  CHECK(seen == KEYS, "saw %zu hammered buckets", seen);
  bucket_snapshot_free(&unit_heap, &snap);
  CHECK(bucket_dropped() == 1, "drops without memory pressure");
  printf("ok: %llu buckets, counts exact under %d threads\n",
         (unsigned long long)bucket_total(), THREADS);
  return 0;
}
