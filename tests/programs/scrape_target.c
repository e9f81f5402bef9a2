/*
 * scrape_target — a process for http_serve.py to profile from outside
 * (LD_PRELOAD=libheapprof.so, HEAPPROF_HTTP=127.0.0.1:0, HEAPPROF_RATE=1 so
 * that every count is exact) whose heap changes only when told to.
 *
 * It reads commands on stdin, one a line, and answers "ok" on stdout once
 * each is done (so the test knows the heap is as it asked before it
 * scrapes):
 *   a N SIZE   allocate N blocks of SIZE bytes at kept_site and keep them
 *   f          free every kept block
 *   b K        K blocks of K distinct sizes at many_site, each freed at
 *              once: K buckets more, so that a profile gets big
 * At the end of its input it exits 0. A line it cannot read is answered
 * "error" and changes nothing.
 *
 * The kept blocks' list lives in blocks allocated at keep_list_grow, so
 * kept_site's samples are exactly the blocks asked for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void **kept;
static size_t kept_len, kept_cap;

/* noipa: neither inlined nor cloned, so each is the leaf frame of its own
 * samples, named as the test names it. */
__attribute__((noipa)) void *kept_site(size_t size) {
  void *p = malloc(size);
  if (p != NULL)
    memset(p, 0xa5, size); /* really used: the compiler cannot drop it */
  return p;
}

__attribute__((noipa)) void many_site(size_t size) {
  void *p = malloc(size);
  __asm__ volatile("" : : "r"(p) : "memory");
  free(p);
}

__attribute__((noipa)) static int keep_list_grow(size_t need) {
  if (need <= kept_cap)
    return 0;
  size_t cap = kept_cap != 0 ? kept_cap : 64;
  while (cap < need)
    cap *= 2;
  void **grown = realloc(kept, cap * sizeof *kept);
  if (grown == NULL)
    return -1;
  kept = grown;
  kept_cap = cap;
  return 0;
}

static int allocate(unsigned long n, unsigned long size) {
  if (keep_list_grow(kept_len + n) != 0)
    return -1;
  for (unsigned long i = 0; i < n; i++) {
    void *p = kept_site(size);
    if (p == NULL)
      return -1;
    kept[kept_len++] = p;
  }
  return 0;
}

static void free_all(void) {
  for (size_t i = 0; i < kept_len; i++)
    free(kept[i]);
  kept_len = 0;
}

/* Sizes 1..K bytes above 16: K distinct (stack, size) keys. */
static void many(unsigned long k) {
  for (unsigned long i = 1; i <= k; i++)
    many_site(16 + i);
}

static int obey(const char *line) {
  unsigned long n, size;
  char extra;
  if (sscanf(line, "a %lu %lu %c", &n, &size, &extra) == 2 && size > 0)
    return allocate(n, size);
  if (strcmp(line, "f\n") == 0 || strcmp(line, "f") == 0)
    return free_all(), 0;
  if (sscanf(line, "b %lu %c", &n, &extra) == 1)
    return many(n), 0;
  return -1;
}

int main(void) {
  char line[256];
  while (fgets(line, sizeof line, stdin) != NULL) {
    fputs(obey(line) == 0 ? "ok\n" : "error\n", stdout);
    fflush(stdout);
  }
  free_all();
  free(kept);
  return 0;
}
