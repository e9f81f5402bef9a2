/*
 * strtab — a string arena with an intern set: each distinct string is
 * stored once, so equal strings are equal pointers. Other data that must
 * live exactly as long as the strings (the symbolizer's lines) can be
 * placed in the arena too.
 *
 * Strings are copied into chunks that are never moved or freed before
 * strtab_free(), so every pointer handed out stays valid until then.
 * Not thread-safe.
 */
#ifndef HEAPPROF_INTROSPECT_STRTAB_H
#define HEAPPROF_INTROSPECT_STRTAB_H

#include <stddef.h>

struct strtab_chunk;

typedef struct strtab {
  struct strtab_chunk *chunks; /* newest first */
  const char **slots;          /* open addressing; NULL = empty */
  size_t nslots, count;        /* nslots is 0 or a power of two */
  size_t chunk_bytes;          /* sum of all chunk allocations */
} strtab_t;

/* Start from (strtab_t){0}. */

/* The arena's copy of `str`, made on first sight; NULL for NULL or when
 * memory runs out. */
const char *strtab_intern(strtab_t *t, const char *str);

/* The same for the `len` bytes at `str` (no NUL among them). */
const char *strtab_intern_n(strtab_t *t, const char *str, size_t len);

/* `bytes` (not 0) of uninitialised memory in the arena, aligned for any
 * type and living as long as its strings; NULL when memory runs out. */
void *strtab_alloc(strtab_t *t, size_t bytes);

/* Bytes of memory the table holds. */
size_t strtab_bytes(const strtab_t *t);

/* Frees every string; `t` is empty again. */
void strtab_free(strtab_t *t);

#endif /* HEAPPROF_INTROSPECT_STRTAB_H */
