/*
 * buckets — the (stack, size, rate, labels) → counters map, in the manner of Go's
 * buckhash: a fixed array of chain heads, chains that only ever grow at
 * their head, and buckets that are never freed.
 *
 * Lookups take no lock. That is safe because a bucket is fully written
 * (key and zeroed counters) before it is published with a release store on
 * a chain head, and none of its key fields change afterwards; a reader that
 * acquires the head sees a complete bucket. Inserts are serialised by
 * insert_lock, which only protects against two threads creating the same
 * key: the inserter looks again under the lock before publishing.
 */
#include "buckets.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

/* Prime, as Go's buckHashSize: spreads the low bits of the hash. */
#define HASH_HEADS 179999

static bucket_t *_Atomic heads[HASH_HEADS];
static bucket_t *_Atomic all_buckets;
static pthread_mutex_t insert_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t created;
static _Atomic uint64_t dropped;
static void *(*permanent)(size_t bytes); /* set once, before any bucket */

void bucket_set_memory(void *(*alloc_permanent)(size_t bytes)) {
  permanent = alloc_permanent;
}

static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdULL;
}

/* A bucket's key, as the lookups pass it around. */
typedef struct bucket_key {
  const uintptr_t *pcs;
  uint32_t n;
  uint32_t labels;
  uint64_t size;
  int64_t rate;
  uint64_t hash;
} bucket_key_t;

/* The label set shares the rate's mix (a rate is far below 2^32): an
 * unlabelled key hashes as it did before labels existed, and a labelled
 * one costs no extra mix. */
static uint64_t key_hash(const bucket_key_t *k) {
  uint64_t h = mix(mix(0, k->size), (uint64_t)k->rate ^ (uint64_t)k->labels << 32);
  for (uint32_t i = 0; i < k->n; i++)
    h = mix(h, k->pcs[i]);
  return h ^ (h >> 29);
}

static int key_equal(const bucket_t *b, const bucket_key_t *k) {
  return b->hash == k->hash && b->size == k->size && b->rate == k->rate &&
         b->nframes == k->n &&
         memcmp(b->pcs, k->pcs, k->n * sizeof *k->pcs) == 0 &&
         b->labels == k->labels;
}

static bucket_t *find(bucket_t *b, const bucket_key_t *k) {
  for (; b != NULL;
       b = atomic_load_explicit(&b->next_in_chain, memory_order_acquire))
    if (key_equal(b, k))
      return b;
  return NULL;
}

static bucket_t *insert_locked(bucket_t *_Atomic *head, const bucket_key_t *k) {
  bucket_t *first = atomic_load_explicit(head, memory_order_relaxed);
  bucket_t *b = find(first, k);
  if (b != NULL)
    return b;
  b = permanent != NULL ? permanent(sizeof *b + k->n * sizeof *k->pcs) : NULL;
  if (b == NULL)
    return NULL;
  b->hash = k->hash;
  b->size = k->size;
  b->rate = k->rate;
  b->nframes = k->n;
  b->labels = k->labels;
  b->serial = atomic_load_explicit(&created, memory_order_relaxed);
  memcpy(b->pcs, k->pcs, k->n * sizeof *k->pcs);
  atomic_store_explicit(&b->next_in_chain, first, memory_order_relaxed);
  atomic_store_explicit(&b->next_in_all,
                        atomic_load_explicit(&all_buckets, memory_order_relaxed),
                        memory_order_relaxed);
  atomic_store_explicit(head, b, memory_order_release);
  atomic_store_explicit(&all_buckets, b, memory_order_release);
  atomic_fetch_add_explicit(&created, 1, memory_order_relaxed);
  return b;
}

bucket_t *bucket_get(const uintptr_t *pcs, uint32_t nframes, uint64_t size,
                     int64_t rate, uint32_t labels) {
  bucket_key_t k = {pcs, nframes < BUCKET_MAX_FRAMES ? nframes : BUCKET_MAX_FRAMES,
                    labels, size, rate, 0};
  k.hash = key_hash(&k);
  bucket_t *_Atomic *head = &heads[k.hash % HASH_HEADS];
  bucket_t *b = find(atomic_load_explicit(head, memory_order_acquire), &k);
  if (b != NULL)
    return b;
  pthread_mutex_lock(&insert_lock);
  b = insert_locked(head, &k);
  pthread_mutex_unlock(&insert_lock);
  if (b == NULL)
    atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
  return b;
}

int bucket_snapshot(const prof_alloc_t *a, uint32_t epoch,
                    bucket_snapshot_t *out) {
  size_t cap = atomic_load_explicit(&created, memory_order_acquire) + 64, n = 0;
  bucket_count_t *v = prof_malloc(a, cap * sizeof *v);
  if (v == NULL)
    goto nomem;
  bucket_t *b = atomic_load_explicit(&all_buckets, memory_order_acquire);
  for (; b != NULL;
       b = atomic_load_explicit(&b->next_in_all, memory_order_acquire)) {
    if (n == cap) {
      bucket_count_t *w =
          a->resize(a->ctx, v, cap * sizeof *v, 2 * cap * sizeof *v);
      if (w == NULL) {
        prof_free(a, v, cap * sizeof *v);
        goto nomem;
      }
      v = w;
      cap *= 2;
    }
    /* Frees first: every free counted was preceded by its alloc, so the
     * allocs read afterwards can only be larger. */
    uint64_t frees = atomic_load_explicit(&b->frees, memory_order_acquire);
    uint64_t allocs = atomic_load_explicit(&b->allocs, memory_order_relaxed);
    if (epoch != 0 &&
        atomic_load_explicit(&b->kept_epoch, memory_order_acquire) == epoch)
      allocs = b->kept_allocs, frees = b->kept_frees;
    v[n++] = (bucket_count_t){b, allocs, frees};
  }
  *out = (bucket_snapshot_t){v, n, cap};
  return 0;
nomem:
  *out = (bucket_snapshot_t){NULL, 0, 0};
  errno = ENOMEM;
  return -1;
}

void bucket_snapshot_free(const prof_alloc_t *a, bucket_snapshot_t *s) {
  prof_free(a, s->counts, s->cap * sizeof *s->counts);
  *s = (bucket_snapshot_t){NULL, 0, 0};
}

uint64_t bucket_total(void) {
  return atomic_load_explicit(&created, memory_order_relaxed);
}

uint64_t bucket_dropped(void) {
  return atomic_load_explicit(&dropped, memory_order_relaxed);
}

void bucket_fork_prepare(void) { pthread_mutex_lock(&insert_lock); }
void bucket_fork_parent(void) { pthread_mutex_unlock(&insert_lock); }
void bucket_fork_child(void) { pthread_mutex_init(&insert_lock, NULL); }
