/*
 * gomap — Go's runtime map (Go 1.19, runtime/map.go) rewritten in C: an
 * array of 2^B buckets of 8 slots with chained overflow buckets, doubled
 * when the average load passes 6.5 entries per bucket and evacuated
 * incrementally.
 *
 * Central invariant: while the map grows from 2^(B-1) to 2^B buckets,
 * every entry is in exactly one place. If old bucket o is not yet
 * evacuated, its entries are all in o's old chain; once it is, they are in
 * new bucket o ("X") or o + 2^(B-1) ("Y"), chosen by hash bit B-1. New
 * buckets X and Y receive nothing before o is evacuated, because every
 * insert first evacuates the old bucket of its key. Lookups and deletes
 * therefore search o's old chain while it is unevacuated and the new chain
 * afterwards, and neither ever needs both.
 *
 * A bucket is laid out as Go's bmap: 8 tophash bytes, the 8 keys, the 8
 * values, then the overflow pointer. With 8-byte keys and values that is
 * 8 + 64 + 64 + 8 = 144 bytes. Keys and values are packed by kind, not
 * interleaved, so no padding is needed for types aligned to at most 8.
 *
 * A tophash byte is the top 8 bits of the key's hash, raised by
 * MIN_TOPHASH when it would collide with the reserved marks: EMPTY_REST (this
 * slot and every later one in the chain are empty, so a search may stop),
 * EMPTY_ONE (empty, but live entries may follow) and EVACUATED (in an old
 * bucket whose entries have moved to the new array). Go distinguishes
 * evacuation to X and to Y so that iterators may run across a growth;
 * gomap forbids mutation during iteration and needs only one mark.
 *
 * Overflow buckets: Go carves 2^(B-4) spare overflow buckets out of each
 * new array. gomap allocates each overflow bucket on its own instead, so
 * that each can be recycled alone: when an old chain is evacuated its
 * overflow buckets go to the map's free list (up to FREE_MAX of them; the
 * rest are freed), from which later evacuations and inserts take before
 * calling calloc. Deletes never unlink an overflow bucket: an emptied chain
 * keeps its buckets until its array is evacuated or the map is reset.
 *
 * Growth on "too many overflow buckets" (as many as buckets, B capped at
 * 15) also doubles here; Go instead rebuilds at the same size. Doubling
 * keeps one code path and costs memory only for pathological churn.
 */
#include "gomap.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 8 /* Go's bucketCnt */

/* Load factor 6.5 = LOAD_NUM / LOAD_DEN entries per bucket on average. A
 * map of 2^17 buckets holds up to 13 * 2^16 = 851,968 entries; inserting
 * the 851,969th starts the doubling to 2^18. */
#define LOAD_NUM 13
#define LOAD_DEN 2

/* Free overflow buckets kept for the next evacuation or insert. Growth
 * releases more than it takes, old chains being loaded 6.5 per bucket and
 * new ones 3.25: with keys 0..851,968 the doubling to 2^18 buckets takes
 * the overflow buckets in use from 27,383 to 3,137. The surplus goes back
 * to malloc at once, as Go's collector would reclaim the old chains. */
#define FREE_MAX 64

/* Keys and values are stored inline, so their size bounds the bucket. */
#define MAX_SLOT_BYTES 4096
/* Keeps LOAD_NUM * 2^lg / LOAD_DEN and every shift below inside size_t. */
#define MAX_LG (sizeof(size_t) * 8 - 8)

enum { EMPTY_REST = 0, EMPTY_ONE = 1, EVACUATED = 2, MIN_TOPHASH = 3 };

/* Followed in memory by the keys, the values and the overflow pointer. */
typedef struct bucket {
  uint8_t tophash[SLOTS];
} bucket_t;

typedef struct slot {
  bucket_t *b; /* NULL: no slot */
  unsigned i;
} slot_t;

struct gomap {
  gomap_type_t type;
  uint64_t seed;
  size_t bucket_bytes;
  size_t values_offset;   /* of value 0 within a bucket */
  size_t overflow_offset; /* of the overflow pointer within a bucket */
  size_t count;           /* live entries */
  unsigned lg_buckets;    /* B */
  bucket_t *buckets;      /* 2^B buckets; NULL until needed (then B = 0) */
  bucket_t *oldbuckets;   /* 2^(B-1) buckets while growing, else NULL */
  size_t nevacuate;       /* old buckets below this are all evacuated */
  size_t nevacuated;      /* old buckets evacuated, in any order */
  size_t noverflow;       /* overflow buckets the current array has taken
                             since it was made: the second growth trigger */
  size_t overflow_in_use; /* linked into an old or a current chain */
  size_t overflow_free;   /* on free_list */
  bucket_t *free_list;    /* linked through their overflow pointers */
  uint64_t version;       /* bumped by every mutating call, for iterators */
};

