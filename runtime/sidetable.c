/*
 * sidetable — address → bucket for attach mode's header-less sampled
 * blocks: lock-free hashing into lines of four slots, in tables that are
 * added and never moved or freed.
 *
 * A table is 2^lg slots of {key, bucket}, in lines of LINE (4) slots: 64
 * bytes, one cache line. A key is a block's address, EMPTY or BUSY (owned
 * for a moment by the thread changing the slot). The record of address
 * `a` lives in any slot of a's line, line(a) = a Fibonacci hash of a / 8,
 * in one of the tables; a lookup reads that line's four keys in each
 * table, newest first, and nothing else. Nothing probes past a line, so a
 * slot given up is EMPTY again at once: there are no tombstones, and a
 * put or a take reads one line a table however long the program has
 * churned (a table of 16-slot probe windows that turned every used slot
 * into a tombstone had each lookup walk every window whole: 800
 * instructions a sample at rate 4096). A put finds a's line full in
 * every table (all four of its slots live) only when the tables are
 * nearly full: it then adds a table twice the newest's size, published
 * with a compare-and-swap on `newest` (the loser of a race gives its table
 * back, unpublished). Records are never moved between tables, so nothing
 * is rehashed, and no table is ever freed: a reader may be walking it.
 * Puts fill the newest table first, so the older ones empty as their
 * blocks are freed and a lookup mostly ends in the newest. Memory is the
 * arena's (arena_map, under HEAPPROF_MAX_MEM): 16 bytes a slot, with a
 * table for every doubling, at most twice the newest table; at the default
 * rate a 100 MB heap holds ~200 samples, which the first table (1024
 * slots, 16 KiB) takes; at rate 1, ~90,000 records (test_sidetable_churn,
 * alloc_bench's live set) end in eight tables, 2^17 slots the newest and
 * 4 MiB in all, 46 bytes a record, where a new table was last added.
 *
 * Slot protocol. A slot changes by compare-and-swaps on its key, so that
 * one thread at a time decides its fate:
 *   put:    EMPTY → BUSY, bucket stored, → a (release)
 *   take:   bucket read, a → EMPTY
 *   hold:   a → BUSY, bucket read; release: → a or → EMPTY
 *   forget: a → BUSY, bucket read, → EMPTY
 * The winner of the swap out of `a` is the only one to count that record,
 * so a record is counted freed once, whether the free, a realloc or forget
 * takes it. Take reads the bucket before its swap: if the swap succeeds
 * the slot held `a`'s record throughout, since the only other change of
 * that record is forget's, which goes through BUSY, and a new record of
 * `a` can only be put by a thread that `a` was handed to, while the taker
 * is still freeing it.
 *
 * Why no lock. A free of a sampled block may come from a signal handler
 * that interrupted this thread inside heapprof, from a program's fork
 * prepare handler while heapprof's handlers hold their locks, or from a
 * thread inside heapprof (busy): a lock here would deadlock in each, and
 * preload mode's free takes none either. A fork needs no handler: a
 * thread that was inside an operation does not exist in the child, and
 * leaves at most a slot BUSY for good there (one slot lost) and a bit
 * without a record (below). The one exception: a fork in the instant a
 * detach's forget has cleared a bit and not yet looked the address up
 * (the handshake below), while another thread reuses that address, can
 * leave the child one record without its bit: never taken, and a put at
 * that address then leaves a second record beside it (one block's free
 * uncounted or counted in the other's bucket, in that child only).
 *
 * The bit and the record. A block's bit and record are changed by the
 * thread that owns the block (the one allocating, freeing or reallocating
 * it) and by forget. Put sets the bit, then publishes the record; take
 * and hold take the record, then clear the bit. So a record implies its
 * bit, which is what lets a put skip the lookup for a stale record when
 * the bit is clear (sidetable_put), and lets a free ask the bit alone.
 * Forget is the one party that clears a bit it does not own: it takes
 * the record, then clears the bit, and meanwhile the owner's take may have
 * found nothing (forget had it), freed the block, and the address been
 * sampled again by another thread, whose new record's bit forget's clear
 * then wipes. Both sides repair it with a store-buffering handshake:
 * publish stores the key, a seq_cst fence, reads the bit and sets it again
 * if it is clear; forget clears the bit, a seq_cst fence, looks the
 * address up and sets the bit again if a record is there. Of the two
 * fences one comes first in their single total order, and the side whose
 * fence is second sees the other's write: either publish sees the bit
 * cleared or forget sees the record. (Forget may so set the bit of a
 * record that its owner takes at that moment: a bit without a record.)
 *
 * A bit without a record (those, a fork's) is harmless: a free that sees
 * it asks take, which finds nothing and clears it; a put that sees it
 * looks for a stale record and finds none.
 */
#include "sidetable.h"

#include <stdatomic.h>
#include <stdint.h>

#include "arena.h"
#include "sampled.h"

