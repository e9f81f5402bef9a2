/*
 * sidetable — address → bucket for attach mode's header-less sampled
 * blocks: lock-free open addressing, in tables that are added and never
 * moved or freed.
 *
 * A table is 2^lg slots of {key, bucket}. A key is a block's address, or
 * EMPTY (never used), TOMB (used, free again) or BUSY (owned for a moment
 * by the thread changing the slot). A record for address `a` lives in one
 * of the WINDOW slots from its home, home(a) = a Fibonacci hash of a / 8;
 * a full window in every table adds a table twice the newest's size,
 * published with a compare-and-swap on `newest` (the loser of a race gives
 * its table back, unpublished). Records are never moved between tables,
 * so nothing is rehashed, and no table is ever freed: a reader may be
 * walking it. Memory is the arena's (arena_map, under HEAPPROF_MAX_MEM):
 * 16 bytes a slot, with a table for every doubling, at most twice the
 * newest table; at the default rate a 100 MB heap holds ~200 samples,
 * which the first table (1024 slots, 16 KiB) takes.
 *
 * Slot protocol. Every change of a slot goes through BUSY by a
 * compare-and-swap on its key, so one thread owns it while it writes:
 *   put:  EMPTY|TOMB → BUSY, bucket stored, → a (release)
 *   take: a → BUSY, bucket read, → TOMB (release)
 * The winner of a → BUSY is the only one to read that record, so a record
 * is counted freed once, whether the free, a realloc or forget takes it.
 * Lookups stop at the first EMPTY of a window: a put claims the first free
 * slot it can from home, every slot it passed was occupied or became so
 * (its compare-and-swap lost), and no slot ever becomes EMPTY again, so a
 * record is never behind an EMPTY.
 *
 * Why no lock. A free of a sampled block may come from a signal handler
 * that interrupted this thread inside heapprof, from a program's fork
 * prepare handler while heapprof's handlers hold their locks, or from a
 * thread inside heapprof (busy): a lock here would deadlock in each, and
 * preload mode's free takes none either. A fork needs no handler: a
 * thread that was inside an operation does not exist in the child, and
 * leaves at most a slot BUSY for good there (one slot lost) and, if it was
 * between the bit and the record, a bit without a record for a block whose
 * pointer no thread of the child holds.
 *
 * The bit and the record: put sets the bit, then publishes the record;
 * take and hold take the record, then clear the bit. A block's bit and
 * record are only changed by the thread that owns the block (the one
 * allocating, freeing or reallocating it), and by forget, whose
 * compare-and-swaps decide which of them gets a record.
 */
#include "sidetable.h"

#include <stdatomic.h>
#include <stdint.h>

#include "arena.h"
#include "sampled.h"

#define EMPTY ((uintptr_t)0)
#define TOMB ((uintptr_t)1)
#define BUSY ((uintptr_t)2)
#define WINDOW 16
#define FIRST_LG 10
#define LAST_LG 36 /* 2^36 slots: far past any HEAPPROF_MAX_MEM */
#define VA_BITS 47 /* the sampled map's reach (sampled.h) */

typedef struct slot {
  _Atomic uintptr_t key;
  bucket_t *_Atomic bucket;
} slot_t;

typedef struct table {
  struct table *older; /* the table before this one; set before publishing */
  unsigned lg;         /* 2^lg slots */
  slot_t slots[];
} table_t;

_Static_assert(sizeof(slot_t) == 16, "a slot is two words");

/* The newest table; each points at the one before. */
static table_t *_Atomic newest;

static size_t table_bytes(unsigned lg) {
  return sizeof(table_t) + ((size_t)1 << lg) * sizeof(slot_t);
}

/* Fibonacci hashing of the granule: 2^64 / φ spreads neighbouring blocks
 * (a stride of 16, 32 … bytes) over the whole table. */
static size_t home(uintptr_t a, unsigned lg) {
  return (size_t)(((uint64_t)(a >> 3) * 0x9e3779b97f4a7c15ULL) >> (64 - lg));
}

static uintptr_t key_of(const slot_t *s) {
  return atomic_load_explicit(&s->key, memory_order_acquire);
}

/* The slot holding `a`'s record in `t`, or NULL. */
static slot_t *find(table_t *t, uintptr_t a) {
  size_t mask = ((size_t)1 << t->lg) - 1, i = home(a, t->lg);
  for (int k = 0; k < WINDOW; k++, i = (i + 1) & mask) {
    uintptr_t key = key_of(&t->slots[i]);
    if (key == a)
      return &t->slots[i];
    if (key == EMPTY)
      return NULL;
  }
  return NULL;
}

/* Makes slot `s` BUSY if it holds `a`: true then, and the record is the
 * caller's. False: someone else took it first (forget). */
static int own(slot_t *s, uintptr_t a) {
  return atomic_compare_exchange_strong_explicit(
      &s->key, &a, BUSY, memory_order_acquire, memory_order_relaxed);
}

/* Finds `a`'s record and makes its slot BUSY: the slot (its bucket in
 * *b), or NULL if `a` has none. */