/* --- Allocation: one function per kind of memory, so that a heap
 * profile's stack names the structure that holds it. noclone keeps the
 * names free of .constprop suffixes, and the empty asm after calloc keeps
 * the call from becoming a tail jump that would drop the frame. --- */

#define ALLOC_FN __attribute__((noinline, noclone))

static ALLOC_FN gomap_t *gomap_alloc_map(void) {
  gomap_t *m = calloc(1, sizeof *m);
  __asm__ __volatile__("" : "+r"(m));
  return m;
}

static ALLOC_FN bucket_t *gomap_alloc_buckets(size_t n, size_t bucket_bytes) {
  bucket_t *a = calloc(n, bucket_bytes);
  __asm__ __volatile__("" : "+r"(a));
  return a;
}

static ALLOC_FN bucket_t *gomap_alloc_overflow(size_t bucket_bytes) {
  bucket_t *b = calloc(1, bucket_bytes);
  __asm__ __volatile__("" : "+r"(b));
  return b;
}

/* --- Bucket geometry --- */

static size_t nbuckets(unsigned lg) { return (size_t)1 << lg; }

static bool growing(const gomap_t *m) { return m->oldbuckets != NULL; }

static size_t old_nbuckets(const gomap_t *m) {
  return nbuckets(m->lg_buckets - 1);
}

static bucket_t *bucket_at(const gomap_t *m, bucket_t *array, size_t i) {
  return (bucket_t *)((char *)array + i * m->bucket_bytes);
}

static void *key_at(const gomap_t *m, bucket_t *b, unsigned i) {
  return (char *)b + SLOTS + i * m->type.key_size;
}

static void *value_at(const gomap_t *m, bucket_t *b, unsigned i) {
  return (char *)b + m->values_offset + i * m->type.value_size;
}

static bucket_t *overflow_of(const gomap_t *m, bucket_t *b) {
  bucket_t *next;
  memcpy(&next, (char *)b + m->overflow_offset, sizeof next);
  return next;
}

static void set_overflow(const gomap_t *m, bucket_t *b, bucket_t *next) {
  memcpy((char *)b + m->overflow_offset, &next, sizeof next);
}

static uint8_t tophash(uint64_t hash) {
  uint8_t top = (uint8_t)(hash >> 56);
  return top < MIN_TOPHASH ? (uint8_t)(top + MIN_TOPHASH) : top;
}

static bool is_empty(uint8_t top) { return top <= EMPTY_ONE; }

static bool evacuated(const bucket_t *b) { return b->tophash[0] == EVACUATED; }

/* Go's overLoadFactor: more than 8 entries and above 6.5 per bucket. */
static bool over_load(size_t count, unsigned lg) {
  return count > SLOTS && count > LOAD_NUM * (nbuckets(lg) / LOAD_DEN);
}

/* Go's tooManyOverflowBuckets: as many overflow buckets as buckets, with
 * B capped at 15 so that huge maps still react to long chains. */
static bool too_many_overflow(const gomap_t *m) {
  unsigned lg = m->lg_buckets < 15 ? m->lg_buckets : 15;
  return m->noverflow >= nbuckets(lg);
}

/* --- Overflow buckets and their free list --- */

static void push_free(gomap_t *m, bucket_t *b) {
  set_overflow(m, b, m->free_list);
  m->free_list = b;
  m->overflow_free++;
}

/* A zeroed overflow bucket from the free list, else from calloc. */
static bucket_t *take_overflow(gomap_t *m) {
  bucket_t *b = m->free_list;
  if (b != NULL) {
    m->free_list = overflow_of(m, b);
    m->overflow_free--;
    memset(b, 0, m->bucket_bytes);
  } else if ((b = gomap_alloc_overflow(m->bucket_bytes)) == NULL) {
    return NULL;
  }
  m->overflow_in_use++;
  return b;
}

/* Chains a fresh overflow bucket after `tail`, the end of a current chain. */
static bucket_t *append_overflow(gomap_t *m, bucket_t *tail) {
  bucket_t *b = take_overflow(m);
  if (b != NULL) {
    set_overflow(m, tail, b);
    m->noverflow++;
  }
  return b;
}

