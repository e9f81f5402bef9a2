/*
 * strtab — string arena and intern set (see strtab.h).
 *
 * Invariant: every non-NULL slot points to a NUL-terminated copy inside a
 * chunk, and no two slots hold equal strings. The set stays at most 3/4
 * full, so a probe always ends at an empty slot.
 */
#include "strtab.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A string longer than a quarter of this gets a chunk of its own. */
#define CHUNK_BYTES (64 * 1024)
#define FIRST_SLOTS 256

struct strtab_chunk {
  struct strtab_chunk *next;
  size_t used_bytes, cap_bytes;
  _Alignas(max_align_t) char data[];
};

static uint64_t hash_bytes(const char *str, size_t len) {
  uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
  for (size_t i = 0; i < len; i++)
    h = (h ^ (unsigned char)str[i]) * 0x100000001b3u;
  return h;
}

static bool same(const char *stored, const char *str, size_t len) {
  return memcmp(stored, str, len) == 0 && stored[len] == '\0';
}

static const char **slot_of(const char **slots, size_t nslots, const char *str,
                            size_t len) {
  size_t i = hash_bytes(str, len) & (nslots - 1);
  while (slots[i] != NULL && !same(slots[i], str, len))
    i = (i + 1) & (nslots - 1);
  return &slots[i];
}

static bool grow(strtab_t *t) {
  size_t nslots = t->nslots ? 2 * t->nslots : FIRST_SLOTS;
  const char **slots = calloc(nslots, sizeof *slots);
  if (slots == NULL)
    return false;
  for (size_t i = 0; i < t->nslots; i++)
    if (t->slots[i] != NULL)
      *slot_of(slots, nslots, t->slots[i], strlen(t->slots[i])) = t->slots[i];
  free(t->slots);
  t->slots = slots;
  t->nslots = nslots;
  return true;
}

/* `bytes` of the arena, at an offset aligned to `align` (a power of two). */
static void *arena_take(strtab_t *t, size_t bytes, size_t align) {
  struct strtab_chunk *c = t->chunks;
  size_t at = c ? (c->used_bytes + align - 1) & ~(align - 1) : 0;
  if (c == NULL || at > c->cap_bytes || c->cap_bytes - at < bytes) {
    size_t cap = bytes > CHUNK_BYTES / 4 ? bytes : CHUNK_BYTES;
    if ((c = malloc(sizeof *c + cap)) == NULL)
      return NULL;
    c->used_bytes = 0;
    c->cap_bytes = cap;
    c->next = t->chunks;
    t->chunks = c;
    t->chunk_bytes += sizeof *c + cap;
    at = 0;
  }
  c->used_bytes = at + bytes;
  return c->data + at;
}

/* A NUL-terminated copy of the `len` bytes at `src`, in the arena. */
static char *arena_copy(strtab_t *t, const char *src, size_t len) {
  char *dst = arena_take(t, len + 1, 1);
  if (dst != NULL) {
    memcpy(dst, src, len);
    dst[len] = '\0';
  }
  return dst;
}

void *strtab_alloc(strtab_t *t, size_t bytes) {
  return bytes ? arena_take(t, bytes, _Alignof(max_align_t)) : NULL;
}

const char *strtab_intern_n(strtab_t *t, const char *str, size_t len) {
  if (str == NULL)
    return NULL;
  if (4 * (t->count + 1) > 3 * t->nslots && !grow(t))
    return NULL;
  const char **slot = slot_of(t->slots, t->nslots, str, len);
  if (*slot == NULL && (*slot = arena_copy(t, str, len)) != NULL)
    t->count++;
  return *slot;
}

const char *strtab_intern(strtab_t *t, const char *str) {
  return str ? strtab_intern_n(t, str, strlen(str)) : NULL;
}

size_t strtab_bytes(const strtab_t *t) {
  return t->nslots * sizeof *t->slots + t->chunk_bytes;
}

void strtab_free(strtab_t *t) {
  while (t->chunks != NULL) {
    struct strtab_chunk *next = t->chunks->next;
    free(t->chunks);
    t->chunks = next;
  }
  free(t->slots);
  *t = (strtab_t){0};
}
