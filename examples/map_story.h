/*
 * map_story — the phases the map examples walk through, shared by
 * map_delete and map_reset: fill a Go-style map with N entries, delete
 * every key, rebuild it empty; and a one-line summary of the runtime
 * statistics after each phase.
 */
#ifndef MAP_STORY_H
#define MAP_STORY_H

#include <stddef.h>
#include <stdint.h>

#include "gomap.h"
#include "heapprof.h"

/* What the map holds: int → int, or string → pointer to a heap object
 * (like Go's map[string]*T). */
typedef enum story_kind { STORY_INT, STORY_STR } story_kind_t;

typedef struct story {
  story_kind_t kind;
  size_t n;
  gomap_t *map;
  char *keys; /* STORY_STR: every key, one allocation ("k0000042\0" …) */
} story_t;

/* An object a string-keyed map points to (the T of map[string]*T). */
typedef struct story_item {
  uint64_t id;
  char name[40];
} story_item_t;

/* Creates an empty map for `n` entries of `kind`. 0 or -1 (no memory). */
int story_init(story_t *s, story_kind_t kind, size_t n);
/* Inserts entries 0..n-1. 0 or -1. */
int story_fill(story_t *s);
/* Deletes every key; for STORY_STR also frees the items pointed to. */
void story_delete_all(story_t *s);
/* Replaces the map with a new, empty one; the old one is freed whole. */
int story_rebuild(story_t *s);
void story_free(story_t *s);

/* Prints "<phase>  in use …  allocated …  mallocs …" from
 * heapprof_read_stats and the map's own byte counts. */
void story_print_stats(const story_t *s, const char *phase);

#endif /* MAP_STORY_H */