static int reserve_overflow(gomap_t *m, size_t n) {
  while (m->overflow_free < n) {
    bucket_t *b = gomap_alloc_overflow(m->bucket_bytes);
    if (b == NULL)
      return -ENOMEM;
    push_free(m, b);
  }
  return 0;
}

static size_t chain_overflows(const gomap_t *m, bucket_t *b) {
  size_t n = 0;
  while ((b = overflow_of(m, b)) != NULL)
    n++;
  return n;
}

/* Unlinks the overflow buckets after `head`: up to FREE_MAX wait on the
 * free list, the rest are freed. */
static void release_chain(gomap_t *m, bucket_t *head) {
  bucket_t *b = overflow_of(m, head);
  set_overflow(m, head, NULL);
  while (b != NULL) {
    bucket_t *next = overflow_of(m, b);
    if (m->overflow_free < FREE_MAX)
      push_free(m, b);
    else
      free(b);
    m->overflow_in_use--;
    b = next;
  }
}

static void free_chains(const gomap_t *m, bucket_t *array, size_t n) {
  for (size_t i = 0; i < n; i++) {
    bucket_t *b = overflow_of(m, bucket_at(m, array, i));
    while (b != NULL) {
      bucket_t *next = overflow_of(m, b);
      free(b);
      b = next;
    }
  }
}

/* --- Slots --- */

static void slot_store(const gomap_t *m, slot_t s, uint8_t top,
                       const void *key, const void *value) {
  s.b->tophash[s.i] = top;
  memcpy(key_at(m, s.b, s.i), key, m->type.key_size);
  if (value != NULL)
    memcpy(value_at(m, s.b, s.i), value, m->type.value_size);
  else
    memset(value_at(m, s.b, s.i), 0, m->type.value_size);
}

/* The slot holding `key` in the chain from `b`, or {NULL}. */
static slot_t find(const gomap_t *m, bucket_t *b, uint8_t top,
                   const void *key) {
  for (; b != NULL; b = overflow_of(m, b)) {
    for (unsigned i = 0; i < SLOTS; i++) {
      if (b->tophash[i] == top && m->type.equal(key, key_at(m, b, i)))
        return (slot_t){b, i};
      if (b->tophash[i] == EMPTY_REST)
        return (slot_t){NULL, 0};
    }
  }
  return (slot_t){NULL, 0};
}

/* As find(), and when `key` is absent also reports the first empty slot
 * in `*hole` ({NULL} if the chain is full) and the chain's last bucket. */
static slot_t find_for_insert(const gomap_t *m, bucket_t *b, uint8_t top,
                              const void *key, slot_t *hole,
                              bucket_t **tail) {
  *hole = (slot_t){NULL, 0};
  for (; b != NULL; b = overflow_of(m, b)) {
    *tail = b;
    for (unsigned i = 0; i < SLOTS; i++) {
      uint8_t t = b->tophash[i];
      if (t == top && m->type.equal(key, key_at(m, b, i)))
        return (slot_t){b, i};
      if (is_empty(t) && hole->b == NULL)
        *hole = (slot_t){b, i};
      if (t == EMPTY_REST)
        return (slot_t){NULL, 0};
    }
  }
  return (slot_t){NULL, 0};
}

/* The chain that holds the entries with this hash (central invariant). */
static bucket_t *home_chain(const gomap_t *m, uint64_t hash) {
  if (growing(m)) {
    bucket_t *old =
        bucket_at(m, m->oldbuckets, hash & (old_nbuckets(m) - 1));
    if (!evacuated(old))
      return old;
  }
  return bucket_at(m, m->buckets, hash & (nbuckets(m->lg_buckets) - 1));
}

/* --- Growth and evacuation --- */

static int grow(gomap_t *m) {
  if (m->lg_buckets >= MAX_LG)
    return -ENOMEM;
  bucket_t *array =
      gomap_alloc_buckets(nbuckets(m->lg_buckets + 1), m->bucket_bytes);
  if (array == NULL)
    return -ENOMEM;
  m->oldbuckets = m->buckets;
  m->buckets = array;
  m->lg_buckets++;
  m->nevacuate = 0;
  m->nevacuated = 0;
  m->noverflow = 0;
  return 0;
}

/* Where an evacuated chain is being written: X or Y. */
typedef struct dest {
  bucket_t *b;
  unsigned i;
} dest_t;

