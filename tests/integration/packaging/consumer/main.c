/*
 * A program built against an installed heapprof (by the packaging tests,
 * with CMake and with pkg-config): it profiles one allocation of its own,
 * labelled, through the API, writes the profile to argv[1], and prints the path of
 * every libheapprof mapped into it, one "mapped PATH" line each.
 */
#include <heapprof.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *volatile consumer_kept; /* keeps the block in use, and the call */

__attribute__((noinline)) void consumer_alloc(void) {
  consumer_kept = malloc(123457);
}

static int fail(const char *what, int err) {
  fprintf(stderr, "app: %s: %s\n", what, heapprof_strerror(err));
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: app PROFILE\n");
    return 2;
  }
  int err = heapprof_set_rate(1);
  if (err != 0)
    return fail("heapprof_set_rate(1)", err);
  err = heapprof_label_push("side", "consumer");
  if (err != 0)
    return fail("heapprof_label_push", err);
  consumer_alloc();
  heapprof_label_pop();
  err = heapprof_write_profile(argv[1], HEAPPROF_HEAP);
  if (err != 0)
    return fail("heapprof_write_profile", err);

  FILE *maps = fopen("/proc/self/maps", "r");
  if (maps == NULL) {
    perror("app: /proc/self/maps");
    return 1;
  }
  char line[4096];
  while (fgets(line, sizeof line, maps) != NULL) {
    const char *path = strchr(line, '/');
    if (path != NULL && strstr(path, "/libheapprof") != NULL)
      printf("mapped %s", path);
  }
  fclose(maps);
  return 0;
}
