/*
 * test_errno — results and errno of the malloc family are exactly what the
 * program gets without the profiler.
 *
 * Under the profiler (CTest preloads it) the test builds a table of every
 * edge case, then runs itself with --table and no profiler, and the two
 * tables must match line for line.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

static char table[16384];
static size_t used;

#define ROW(...) (used += (size_t)snprintf(table + used, sizeof table - used, __VA_ARGS__))

/* One row: whether the pointer is NULL, whether it has the alignment the
 * call promises (16 for plain malloc), and errno. */
static void row_aligned(const char *what, void *p, int err, size_t align) {
  ROW("%-34s %s aligned=%d errno=%d\n", what, p ? "ptr " : "NULL",
      p ? (int)((uintptr_t)p % align == 0) : -1, err);
}

static void row_ptr(const char *what, void *p, int err) {
  row_aligned(what, p, err, 16);
}

#define CASE_ALIGNED(what, expr, align)                                        \
  do {                                                                         \
    errno = 4242;                                                              \
    void *p_ = (expr);                                                         \
    row_aligned(what, p_, errno, align);                                       \
    free(p_);                                                                  \
  } while (0)
#define CASE_PTR(what, expr) CASE_ALIGNED(what, expr, 16)

static void build_table(void) {
  volatile size_t huge = SIZE_MAX, half = SIZE_MAX / 2 + 2;
  CASE_PTR("malloc(SIZE_MAX)", malloc(huge));
  CASE_PTR("malloc(0)", malloc(0));
  CASE_PTR("calloc(SIZE_MAX/2+2, 2)", calloc(half, 2));
  CASE_PTR("calloc(0, 0)", calloc(0, 0));
  CASE_PTR("realloc(NULL, 100)", realloc(NULL, 100));
  CASE_PTR("reallocarray(NULL, 10, 10)", reallocarray(NULL, 10, 10));
  CASE_PTR("reallocarray(NULL, SIZE_MAX, 2)", reallocarray(NULL, huge, 2));
  CASE_ALIGNED("aligned_alloc(64, 100)", aligned_alloc(64, 100), 64);
  CASE_PTR("aligned_alloc(3, 16)", aligned_alloc(3, 16));
  CASE_PTR("aligned_alloc(64, SIZE_MAX)", aligned_alloc(64, huge));
  CASE_ALIGNED("memalign(64, 100)", memalign(64, 100), 64);
  CASE_PTR("memalign(3, 16)", memalign(3, 16));
  CASE_PTR("memalign(64, SIZE_MAX)", memalign(64, huge));
  CASE_ALIGNED("valloc(100)", valloc(100), 4096);
  CASE_PTR("valloc(SIZE_MAX)", valloc(huge));
  CASE_ALIGNED("pvalloc(0)", pvalloc(0), 4096);
  CASE_PTR("pvalloc(SIZE_MAX)", pvalloc(huge));

  /* realloc(p, 0) frees p in glibc and returns NULL. */
  errno = 4242;
  void *p = malloc(100);
  void *q = realloc(p, 0);
  row_ptr("realloc(p, 0)", q, errno);
  free(q);

  /* A failing realloc leaves p and its contents alone. (volatile: the
   * compiler cannot know that p survives a failed realloc.) */
  unsigned char *volatile live = malloc(100);
  memset(live, 0x5a, 100);
  errno = 4242;
  q = realloc(live, huge);
  row_ptr("realloc(p, SIZE_MAX)", q, errno);
  ROW("  p intact after failed realloc: %d\n", live[99] == 0x5a);
  errno = 4242;
  q = reallocarray(live, huge, 2);
  row_ptr("reallocarray(p, SIZE_MAX, 2)", q, errno);
  q = realloc(live, 100000); /* a real move */
  ROW("  contents moved by realloc: %d\n", ((unsigned char *)q)[99] == 0x5a);
  free(q);

  static const size_t aligns[] = {0, 3, 8, 64, 4096, (size_t)1 << 40};
  static const size_t sizes[] = {16, SIZE_MAX};
  for (size_t a = 0; a < sizeof aligns / sizeof *aligns; a++) {
    for (size_t s = 0; s < 2; s++) {
      void *r = NULL;
      errno = 4242;
      int rc = posix_memalign(&r, aligns[a], sizes[s]);
      ROW("posix_memalign(%zu, %zu) rc=%d %s errno=%d\n", aligns[a], sizes[s],
          rc, rc == 0 ? "set" : "unset", errno);
      if (rc == 0)
        free(r);
    }
  }

  errno = 4242;
  free(NULL);
  ROW("free(NULL) errno=%d\n", errno);
  for (int i = 0; i < 100; i++) { /* at rate 1 every one of these is sampled */
    p = malloc(64 + (size_t)i);
    errno = 4242 + i;
    free(p);
    if (errno != 4242 + i)
      ROW("free changed errno to %d\n", errno);
  }
  ROW("free preserves errno: checked 100\n");
  p = malloc(100);
  ROW("malloc_usable_size(malloc(100)) >= 100: %d\n",
      malloc_usable_size(p) >= 100);
  free(p);
  ROW("malloc_usable_size(NULL) = %zu\n", malloc_usable_size(NULL));
}

int main(int argc, char **argv) {
  build_table();
  if (argc > 1 && strcmp(argv[1], "--table") == 0) {
    fputs(table, stdout);
    return 0;
  }
  CHECK(dlsym(RTLD_DEFAULT, "heapprof_get_rate") != NULL,
        "the profiler is not loaded: this comparison would prove nothing");
  char *plain;
  char *args[] = {argv[0], "--table", NULL};
  CHECK(tl_run(args, &plain) == 0, "the run without the profiler failed");
  if (strcmp(plain, table) != 0) {
    fprintf(stderr, "--- without profiler\n%s--- with profiler\n%s", plain,
            table);
    CHECK(0, "results or errno differ with the profiler");
  }
  fputs(table, stdout);
  printf("ok: identical with and without the profiler\n");
  return 0;
}
