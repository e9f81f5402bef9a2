/*
 * map_delete — a Go-style map filled with 1,000,000 entries, emptied with
 * deletes, then rebuilt; a heap profile after each phase shows where the
 * memory is: deletes give none of the buckets back, only the rebuild does.
 *
 * usage: map_delete [int|str] [OUTDIR] [ENTRIES]
 *
 *   int   map of int → int (Go's map[int]int)
 *   str   map of string → pointer to an object (Go's map[string]*T):
 *         deletes free the objects, but still not the buckets
 *
 * Writes OUTDIR/<kind>-before.pb.gz, <kind>-after-delete.pb.gz and
 * <kind>-after-rebuild.pb.gz, and prints a statistics line per phase.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heapprof.h"
#include "map_story.h"

static void snapshot(const story_t *s, const char *dir, const char *kind,
                     const char *phase) {
  char path[4096];
  story_print_stats(s, phase);
  snprintf(path, sizeof path, "%s/%s-%s.pb.gz", dir, kind, phase);
  int rc = heapprof_write_profile(path, HEAPPROF_HEAP);
  if (rc != 0) {
    fprintf(stderr, "map_delete: cannot write %s: %s\n", path,
            heapprof_strerror(rc));
    exit(1);
  }
}

int main(int argc, char **argv) {
  const char *kind = argc > 1 ? argv[1] : "int";
  const char *dir = argc > 2 ? argv[2] : ".";
  size_t n = argc > 3 ? strtoul(argv[3], NULL, 10) : 1000000;
  if (strcmp(kind, "int") != 0 && strcmp(kind, "str") != 0) {
    fprintf(stderr, "usage: map_delete [int|str] [OUTDIR] [ENTRIES]\n");
    return 2;
  }
  /* The header also makes stdio allocate its buffer now, not between the
   * phases whose counts it would then disturb. */
  printf("%s map, %zu entries: statistics after each phase\n", kind, n);
  fflush(stdout);
  story_t s;
  if (story_init(&s, strcmp(kind, "int") == 0 ? STORY_INT : STORY_STR, n) ||
      story_fill(&s)) {
    fprintf(stderr, "map_delete: out of memory filling the map\n");
    return 1;
  }
  snapshot(&s, dir, kind, "before");
  story_delete_all(&s);
  snapshot(&s, dir, kind, "after-delete");
  if (story_rebuild(&s)) {
    fprintf(stderr, "map_delete: out of memory\n");
    return 1;
  }
  snapshot(&s, dir, kind, "after-rebuild");
  story_free(&s);
  return 0;
}
