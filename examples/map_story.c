/*
 * map_story — fill, delete all, rebuild: the life of a map whose deletes
 * give nothing back. The allocation sites here are deliberately separate
 * noinline functions so a heap profile names them: story_make_keys (the
 * string keys, one block), story_make_item (each value object); the map's
 * own sites are gomap_alloc_buckets and gomap_alloc_overflow.
 */
#include "map_story.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline, noclone))
#define KEY_BYTES 9 /* "k" + 7 digits + NUL */

static const char *key_of(const story_t *s, size_t i) {
  return s->keys + i * KEY_BYTES;
}

static NOINLINE char *story_make_keys(size_t n) {
  char *keys = malloc(n * KEY_BYTES);
  __asm__ volatile("" ::: "memory"); /* a real frame, not a tail call */
  if (keys != NULL)
    for (size_t i = 0; i < n; i++)
      snprintf(keys + i * KEY_BYTES, KEY_BYTES, "k%07zu", i % 10000000);
  return keys;
}

static NOINLINE story_item_t *story_make_item(uint64_t id) {
  story_item_t *item = malloc(sizeof *item);
  __asm__ volatile("" ::: "memory");
  if (item != NULL) {
    item->id = id;
    snprintf(item->name, sizeof item->name, "item %llu", (unsigned long long)id);
  }
  return item;
}

static gomap_t *new_map(story_kind_t kind) {
  gomap_type_t t = kind == STORY_INT ? gomap_type_u64(sizeof(uint64_t))
                                     : gomap_type_str(sizeof(story_item_t *));
  return gomap_new(&t, 0);
}

int story_init(story_t *s, story_kind_t kind, size_t n) {
  memset(s, 0, sizeof *s);
  s->kind = kind;
  s->n = n;
  if (kind == STORY_STR && (s->keys = story_make_keys(n)) == NULL)
    return -1;
  s->map = new_map(kind);
  return s->map != NULL ? 0 : -1;
}

int story_fill(story_t *s) {
  for (size_t i = 0; i < s->n; i++) {
    int rc;
    if (s->kind == STORY_INT) {
      uint64_t v = i * 2;
      rc = gomap_insert_u64(s->map, i, &v);
    } else {
      story_item_t *item = story_make_item(i);
      if (item == NULL)
        return -1;
      rc = gomap_insert_str(s->map, key_of(s, i), &item);
    }
    if (rc != 0)
      return -1;
  }
  return 0;
}

void story_delete_all(story_t *s) {
  for (size_t i = 0; i < s->n; i++) {
    if (s->kind == STORY_INT) {
      gomap_delete_u64(s->map, i);
      continue;
    }
    story_item_t **v = gomap_lookup_str(s->map, key_of(s, i));
    if (v != NULL)
      free(*v);
    gomap_delete_str(s->map, key_of(s, i));
  }
}

int story_rebuild(story_t *s) {
  gomap_free(s->map);
  s->map = new_map(s->kind);
  return s->map != NULL ? 0 : -1;
}

void story_free(story_t *s) {
  gomap_free(s->map);
  free(s->keys);
  memset(s, 0, sizeof *s);
}

static double mb(uint64_t bytes) { return (double)bytes / 1e6; }

void story_print_stats(const story_t *s, const char *phase) {
  heapprof_stats_t st;
  gomap_stats_t ms;
  heapprof_read_stats(&st);
  gomap_stats(s->map, &ms);
  printf("%-14s in use %7.1f MB | allocated %8.1f MB | mallocs %9llu | "
         "frees %9llu | mallocs-frees %9llu | from OS %7.1f MB | "
         "map %8zu entries, %6.1f MB held | profile in use %7.1f MB\n",
         phase, mb(st.heap_inuse_bytes), mb(st.total_alloc_bytes),
         (unsigned long long)st.mallocs, (unsigned long long)st.frees,
         (unsigned long long)(st.mallocs - st.frees), mb(st.heap_sys_bytes),
         ms.count, mb(ms.array_bytes + ms.overflow_bytes),
         mb(st.sampled_inuse_bytes));
}