static slot_t *own_record(uintptr_t a, bucket_t **b) {
  for (table_t *t = atomic_load_explicit(&newest, memory_order_acquire);
       t != NULL; t = t->older) {
    slot_t *s = find(t, a);
    if (s != NULL) {
      if (!own(s, a))
        return NULL; /* a record lives in one slot: it is gone */
      *b = atomic_load_explicit(&s->bucket, memory_order_relaxed);
      return s;
    }
  }
  return NULL;
}

/* The record of `a` out of the table (slot freed): its bucket, or NULL. */
static bucket_t *remove_record(uintptr_t a) {
  bucket_t *b = NULL;
  slot_t *s = own_record(a, &b);
  if (s != NULL)
    atomic_store_explicit(&s->key, TOMB, memory_order_release);
  return b;
}

/* Puts (a, b) in the first free slot of `a`'s window in `t`; false if
 * the window is full. */
static int claim(table_t *t, uintptr_t a, bucket_t *b) {
  size_t mask = ((size_t)1 << t->lg) - 1, i = home(a, t->lg);
  for (int k = 0; k < WINDOW; k++, i = (i + 1) & mask) {
    slot_t *s = &t->slots[i];
    uintptr_t key = key_of(s);
    if ((key == EMPTY || key == TOMB) &&
        atomic_compare_exchange_strong_explicit(&s->key, &key, BUSY,
                                                memory_order_acquire,
                                                memory_order_relaxed)) {
      atomic_store_explicit(&s->bucket, b, memory_order_relaxed);
      atomic_store_explicit(&s->key, a, memory_order_release);
      return 1;
    }
  }
  return 0;
}

/* Adds a table after `seen` (the newest the caller saw), unless another
 * thread did first. False: no memory. */
static int grow(table_t *seen) {
  unsigned lg = seen != NULL ? seen->lg + 1 : FIRST_LG;
  if (lg > LAST_LG)
    return 0;
  table_t *t = arena_map(table_bytes(lg)); /* zeroed: every key EMPTY */
  if (t == NULL)
    return 0;
  t->lg = lg;
  t->older = seen;
  table_t *expected = seen;
  if (!atomic_compare_exchange_strong_explicit(&newest, &expected, t,
                                               memory_order_acq_rel,
                                               memory_order_acquire))
    arena_unmap(t, table_bytes(lg)); /* another thread grew it: use theirs */
  return 1;
}

/* Puts (a, b) in a table, adding one when every window is full. */
static int insert(uintptr_t a, bucket_t *b) {
  for (;;) {
    table_t *first = atomic_load_explicit(&newest, memory_order_acquire);
    for (table_t *t = first; t != NULL; t = t->older)
      if (claim(t, a, b))
        return 0;
    if (!grow(first))
      return -1;
  }
}

int sidetable_put(void *p, bucket_t *b, bucket_t **stale) {
  uintptr_t a = (uintptr_t)p;
  *stale = NULL;
  if (a <= BUSY || (a >> VA_BITS) != 0)
    return -1;
  /* Any record at `a` is stale: its block was freed behind our back. It
   * is looked for whatever the bit says (one window, ending at an EMPTY
   * slot, per table); its bit is then taken over by the new record. */
  *stale = remove_record(a);
  if (sampled_bare_mark(p) != 0)
    return -1; /* no bitmap for the region: no bit was ever set here */
  if (insert(a, b) != 0) {
    sampled_bare_unmark(p);
    return -1;
  }
  return 0;
}

bucket_t *sidetable_take(void *p) {
  bucket_t *b = remove_record((uintptr_t)p);
  sampled_bare_unmark(p);
  return b;
}

bucket_t *sidetable_hold(void *p, sidetable_hold_t *h) {
  h->p = p;
  h->bucket = NULL;
  h->slot = own_record((uintptr_t)p, &h->bucket);
  sampled_bare_unmark(p);
  return h->bucket;
}

void sidetable_release(sidetable_hold_t *h, int restore) {
  slot_t *s = h->slot;
  if (s == NULL)
    return;
  uintptr_t key = TOMB;
  /* The region's bitmap exists (the record's bit was in it) and is never
   * unmapped: the mark cannot fail. */
  if (restore && sampled_bare_mark(h->p) == 0)
    key = (uintptr_t)h->p;
  atomic_store_explicit(&s->key, key, memory_order_release);
  h->slot = NULL;
}

void sidetable_forget(void (*freed)(bucket_t *b)) {
  for (table_t *t = atomic_load_explicit(&newest, memory_order_acquire);
       t != NULL; t = t->older)
    for (size_t i = 0; i < (size_t)1 << t->lg; i++) {
      slot_t *s = &t->slots[i];
      uintptr_t key = key_of(s);
      if (key <= BUSY || !own(s, key))
        continue;
      bucket_t *b = atomic_load_explicit(&s->bucket, memory_order_relaxed);
      atomic_store_explicit(&s->key, TOMB, memory_order_release);
      sampled_bare_unmark((void *)key);
      if (b != NULL)
        freed(b);
    }
}

size_t sidetable_count(void) {
  size_t n = 0;
  for (table_t *t = atomic_load_explicit(&newest, memory_order_acquire);
       t != NULL; t = t->older)
    for (size_t i = 0; i < (size_t)1 << t->lg; i++)
      n += key_of(&t->slots[i]) > BUSY;
  return n;
}