/* Cannot fail: evacuate() reserved the overflow buckets beforehand. */
static void dest_put(gomap_t *m, dest_t *d, uint8_t top, const void *key,
                     const void *value) {
  if (d->i == SLOTS) {
    d->b = append_overflow(m, d->b);
    d->i = 0;
  }
  slot_store(m, (slot_t){d->b, d->i}, top, key, value);
  d->i++;
}

static void move_entries(gomap_t *m, bucket_t *b, dest_t xy[2],
                         size_t y_bit) {
  for (unsigned i = 0; i < SLOTS; i++) {
    if (is_empty(b->tophash[i]))
      continue;
    const void *key = key_at(m, b, i);
    bool to_y = (m->type.hash(key, m->seed) & y_bit) != 0;
    dest_put(m, &xy[to_y], b->tophash[i], key, value_at(m, b, i));
  }
}

/* Records old bucket `o` as evacuated; frees the old array after the last. */
static void note_evacuated(gomap_t *m, size_t o) {
  size_t n = old_nbuckets(m);
  memset(bucket_at(m, m->oldbuckets, o)->tophash, EVACUATED, SLOTS);
  m->nevacuated++;
  while (m->nevacuate < n &&
         evacuated(bucket_at(m, m->oldbuckets, m->nevacuate)))
    m->nevacuate++;
  if (m->nevacuated == n) {
    free(m->oldbuckets);
    m->oldbuckets = NULL;
    m->nevacuate = 0;
    m->nevacuated = 0;
  }
}

/*
 * Moves old bucket o's chain into new buckets o (X) and o + 2^(B-1) (Y),
 * which are still empty (central invariant). A chain of c buckets holds
 * at most 8c entries, and two fresh chains for nx + ny <= 8c of them need
 * ceil(nx/8) + ceil(ny/8) - 2 <= c - 1 overflow buckets: 16 entries in
 * 2 buckets split 9/7 need 1. Reserving c - 1 first means nothing can fail
 * halfway; afterwards the old chain's own c - 1 are released.
 */
static int evacuate(gomap_t *m, size_t o) {
  bucket_t *old = bucket_at(m, m->oldbuckets, o);
  if (evacuated(old))
    return 0;
  int rc = reserve_overflow(m, chain_overflows(m, old));
  if (rc != 0)
    return rc;
  size_t y_bit = old_nbuckets(m);
  dest_t xy[2] = {{bucket_at(m, m->buckets, o), 0},
                  {bucket_at(m, m->buckets, o + y_bit), 0}};
  for (bucket_t *b = old; b != NULL; b = overflow_of(m, b))
    move_entries(m, b, xy, y_bit);
  release_chain(m, old);
  note_evacuated(m, o);
  return 0;
}

/* Go's growWork: evacuates the old bucket of `hash` (required before a
 * write to its new buckets), then one more in order so that growth ends
 * even if writes keep hitting the same buckets. Only the first counts. */
static int grow_work(gomap_t *m, uint64_t hash) {
  int rc = evacuate(m, hash & (old_nbuckets(m) - 1));
  if (rc == 0 && growing(m))
    (void)evacuate(m, m->nevacuate);
  return rc;
}

/* --- Delete helpers --- */

static bool next_is_rest(const gomap_t *m, bucket_t *b, unsigned i) {
  if (i + 1 < SLOTS)
    return b->tophash[i + 1] == EMPTY_REST;
  bucket_t *next = overflow_of(m, b);
  return next == NULL || next->tophash[0] == EMPTY_REST;
}

static bucket_t *prev_in_chain(const gomap_t *m, bucket_t *head,
                               bucket_t *b) {
  while (overflow_of(m, head) != b)
    head = overflow_of(m, head);
  return head;
}

/* After slot s of the chain from `head` became empty: if nothing live
 * follows it, turns it and the EMPTY_ONE slots before it into EMPTY_REST,
 * so that searches stop there (Go's mapdelete does the same walk). */
static void settle_empty(const gomap_t *m, bucket_t *head, slot_t s) {
  if (!next_is_rest(m, s.b, s.i))
    return;
  for (;;) {
    s.b->tophash[s.i] = EMPTY_REST;
    if (s.i > 0) {
      s.i--;
    } else if (s.b == head) {
      return;
    } else {
      s.b = prev_in_chain(m, head, s.b);
      s.i = SLOTS - 1;
    }
    if (s.b->tophash[s.i] != EMPTY_ONE)
      return;
  }
}

/* --- Public API --- */

