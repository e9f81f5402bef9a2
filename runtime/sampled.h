/*
 * sampled — which live blocks were sampled, and the bucket each belongs to.
 *
 * Invariant: a sampled block has exactly one record from its allocation
 * until its free, and its bit in the sampled map is set exactly while the
 * record exists. The record is removed, and the bit cleared, before the
 * underlying allocator sees the free, so an address handed out again is
 * never mistaken for the old block.
 *
 * free() asks sampled_maybe() first: two dependent loads, no lock, no hash.
 * Only a set bit leads to the locked record table.
 */
#ifndef HEAPPROF_SAMPLED_H
#define HEAPPROF_SAMPLED_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../profile/buckets.h"

/*
 * The sampled map: one bit per 8-byte granule of the 47-bit user address
 * space (malloc results are at least 8-byte aligned, so two live blocks
 * never share a granule). Level one has an entry per 128 MiB region; level
 * two is a 2 MiB bitmap per region, mapped when the first sampled block
 * lands in the region and kept; its untouched pages cost no memory.
 */
#define SAMPLED_REGION_SHIFT 27
#define SAMPLED_REGIONS ((size_t)1 << (47 - SAMPLED_REGION_SHIFT))
#define SAMPLED_GRANULE_SHIFT 3

extern _Atomic(uint64_t *) sampled_regions[SAMPLED_REGIONS];

/* True if `p` may be a sampled block (false: certainly not). */
static inline int sampled_maybe(const void *p) {
  uintptr_t a = (uintptr_t)p;
  size_t region = a >> SAMPLED_REGION_SHIFT;
  if (__builtin_expect(region >= SAMPLED_REGIONS, 0))
    return 1; /* beyond the map: let the table decide */
  uint64_t *bits =
      atomic_load_explicit(&sampled_regions[region], memory_order_acquire);
  if (bits == NULL)
    return 0;
  size_t bit = (a & (((uintptr_t)1 << SAMPLED_REGION_SHIFT) - 1)) >>
               SAMPLED_GRANULE_SHIFT;
  uint64_t word = atomic_load_explicit((_Atomic uint64_t *)&bits[bit >> 6],
                                       memory_order_relaxed);
  return (word >> (bit & 63)) & 1;
}

/* Records `p` as a live sampled block of `b`. -1 if out of memory. */
int sampled_add(void *p, bucket_t *b);

/* Removes and returns the record of `p`; NULL if `p` has none. */
bucket_t *sampled_take(void *p);

/* The number of live sampled blocks. */
size_t sampled_live(void);

void sampled_fork_prepare(void);
void sampled_fork_parent(void);
void sampled_fork_child(void);

#endif /* HEAPPROF_SAMPLED_H */