#define EMPTY ((uintptr_t)0)
#define BUSY ((uintptr_t)1)
#define LG_LINE 2 /* 4 slots of 16 bytes: a cache line */
#define LINE (1 << LG_LINE)
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
  unsigned shift;      /* 64 − lg(lines): a hash's top bits are its line */
  /* Lines on cache lines: the table is mapped page-aligned and its head
   * padded to 64 bytes. */
  slot_t slots[] __attribute__((aligned(64)));
} table_t;

_Static_assert(sizeof(slot_t) * LINE == 64, "a line is a cache line");
_Static_assert(offsetof(table_t, slots) == 64, "lines start on cache lines");

/* The newest table; each points at the one before. */
static table_t *_Atomic newest;

static size_t table_bytes(unsigned lg) {
  return sizeof(table_t) + ((size_t)1 << lg) * sizeof(slot_t);
}

/* Fibonacci hashing of the granule: 2^64 / φ spreads neighbouring blocks
 * (a stride of 16, 32 … bytes) over the whole table; a table's line is
 * the hash's top bits, so one hash serves every table. */
static uint64_t hash(uintptr_t a) {
  return (uint64_t)(a >> 3) * 0x9e3779b97f4a7c15ULL;
}

/* The first slot of the line of hash `h` in `t`. */
static slot_t *line_of(const table_t *t, uint64_t h) {
  return (slot_t *)((char *)t->slots + ((h >> t->shift) << (LG_LINE + 4)));
}

static uintptr_t key_of(const slot_t *s) {
  return atomic_load_explicit(&s->key, memory_order_acquire);
}

/* The slot holding `a`'s record in line `s`, or NULL (unrolled: a miss
 * reads four keys, a load, a compare and a branch each). */
static slot_t *find(slot_t *s, uintptr_t a) {
  _Static_assert(LINE == 4, "find reads four slots");
  return key_of(&s[0]) == a   ? &s[0]
         : key_of(&s[1]) == a ? &s[1]
         : key_of(&s[2]) == a ? &s[2]
         : key_of(&s[3]) == a ? &s[3]
                              : NULL;
}

/* The slot holding `a`'s record in any table, or NULL. Inlined: take's
 * whole path is one function. */
static inline __attribute__((always_inline)) slot_t *lookup(uintptr_t a) {
  uint64_t h = hash(a);
  for (table_t *t = atomic_load_explicit(&newest, memory_order_acquire);
       t != NULL; t = t->older) {
    slot_t *s = find(line_of(t, h), a);
    if (s != NULL)
      return s;
  }
  return NULL;
}

/* Makes slot `s` BUSY if it holds `a`: true then, and the record is the
 * caller's. False: someone else took it first (forget). */
static int own(slot_t *s, uintptr_t a) {
  return atomic_compare_exchange_strong_explicit(
      &s->key, &a, BUSY, memory_order_acquire, memory_order_relaxed);
}

/* The record of `a` out of the table (its slot EMPTY): its bucket, or
 * NULL. A record lives in one slot: a lost swap means forget took it. */
static inline __attribute__((always_inline)) bucket_t *remove_record(uintptr_t a) {
  slot_t *s = lookup(a);
  if (s == NULL)
    return NULL;
  bucket_t *b = atomic_load_explicit(&s->bucket, memory_order_relaxed);
  return atomic_compare_exchange_strong_explicit(
             &s->key, &a, EMPTY, memory_order_release, memory_order_relaxed)
             ? b
             : NULL;
}

/* remove_record for put's stale record: rare, kept off put's path. */
static __attribute__((noinline, cold)) bucket_t *remove_stale(uintptr_t a) {
  return remove_record(a);
}

/* Makes slot `s` BUSY if it is EMPTY: true then. */
static int take_empty(slot_t *s) {
  uintptr_t key = EMPTY;
  return atomic_load_explicit(&s->key, memory_order_relaxed) == EMPTY &&
         atomic_compare_exchange_strong_explicit(&s->key, &key, BUSY,
                                                 memory_order_acquire,
                                                 memory_order_relaxed);
}

/* A free slot of line `s`, made BUSY; NULL if the line is full. */
static slot_t *claim(slot_t *s) {
  return take_empty(&s[0])   ? &s[0]
         : take_empty(&s[1]) ? &s[1]
         : take_empty(&s[2]) ? &s[2]
         : take_empty(&s[3]) ? &s[3]
                             : NULL;
}

/* Adds a table after `seen` (the newest the caller saw), unless another
 * thread did first. False: no memory. */
static __attribute__((noinline, cold)) int grow(table_t *seen) {
  unsigned lg = seen != NULL ? seen->lg + 1 : FIRST_LG;
  if (lg > LAST_LG)
    return 0;
  table_t *t = arena_map(table_bytes(lg)); /* zeroed: every key EMPTY */
  if (t == NULL)
    return 0;
  t->lg = lg;
  t->shift = 64 - (lg - LG_LINE);
  t->older = seen;
  table_t *expected = seen;
  if (!atomic_compare_exchange_strong_explicit(&newest, &expected, t,
                                               memory_order_acq_rel,
                                               memory_order_acquire))
    arena_unmap(t, table_bytes(lg)); /* another thread grew it: use theirs */
  return 1;
}

