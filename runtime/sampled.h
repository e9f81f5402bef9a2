/*
 * sampled — how a sampled block is laid out, recorded and recognised.
 *
 * A sampled block is allocated `offset` bytes larger than asked (16, or the
 * requested alignment when that is larger) and handed out at raw + offset,
 * with a 16-byte header just below the pointer:
 *
 *     p[-2]  tag: p's address xor a random per-process key
 *     p[-1]  the block's bucket | lg(offset / 16) in the low 6 bits
 *
 * Invariant: a sampled block's header is intact and its bit in the sampled
 * map is set exactly from its allocation until its free; both are cleared
 * before the underlying allocator sees the free, so an address handed out
 * again is never mistaken for the old block. The header is the block's one
 * record.
 *
 * free() asks sampled_maybe() first. For an unsampled block, p[-2] is the
 * underlying allocator's own chunk header (glibc's prev_size), on the cache
 * line its free is about to read anyway: the check costs no extra memory
 * access. A matching tag is only a hint — user data can match by chance —
 * and the map confirms it exactly. Pointers in the first 16 bytes of a page
 * are never read below (the page before may be unmapped); the map answers
 * for them directly.
 */
#ifndef HEAPPROF_SAMPLED_H
#define HEAPPROF_SAMPLED_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "buckets.h"

#define SAMPLED_HEADER 16
#define SAMPLED_PAGE 4096

extern uint64_t sampled_key __attribute__((visibility("hidden")));

/* Only a hint (the map confirms every match), so it need not be a hash:
 * the key alone keeps the program's data from matching by more than
 * chance, and xor keeps free()'s test to one instruction beyond the load. */
static inline uint64_t sampled_tag(uintptr_t a) { return a ^ sampled_key; }

/* Whether the header words below address `a` may be read: not in the
 * first 16 bytes of a page, whose page before may be unmapped. */
static inline int sampled_can_peek(uintptr_t a) {
  return (a & (SAMPLED_PAGE - 1)) >= SAMPLED_HEADER;
}

/* Whether `p`, which sampled_can_peek, carries the tag. */
static inline int sampled_tagged(const void *p) {
  return ((const uint64_t *)p)[-2] == sampled_tag((uintptr_t)p);
}

/* False: `p` is certainly not a sampled block. True: ask sampled_is(). */
static inline int sampled_maybe(const void *p) {
  uintptr_t a = (uintptr_t)p;
  if (__builtin_expect(sampled_can_peek(a), 1))
    return sampled_tagged(p);
  return a != 0;
}

/* Sets the per-process tag key. Once, before the first sample. */
void sampled_init(uint64_t key);

/* Exactly whether `p` is a live sampled block. */
int sampled_is(const void *p);

/* Writes the header of new sampled block `p` (raw allocation at p - offset,
 * offset = 16 << lg_offset) and sets its bit. -1 if the map has no memory:
 * the block then stays an ordinary one and the caller undoes the offset. */
int sampled_mark(void *p, bucket_t *b, unsigned lg_offset);

/* Clears the bit and header of live sampled block `p`; returns its bucket
 * and the distance from the raw allocation to p. */
bucket_t *sampled_unmark(void *p, size_t *offset);

/* The bucket and offset of live sampled block `p`, leaving it recorded. */
bucket_t *sampled_peek(const void *p, size_t *offset);

/*
 * Bare marks: the map bit without a header, for attach mode, where a
 * sampled block is the next allocator's block unchanged and its bucket
 * lives in the side table (sidetable.h), which alone sets and clears these
 * bits. A bare mark is counted in the live count like a headed one.
 */

/* The region bitmaps, indexed by address >> SAMPLED_REGION_SHIFT (the
 * layout is sampled.c's; only sampled_bit below reads it from outside). */
#define SAMPLED_REGION_SHIFT 27
#define SAMPLED_REGIONS ((size_t)1 << (47 - SAMPLED_REGION_SHIFT))
extern uint64_t *_Atomic sampled_regions[SAMPLED_REGIONS]
    __attribute__((visibility("hidden")));

/*
 * The page filter, in front of the bare bits: one counter per slot, slot
 * = page number mod 2^16 (4 KiB pages, so a contiguous heap of up to
 * 256 MiB has a slot per page), counting the bare-marked blocks that start
 * in the pages of that slot. Zero means none: a free needs no more. 128
 * KiB, dense, so the free fast path reads one well-cached halfword
 * instead of a bitmap word 1/64 of the heap away (about 1 MB a GB of
 * heap). At the default rate a 1 GB heap holds ~2,000 samples: ~3% of
 * frees find a nonzero slot and ask sampled_bit. Invariant: a slot that
 * is not saturated is at least its pages' set bits (incremented before
 * the bit is set, decremented after it is cleared); a saturated one
 * (UINT16_MAX: thousands of samples in the pages of one slot, as at rate
 * 1) stays so for good, and only says "maybe".
 */
#define SAMPLED_FILTER_LG 16
extern _Atomic uint16_t sampled_filter[(size_t)1 << SAMPLED_FILTER_LG]
    __attribute__((visibility("hidden")));

/* The filter slot of address `a`. */
static inline _Atomic uint16_t *sampled_filter_slot(uintptr_t a) {
  return &sampled_filter[(a >> 12) & (((size_t)1 << SAMPLED_FILTER_LG) - 1)];
}

/* False: no bare-marked block starts in `p`'s page (nor in the other
 * pages of its slot). True: ask sampled_bit. One load, no call. */
static inline int sampled_bare_maybe(const void *p) {
  return atomic_load_explicit(sampled_filter_slot((uintptr_t)p), memory_order_relaxed) != 0;
}

/* The map bit of `p`, lock-free: two dependent loads (the region's
 * bitmap, the word), no call. An address beyond 47 bits reads the bit of
 * an alias below (the index is masked, not tested), which can only send
 * its free to the side table, which, keyed by the exact address, says
 * "not sampled"; such an address is never marked. Always inlined, cold
 * callers too: attach mode's free asks it in its slow path (a cold
 * function, which gcc would otherwise call it from), for every free the
 * page filter lets through (most of them at rate 1). */
static inline __attribute__((always_inline)) int sampled_bit(const void *p) {
  uintptr_t a = (uintptr_t)p;
  uint64_t *bits = atomic_load_explicit(
      &sampled_regions[(a >> SAMPLED_REGION_SHIFT) & (SAMPLED_REGIONS - 1)],
      memory_order_acquire);
  /* NULL: no sample ever in this region. Hinted unlikely: once a program
   * has sampled, its heap's regions have bitmaps. */
  if (__builtin_expect(bits == NULL, 0))
    return 0;
  size_t word = (a >> 9) & ((((uintptr_t)1 << SAMPLED_REGION_SHIFT) >> 9) - 1);
  return (__atomic_load_n(&bits[word], __ATOMIC_RELAXED) >> ((a >> 3) & 63)) & 1;
}

/* Sets `p`'s bit: 0, counted as a mark; 1 if it was set already (not
 * counted again: the side table's put then looks for a stale record, and
 * reads the bit no other way); -1 if `p` is beyond 47 bits or its
 * region's bitmap cannot be mapped (nothing set). */
int sampled_bare_mark(const void *p);

/* Clears `p`'s bit: 1 if it was set (counted as an unmark), else 0. */
int sampled_bare_unmark(const void *p);

/* The live count is per thread (thread.h's marked and unmarked, summed by
 * stats.c), plus the marks and unmarks of threads outside its registry. */
uint64_t sampled_stray_marked(void);
uint64_t sampled_stray_unmarked(void);

#endif /* HEAPPROF_SAMPLED_H */