static bool type_ok(const gomap_type_t *t) {
  return t != NULL && t->hash != NULL && t->equal != NULL &&
         t->key_size > 0 && t->key_size <= MAX_SLOT_BYTES &&
         t->value_size <= MAX_SLOT_BYTES;
}

static unsigned lg_for_hint(size_t hint) {
  unsigned lg = 0;
  while (lg < MAX_LG && over_load(hint, lg))
    lg++;
  return lg;
}

gomap_t *gomap_new_seeded(const gomap_type_t *type, size_t hint,
                          uint64_t seed) {
  if (!type_ok(type)) {
    errno = EINVAL;
    return NULL;
  }
  gomap_t *m = gomap_alloc_map();
  if (m == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  m->type = *type;
  m->seed = seed;
  m->values_offset = SLOTS + SLOTS * type->key_size;
  m->overflow_offset = m->values_offset + SLOTS * type->value_size;
  m->bucket_bytes = m->overflow_offset + sizeof(bucket_t *);
  m->lg_buckets = lg_for_hint(hint);
  if (m->lg_buckets > 0) {
    m->buckets = gomap_alloc_buckets(nbuckets(m->lg_buckets), m->bucket_bytes);
    if (m->buckets == NULL) {
      free(m);
      errno = ENOMEM;
      return NULL;
    }
  }
  return m;
}

gomap_t *gomap_new(const gomap_type_t *type, size_t hint) {
  return gomap_new_seeded(type, hint, 0x243f6a8885a308d3ULL);
}

void gomap_reset(gomap_t *m) {
  m->version++;
  if (m->buckets != NULL) {
    free_chains(m, m->buckets, nbuckets(m->lg_buckets));
    free(m->buckets);
  }
  if (growing(m)) {
    free_chains(m, m->oldbuckets, old_nbuckets(m));
    free(m->oldbuckets);
  }
  while (m->free_list != NULL) {
    bucket_t *next = overflow_of(m, m->free_list);
    free(m->free_list);
    m->free_list = next;
  }
  m->buckets = m->oldbuckets = NULL;
  m->count = m->nevacuate = m->nevacuated = m->noverflow = 0;
  m->overflow_in_use = m->overflow_free = 0;
  m->lg_buckets = 0;
}

void gomap_free(gomap_t *m) {
  if (m == NULL)
    return;
  gomap_reset(m);
  free(m);
}

static int insert_hashed(gomap_t *m, uint64_t hash, const void *key,
                         const void *value) {
  if (growing(m)) {
    int rc = grow_work(m, hash);
    if (rc != 0)
      return rc;
  }
  uint8_t top = tophash(hash);
  bucket_t *head =
      bucket_at(m, m->buckets, hash & (nbuckets(m->lg_buckets) - 1));
  slot_t hole;
  bucket_t *tail;
  slot_t s = find_for_insert(m, head, top, key, &hole, &tail);
  if (s.b != NULL) {
    slot_store(m, s, top, key, value);
    return 0;
  }
  if (!growing(m) && (over_load(m->count + 1, m->lg_buckets) ||
                      too_many_overflow(m))) {
    int rc = grow(m);
    return rc != 0 ? rc : insert_hashed(m, hash, key, value);
  }
  if (hole.b == NULL && (hole.b = append_overflow(m, tail)) == NULL)
    return -ENOMEM;
  slot_store(m, hole, top, key, value);
  m->count++;
  return 0;
}

int gomap_insert(gomap_t *m, const void *key, const void *value) {
  m->version++;
  if (m->buckets == NULL) {
    m->buckets = gomap_alloc_buckets(nbuckets(m->lg_buckets), m->bucket_bytes);
    if (m->buckets == NULL)
      return -ENOMEM;
  }
  return insert_hashed(m, m->type.hash(key, m->seed), key, value);
}

void *gomap_lookup(const gomap_t *m, const void *key) {
  if (m->count == 0)
    return NULL;
  uint64_t hash = m->type.hash(key, m->seed);
  slot_t s = find(m, home_chain(m, hash), tophash(hash), key);
  return s.b != NULL ? value_at(m, s.b, s.i) : NULL;
}

bool gomap_delete(gomap_t *m, const void *key) {
  m->version++;
  if (m->count == 0)
    return false;
  uint64_t hash = m->type.hash(key, m->seed);
  if (growing(m))
    (void)grow_work(m, hash); /* on failure the old chain stays home */
  bucket_t *head = home_chain(m, hash);
  slot_t s = find(m, head, tophash(hash), key);
  if (s.b == NULL)
    return false;
  memset(key_at(m, s.b, s.i), 0, m->type.key_size);
  memset(value_at(m, s.b, s.i), 0, m->type.value_size);
  s.b->tophash[s.i] = EMPTY_ONE;
  settle_empty(m, head, s);
  m->count--;
  return true;
}

size_t gomap_len(const gomap_t *m) { return m->count; }

void gomap_stats(const gomap_t *m, gomap_stats_t *out) {
  size_t n = m->buckets != NULL ? nbuckets(m->lg_buckets) : 0;
  size_t old = growing(m) ? old_nbuckets(m) : 0;
  size_t noverflow = m->overflow_in_use + m->overflow_free;
  *out = (gomap_stats_t){
      .count = m->count,
      .lg_buckets = m->lg_buckets,
      .nbuckets = n,
      .bucket_bytes = m->bucket_bytes,
      .overflow_in_use = m->overflow_in_use,
      .overflow_free = m->overflow_free,
      .array_bytes = (n + old) * m->bucket_bytes,
      .overflow_bytes = noverflow * m->bucket_bytes,
      .growing = old != 0,
      .old_nbuckets = old,
      .evacuated = growing(m) ? m->nevacuated : 0,
  };
}

/* --- Iteration --- */

/* The chain to walk at `step` in [0, 2^B): new bucket `step`; but while
 * its old bucket o is unevacuated, o's old chain at step o and nothing at
 * its Y twin step o + 2^(B-1). */
static bucket_t *chain_at(const gomap_t *m, size_t step) {
  if (growing(m)) {
    size_t o = step & (old_nbuckets(m) - 1);
    bucket_t *old = bucket_at(m, m->oldbuckets, o);
    if (!evacuated(old))
      return step == o ? old : NULL;
  }
  return bucket_at(m, m->buckets, step);
}

void gomap_iter_init(gomap_iter_t *it, gomap_t *m) {
  *it = (gomap_iter_t){.m = m, .version = m->version};
}

/* Advances within the current chain to its next live slot, if any. */
static bool iter_in_chain(gomap_iter_t *it, slot_t *out) {
  bucket_t *b;
  while ((b = it->bucket) != NULL) {
    if (it->slot == SLOTS) {
      it->bucket = overflow_of(it->m, b);
      it->slot = 0;
      continue;
    }
    unsigned i = it->slot++;
    if (b->tophash[i] == EMPTY_REST) {
      it->bucket = NULL; /* the rest of the chain is empty */
    } else if (!is_empty(b->tophash[i])) {
      *out = (slot_t){b, i};
      return true;
    }
  }
  return false;
}

bool gomap_iter_next(gomap_iter_t *it, const void **key, void **value) {
  const gomap_t *m = it->m;
  assert(it->version == m->version && "gomap changed during iteration");
  slot_t s;
  while (!iter_in_chain(it, &s)) {
    if (m->buckets == NULL || it->step >= nbuckets(m->lg_buckets))
      return false;
    it->bucket = chain_at(m, it->step++);
    it->slot = 0;
  }
  if (key != NULL)
    *key = key_at(m, s.b, s.i);
  if (value != NULL)
    *value = value_at(m, s.b, s.i);
  return true;
}

/* --- Ready-made hash and equality functions --- */

/* murmur3's finalizer: a bijection in which every output bit depends on
 * every input bit, so both the bucket bits and the tophash are mixed. */
static uint64_t fmix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

/* FNV-1a over the bytes, seeded, then finalized. */
uint64_t gomap_hash_bytes(const void *p, size_t n, uint64_t seed) {
  const unsigned char *s = p;
  uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  for (size_t i = 0; i < n; i++) {
    h ^= s[i];
    h *= 0x100000001b3ULL;
  }
  return fmix64(h ^ n);
}

uint64_t gomap_hash_u64(const void *key, uint64_t seed) {
  uint64_t k;
  memcpy(&k, key, sizeof k);
  return fmix64(k ^ seed ^ 0x9e3779b97f4a7c15ULL);
}

bool gomap_equal_u64(const void *a, const void *b) {
  return memcmp(a, b, sizeof(uint64_t)) == 0;
}

static const char *str_of(const void *key) {
  const char *s;
  memcpy(&s, key, sizeof s);
  return s;
}

uint64_t gomap_hash_str(const void *key, uint64_t seed) {
  const char *s = str_of(key);
  return gomap_hash_bytes(s, strlen(s), seed);
}

bool gomap_equal_str(const void *a, const void *b) {
  return strcmp(str_of(a), str_of(b)) == 0;
}