/* A slot for the record of hash `h` in a table, newest first, made
 * BUSY; a table is added when its line is full in every one. NULL: no
 * memory. */
static __attribute__((noinline)) slot_t *insert(uint64_t h) {
  for (;;) {
    table_t *first = atomic_load_explicit(&newest, memory_order_acquire);
    for (table_t *t = first; t != NULL; t = t->older) {
      slot_t *s = claim(line_of(t, h));
      if (s != NULL)
        return s;
    }
    if (!grow(first))
      return NULL;
  }
}

/* Sets `p`'s bit again, which forget cleared (its region's bitmap exists:
 * the mark cannot fail). */
static __attribute__((noinline, cold)) void remark(void *p) {
  sampled_bare_mark(p);
}

/* Publishes the record in BUSY slot `s` as `p`'s, whose bit the caller
 * set, and sets the bit again if forget cleared it meanwhile (the
 * handshake at the top). */
static void publish(slot_t *s, void *p) {
  atomic_store_explicit(&s->key, (uintptr_t)p, memory_order_release);
  atomic_thread_fence(memory_order_seq_cst);
  if (__builtin_expect(!sampled_bit(p), 0))
    remark(p);
}

/* The record of `p` (its bit set) in a slot, published: 0, or -1 with
 * the bit cleared again if no table has room. Out of line, so that put
 * keeps few registers across its call of the mark; the newest table's
 * line inline, the rest (insert) not, so that this keeps few too. */
static __attribute__((noinline)) int place(void *p, bucket_t *b) {
  uint64_t h = hash((uintptr_t)p);
  table_t *t = atomic_load_explicit(&newest, memory_order_acquire);
  slot_t *s = t != NULL ? claim(line_of(t, h)) : NULL; /* nearly always */
  if (__builtin_expect(s == NULL, 0) && (s = insert(h)) == NULL) {
    sampled_bare_unmark(p);
    return -1;
  }
  atomic_store_explicit(&s->bucket, b, memory_order_relaxed);
  publish(s, p);
  return 0;
}

int sidetable_put(void *p, bucket_t *b, bucket_t **stale) {
  uintptr_t a = (uintptr_t)p;
  *stale = NULL;
  if (a <= BUSY || (a >> VA_BITS) != 0)
    return -1;
  int set = sampled_bare_mark(p);
  if (set < 0)
    return -1; /* no bitmap for the region: no bit was ever set here */
  /* Any record at `a` is stale: its block was freed behind our back (a
   * pointer to the allocator's free taken before the attach; a free after
   * a detach) and the allocator handed `a` out again. It is looked for
   * only when a's bit is set, because a record implies its bit: put sets
   * the bit before publishing, take clears it after taking the record,
   * and forget's clear, the one racing with a block's owner, is repaired
   * by publish and forget itself (the top of the file). A bit cleared by
   * nothing but those is cleared with its record, so a clear bit means
   * no record at `a`, and a new one cannot become a second record of `a`,
   * which a later take could pick for the wrong bucket. A stale record is
   * never left for good either: its bit stays set until the next put or
   * free of `a` through heapprof, which takes it out, or a detach. The
   * mark says whether the bit was set (it changes nothing then), so the
   * bit is read once. */
  if (set)
    *stale = remove_stale(a);
  return place(p, b);
}

bucket_t *sidetable_take(void *p) {
  bucket_t *b = remove_record((uintptr_t)p);
  sampled_bare_unmark(p);
  return b;
}

/* Makes `a`'s record's slot BUSY: the slot (its bucket in *b), or NULL if
 * `a` has none. */
static slot_t *own_record(uintptr_t a, bucket_t **b) {
  slot_t *s = lookup(a);
  if (s == NULL || !own(s, a))
    return NULL; /* a record lives in one slot: forget took it */
  *b = atomic_load_explicit(&s->bucket, memory_order_relaxed);
  return s;
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
  h->slot = NULL;
  /* The region's bitmap exists (the record's bit was in it) and is never
   * unmapped: the mark cannot fail. */
  if (restore && sampled_bare_mark(h->p) >= 0)
    publish(s, h->p);
  else
    atomic_store_explicit(&s->key, EMPTY, memory_order_release);
}

/* Clears the bit of `a`, whose record forget took, unless a record of
 * `a` is there by now: the address was freed and sampled again, and that
 * record's bit is the one being cleared (the handshake at the top). */
static void unmark_forgotten(uintptr_t a) {
  sampled_bare_unmark((void *)a);
  atomic_thread_fence(memory_order_seq_cst);
  if (__builtin_expect(lookup(a) != NULL, 0))
    sampled_bare_mark((void *)a);
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
      atomic_store_explicit(&s->key, EMPTY, memory_order_release);
      if (b != NULL)
        freed(b);
      unmark_forgotten(key);
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
