/*
 * sampled — the header of a sampled block and the map that confirms it.
 *
 * The sampled map has one bit per 8-byte granule of the 47-bit user address
 * space (malloc results are at least 8-byte aligned, so two live blocks
 * never share a granule), in two levels: a static array with an entry per
 * 128 MiB region, and a 2 MiB bitmap per region, mapped when the first
 * sampled block lands in the region and kept; its untouched pages cost no
 * memory. Bits change with atomic read-modify-writes because neighbouring
 * blocks of other threads share words. Addresses beyond 47 bits are not
 * sampled (sampled_mark refuses them), so the map covers every sampled
 * block.
 *
 * Order: mark writes the header, then sets the bit (release); unmark clears
 * the bit, then the header. A block is only freed by a thread it was handed
 * to, after its allocation returned, so the freeing thread sees both.
 */
#include "sampled.h"

#include <stdatomic.h>

#include "arena.h"
#include "thread.h"

#define REGION_SHIFT SAMPLED_REGION_SHIFT
#define REGIONS SAMPLED_REGIONS
#define GRANULE_SHIFT 3
#define REGION_BITMAP_BYTES (((size_t)1 << (REGION_SHIFT - GRANULE_SHIFT)) / 8)
#define LG_MASK ((uintptr_t)63)

uint64_t sampled_key = 0x5d1c2b3a49586776ULL;

/* Hidden, but not static: sampled_bit (sampled.h) reads it inline. */
uint64_t *_Atomic sampled_regions[REGIONS];
/* Marks and unmarks by threads outside stats.c's registry (thread.h). */
static _Atomic uint64_t stray_marked, stray_unmarked;

/* Counts a mark or unmark in the thread's own counter, or as a stray.
 * Release: a reader that sees an unmark sees the block's mark (stats.c). */
static void count(uint64_t *mine, _Atomic uint64_t *stray) {
  if (__builtin_expect(hp_self.registered > 0, 1))
    __atomic_store_n(mine, *mine + 1, __ATOMIC_RELEASE);
  else
    atomic_fetch_add_explicit(stray, 1, memory_order_release);
}

uint64_t sampled_stray_marked(void) {
  return atomic_load_explicit(&stray_marked, memory_order_acquire);
}

uint64_t sampled_stray_unmarked(void) {
  return atomic_load_explicit(&stray_unmarked, memory_order_acquire);
}

void sampled_init(uint64_t key) { sampled_key = key; }

/* The word and bit of address `a` in region bitmap `bits`. */
static _Atomic uint64_t *bit_word(uint64_t *bits, uintptr_t a, int *shift) {
  size_t bit = (a & (((uintptr_t)1 << REGION_SHIFT) - 1)) >> GRANULE_SHIFT;
  *shift = (int)(bit & 63);
  return (_Atomic uint64_t *)&bits[bit >> 6];
}

static uint64_t *region_of(uintptr_t a) {
  if ((a >> REGION_SHIFT) >= REGIONS)
    return NULL;
  return atomic_load_explicit(&sampled_regions[a >> REGION_SHIFT], memory_order_acquire);
}

/* The region bitmap for `a`, mapped on first use; NULL if out of range or
 * out of memory. */
static uint64_t *region_get(uintptr_t a) {
  if ((a >> REGION_SHIFT) >= REGIONS)
    return NULL;
  uint64_t *bits = region_of(a);
  if (bits != NULL)
    return bits;
  uint64_t *fresh = arena_map(REGION_BITMAP_BYTES);
  if (fresh == NULL)
    return NULL;
  if (atomic_compare_exchange_strong_explicit(&sampled_regions[a >> REGION_SHIFT],
                                              &bits, fresh,
                                              memory_order_acq_rel,
                                              memory_order_acquire))
    return fresh;
  arena_unmap(fresh, REGION_BITMAP_BYTES); /* another thread won */
  return bits;
}

int sampled_is(const void *p) {
  uintptr_t a = (uintptr_t)p;
  uint64_t *bits = region_of(a);
  if (bits == NULL)
    return 0;
  int shift;
  _Atomic uint64_t *w = bit_word(bits, a, &shift);
  return (atomic_load_explicit(w, memory_order_acquire) >> shift) & 1;
}

int sampled_mark(void *p, bucket_t *b, unsigned lg_offset) {
  uintptr_t a = (uintptr_t)p;
  uint64_t *bits = region_get(a);
  if (bits == NULL)
    return -1;
  uint64_t *h = (uint64_t *)p;
  h[-1] = (uintptr_t)b | lg_offset;
  h[-2] = sampled_tag(a);
  int shift;
  _Atomic uint64_t *w = bit_word(bits, a, &shift);
  atomic_fetch_or_explicit(w, (uint64_t)1 << shift, memory_order_release);
  count(&hp_self.marked, &stray_marked);
  return 0;
}

bucket_t *sampled_peek(const void *p, size_t *offset) {
  uintptr_t word = ((const uint64_t *)p)[-1];
  *offset = (size_t)SAMPLED_HEADER << (word & LG_MASK);
  return (bucket_t *)(word & ~LG_MASK);
}

bucket_t *sampled_unmark(void *p, size_t *offset) {
  uintptr_t a = (uintptr_t)p;
  int shift;
  bucket_t *b = sampled_peek(p, offset);
  _Atomic uint64_t *w = bit_word(region_of(a), a, &shift);
  atomic_fetch_and_explicit(w, ~((uint64_t)1 << shift), memory_order_relaxed);
  ((uint64_t *)p)[-2] = 0;
  count(&hp_self.unmarked, &stray_unmarked);
  return b;
}

/* ---- bare marks (attach mode: no header) ---- */

_Atomic uint16_t sampled_filter[(size_t)1 << SAMPLED_FILTER_LG];

/* Moves `a`'s filter slot by `by` (+1, -1), unless it is saturated, which
 * it then stays (sampled.h). */
static void filter_move(uintptr_t a, int by) {
  _Atomic uint16_t *slot = sampled_filter_slot(a);
  uint16_t n = atomic_load_explicit(slot, memory_order_relaxed);
  do {
    if (n == UINT16_MAX)
      return;
  } while (!atomic_compare_exchange_weak_explicit(
      slot, &n, (uint16_t)(n + by), memory_order_release,
      memory_order_relaxed));
}

int sampled_bare_mark(const void *p) {
  uintptr_t a = (uintptr_t)p;
  uint64_t *bits = region_get(a);
  if (bits == NULL)
    return -1;
  int shift;
  _Atomic uint64_t *w = bit_word(bits, a, &shift);
  if ((atomic_load_explicit(w, memory_order_relaxed) >> shift) & 1)
    return 1; /* set already (an address is marked by its owner only) */
  filter_move(a, +1); /* before the bit: the slot is never below its bits */
  atomic_fetch_or_explicit(w, (uint64_t)1 << shift, memory_order_release);
  count(&hp_self.marked, &stray_marked);
  return 0;
}

int sampled_bare_unmark(const void *p) {
  uintptr_t a = (uintptr_t)p;
  uint64_t *bits = region_of(a);
  if (bits == NULL)
    return 0;
  int shift;
  _Atomic uint64_t *w = bit_word(bits, a, &shift);
  uint64_t was = atomic_fetch_and_explicit(w, ~((uint64_t)1 << shift),
                                           memory_order_relaxed);
  if (!((was >> shift) & 1))
    return 0;
  filter_move(a, -1);
  count(&hp_self.unmarked, &stray_unmarked);
  return 1;
}
