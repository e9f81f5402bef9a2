/*
 * sampled — the live-sample records and the bitmap in front of them.
 *
 * Records live in SHARDS open-addressing tables (linear probing, backward
 * shift on delete, so no tombstones), picked by a hash of the address. Each
 * shard's mutex protects its table; a block's record is only ever touched
 * by the thread that allocates it and later the one that frees it, so the
 * shards see little contention even at rate 1. A table grows by doubling
 * at 3/4 load into fresh arena pages; the old pages are given back.
 *
 * Bits in the sampled map are set after the record is inserted and cleared
 * before it is removed, each with an atomic read-modify-write because
 * neighbouring blocks of other threads share the word.
 */
#include "sampled.h"

#include <pthread.h>
#include <string.h>

#include "arena.h"

#define SHARDS 64
#define MIN_SLOTS 1024
#define REGION_BITMAP_BYTES \
  (((size_t)1 << (SAMPLED_REGION_SHIFT - SAMPLED_GRANULE_SHIFT)) / 8)

typedef struct slot {
  uintptr_t addr; /* 0 = empty */
  bucket_t *bucket;
} slot_t;

typedef struct shard {
  pthread_mutex_t lock; /* protects everything below */
  slot_t *slots;
  size_t mask; /* slots - 1; slots is a power of two */
  size_t used;
  char pad[64 - sizeof(pthread_mutex_t) % 64];
} shard_t;

_Atomic(uint64_t *) sampled_regions[SAMPLED_REGIONS];
static shard_t shards[SHARDS];
static _Atomic size_t live;

static uint64_t addr_hash(uintptr_t a) {
  uint64_t h = (a >> SAMPLED_GRANULE_SHIFT) * 0x9e3779b97f4a7c15ULL;
  return h ^ (h >> 32);
}

static shard_t *shard_of(uint64_t h) { return &shards[h >> 58]; }

/* ---- the bitmap ---- */

static _Atomic uint64_t *bit_word(uintptr_t a, uint64_t *bits, int *shift) {
  size_t bit = (a & (((uintptr_t)1 << SAMPLED_REGION_SHIFT) - 1)) >>
               SAMPLED_GRANULE_SHIFT;
  *shift = bit & 63;
  return (_Atomic uint64_t *)&bits[bit >> 6];
}

/* The region bitmap for `a`, mapped on first use; NULL if out of range or
 * out of memory. */
static uint64_t *region_bits(uintptr_t a) {
  size_t region = a >> SAMPLED_REGION_SHIFT;
  if (region >= SAMPLED_REGIONS)
    return NULL;
  uint64_t *bits =
      atomic_load_explicit(&sampled_regions[region], memory_order_acquire);
  if (bits != NULL)
    return bits;
  uint64_t *fresh = arena_map(REGION_BITMAP_BYTES);
  if (fresh == NULL)
    return NULL;
  if (atomic_compare_exchange_strong_explicit(&sampled_regions[region], &bits,
                                              fresh, memory_order_acq_rel,
                                              memory_order_acquire))
    return fresh;
  arena_unmap(fresh, REGION_BITMAP_BYTES); /* another thread won */
  return bits;
}

static void bit_set(uintptr_t a, uint64_t *bits) {
  int shift;
  _Atomic uint64_t *w = bit_word(a, bits, &shift);
  atomic_fetch_or_explicit(w, (uint64_t)1 << shift, memory_order_release);
}

static void bit_clear(uintptr_t a) {
  size_t region = a >> SAMPLED_REGION_SHIFT;
  if (region >= SAMPLED_REGIONS)
    return;
  uint64_t *bits =
      atomic_load_explicit(&sampled_regions[region], memory_order_acquire);
  int shift;
  _Atomic uint64_t *w = bit_word(a, bits, &shift);
  atomic_fetch_and_explicit(w, ~((uint64_t)1 << shift), memory_order_relaxed);
}

/* ---- the record tables ---- */

static int grow_locked(shard_t *s) {
  size_t nslots = s->slots ? (s->mask + 1) * 2 : MIN_SLOTS;
  slot_t *fresh = arena_map(nslots * sizeof *fresh);
  if (fresh == NULL)
    return -1;
  for (size_t i = 0; s->slots != NULL && i <= s->mask; i++) {
    if (s->slots[i].addr == 0)
      continue;
    size_t j = addr_hash(s->slots[i].addr) & (nslots - 1);
    while (fresh[j].addr != 0)
      j = (j + 1) & (nslots - 1);
    fresh[j] = s->slots[i];
  }
  if (s->slots != NULL)
    arena_unmap(s->slots, (s->mask + 1) * sizeof *s->slots);
  s->slots = fresh;
  s->mask = nslots - 1;
  return 0;
}

static int insert_locked(shard_t *s, uintptr_t a, uint64_t h, bucket_t *b) {
  if (s->slots == NULL || (s->used + 1) * 4 > (s->mask + 1) * 3)
    if (grow_locked(s) != 0)
      return -1;
  size_t i = h & s->mask;
  while (s->slots[i].addr != 0)
    i = (i + 1) & s->mask;
  s->slots[i] = (slot_t){a, b};
  s->used++;
  return 0;
}

/* Deletes slot i, shifting later members of its probe run back. */
static void delete_locked(shard_t *s, size_t i) {
  size_t j = i;
  for (;;) {
    j = (j + 1) & s->mask;
    if (s->slots[j].addr == 0)
      break;
    size_t home = addr_hash(s->slots[j].addr) & s->mask;
    /* Move j into the hole at i unless its home lies cyclically in (i, j]. */
    if (((j - home) & s->mask) >= ((j - i) & s->mask)) {
      s->slots[i] = s->slots[j];
      i = j;
    }
  }
  s->slots[i] = (slot_t){0, NULL};
  s->used--;
}

int sampled_add(void *p, bucket_t *b) {
  uintptr_t a = (uintptr_t)p;
  uint64_t *bits = region_bits(a);
  if (bits == NULL && (a >> SAMPLED_REGION_SHIFT) < SAMPLED_REGIONS)
    return -1;
  uint64_t h = addr_hash(a);
  shard_t *s = shard_of(h);
  pthread_mutex_lock(&s->lock);
  int rc = insert_locked(s, a, h, b);
  pthread_mutex_unlock(&s->lock);
  if (rc != 0)
    return -1;
  if (bits != NULL)
    bit_set(a, bits);
  atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
  return 0;
}

bucket_t *sampled_take(void *p) {
  uintptr_t a = (uintptr_t)p;
  uint64_t h = addr_hash(a);
  shard_t *s = shard_of(h);
  bucket_t *b = NULL;
  pthread_mutex_lock(&s->lock);
  if (s->slots != NULL) {
    for (size_t i = h & s->mask; s->slots[i].addr != 0; i = (i + 1) & s->mask) {
      if (s->slots[i].addr == a) {
        b = s->slots[i].bucket;
        bit_clear(a);
        delete_locked(s, i);
        break;
      }
    }
  }
  pthread_mutex_unlock(&s->lock);
  if (b != NULL)
    atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
  return b;
}

size_t sampled_live(void) {
  return atomic_load_explicit(&live, memory_order_relaxed);
}

void sampled_fork_prepare(void) {
  for (int i = 0; i < SHARDS; i++)
    pthread_mutex_lock(&shards[i].lock);
}

void sampled_fork_parent(void) {
  for (int i = SHARDS - 1; i >= 0; i--)
    pthread_mutex_unlock(&shards[i].lock);
}

void sampled_fork_child(void) {
  for (int i = 0; i < SHARDS; i++)
    pthread_mutex_init(&shards[i].lock, NULL);
}
