/*
 * test_live — at rate 1 every block is tracked: 10 million live blocks are
 * all in the profile, exactly, and all leave it when freed.
 */
#include <stdio.h>
#include <stdlib.h>

#include "testlib.h"

#define BLOCKS 10000000

static __attribute__((noipa)) void fill(void **v, long n) {
  for (long i = 0; i < n; i++)
    v[i] = malloc(16 + (size_t)(i & 3) * 16);
}

static void check(const char *name, int64_t inuse_objects) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s.pb.gz", tl_tmpdir(), name);
  CHECK(tl_write_profile(path, 0) == 0, "write %s", path);
  tl_profile_t p;
  tl_read_profile(path, &p);
  int64_t v[4];
  tl_site(&p, "fill", v);
  /* 4 sizes 16..64, equally often: mean 40 B. */
  CHECK(v[0] == BLOCKS && v[1] == (int64_t)BLOCKS * 40,
        "%s: alloc %lld/%lld", name, (long long)v[0], (long long)v[1]);
  CHECK(v[2] == inuse_objects && v[3] == inuse_objects * 40,
        "%s: in use %lld/%lld, want %lld objects", name, (long long)v[2],
        (long long)v[3], (long long)inuse_objects);
  printf("%s: %lld objects in use, %lld bytes\n", name, (long long)v[2],
         (long long)v[3]);
  tl_free_profile(&p);
}

int main(void) {
  void **v = malloc(BLOCKS * sizeof *v);
  fill(v, BLOCKS);
  check("live", BLOCKS);
  for (long i = 0; i < BLOCKS; i++)
    free(v[i]);
  check("freed", 0);
  free(v);
  printf("ok\n");
  return 0;
}
