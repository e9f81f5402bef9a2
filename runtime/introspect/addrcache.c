/*
 * addrcache — answered addresses (see addrcache.h).
 *
 * Invariant: the table is at most 3/4 full and entries are never removed
 * one by one (only all at once), so linear probing from an address's home
 * slot reaches either its entry or an empty slot.
 */
#include "addrcache.h"

#include <stdlib.h>

#define FIRST_SLOTS 1024

/* A prof_frame_t packed into 24 bytes. */
struct addrcache_entry {
  uint64_t addr;
  const prof_line_t *lines;
  uint16_t nlines;
  bool inline_known;
  int32_t mapping;
};

static struct addrcache_entry *slot_of(struct addrcache_entry *slots,
                                       size_t nslots, uint64_t addr) {
  size_t i = (addr * 0x9e3779b97f4a7c15u) >> 20 & (nslots - 1);
  while (slots[i].addr != 0 && slots[i].addr != addr)
    i = (i + 1) & (nslots - 1);
  return &slots[i];
}

bool addrcache_get(const addrcache_t *c, uint64_t addr, prof_frame_t *out) {
  if (c->nslots == 0 || addr == 0)
    return false;
  const struct addrcache_entry *e = slot_of(c->slots, c->nslots, addr);
  if (e->addr != addr)
    return false;
  *out = (prof_frame_t){e->lines, e->nlines, e->mapping, e->inline_known};
  return true;
}

static bool grow(addrcache_t *c) {
  size_t nslots = c->nslots ? 2 * c->nslots : FIRST_SLOTS;
  struct addrcache_entry *slots = calloc(nslots, sizeof *slots);
  if (slots == NULL)
    return false;
  for (size_t i = 0; i < c->nslots; i++)
    if (c->slots[i].addr != 0)
      *slot_of(slots, nslots, c->slots[i].addr) = c->slots[i];
  free(c->slots);
  c->slots = slots;
  c->nslots = nslots;
  return true;
}

void addrcache_put(addrcache_t *c, uint64_t addr, const prof_frame_t *f) {
  if (addr == 0 || (4 * (c->count + 1) > 3 * c->nslots && !grow(c)))
    return;
  struct addrcache_entry *e = slot_of(c->slots, c->nslots, addr);
  if (e->addr == 0)
    c->count++;
  *e = (struct addrcache_entry){addr, f->lines,
                                 f->nlines > UINT16_MAX ? UINT16_MAX
                                                        : (uint16_t)f->nlines,
                                 f->inline_known, f->mapping};
}

size_t addrcache_bytes(const addrcache_t *c) {
  return c->nslots * sizeof *c->slots;
}

void addrcache_free(addrcache_t *c) {
  free(c->slots);
  *c = (addrcache_t){0};
}
