/*
 * addrcache — the answers already given, by address: a hash table from an
 * address to the prof_frame_t it was resolved to.
 *
 * It stores the frame's line array pointer as it is; whoever owns the
 * lines and their strings (the symbolizer's view) clears the cache before
 * freeing them.
 * Address 0 marks an empty slot, so 0 is never stored. Not thread-safe.
 */
#ifndef HEAPPROF_INTROSPECT_ADDRCACHE_H
#define HEAPPROF_INTROSPECT_ADDRCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "symtab.h"

struct addrcache_entry;

typedef struct addrcache {
  struct addrcache_entry *slots;
  size_t nslots, count; /* nslots is 0 or a power of two */
} addrcache_t;

/* Start from (addrcache_t){0}. */

/* Fills *out with the answer stored for `addr`; false if there is none. */
bool addrcache_get(const addrcache_t *c, uint64_t addr, prof_frame_t *out);

/* Remembers `f` for `addr` (not 0); when memory runs out it is simply not
 * remembered. */
void addrcache_put(addrcache_t *c, uint64_t addr, const prof_frame_t *f);

size_t addrcache_bytes(const addrcache_t *c);

/* Forgets every answer; `c` is empty again. */
void addrcache_free(addrcache_t *c);

#endif /* HEAPPROF_INTROSPECT_ADDRCACHE_H */
