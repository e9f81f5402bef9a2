/*
 * alloc_common — what the malloc-family contract tests share: a fixed
 * pseudo-random generator, a pattern to fill blocks with (no zero bytes, so
 * a lost byte never passes for a written one, and no repeats within a
 * block, so a shifted copy never passes either), and the checks that the
 * run is the one it claims to be: heapprof loaded, and the allocator named
 * on the command line beneath it. Without those checks a misconfigured
 * LD_PRELOAD would test glibc alone and pass.
 */
#ifndef HEAPPROF_ALLOC_COMMON_H
#define HEAPPROF_ALLOC_COMMON_H

#include <dlfcn.h>
#include <stdint.h>
#include <string.h>

#include "testlib.h"

/* Room for the largest block a test fills plus every pattern offset. */
#define ALLOC_PAT_OFFSETS 65536
#define ALLOC_PAT_BYTES ((size_t)(2u << 20) + ALLOC_PAT_OFFSETS)

static uint64_t alloc_rng_state = 0x9e3779b97f4a7c15ull;

static inline uint64_t alloc_rand(void) {
  uint64_t x = alloc_rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return alloc_rng_state = x;
}

static unsigned char alloc_pat[ALLOC_PAT_BYTES];

/* Bytes 1..255 from the generator: every window differs from its shifts. */
static inline void alloc_pat_init(void) {
  for (size_t i = 0; i < ALLOC_PAT_BYTES; i++)
    alloc_pat[i] = (unsigned char)(1 + alloc_rand() % 255);
}

/* The first offset in `p` where it differs from the pattern at `off`, or
 * `n` if the `n` bytes match. */
static inline size_t alloc_pat_diff(const unsigned char *p, size_t off,
                                    size_t n) {
  if (memcmp(p, alloc_pat + off, n) == 0)
    return n;
  size_t i = 0;
  while (p[i] == alloc_pat[off + i])
    i++;
  return i;
}

/* Fails the test unless `beneath` ("glibc", "jemalloc" or "tcmalloc") is
 * the allocator the malloc family reaches, and heapprof is loaded — or,
 * with `bare` (a run by hand that checks the checker against the
 * allocator alone), is not. */
static inline void alloc_expect_beneath(const char *beneath, int bare) {
  int heapprof = dlsym(RTLD_DEFAULT, "heapprof_get_rate") != NULL;
  int je = dlsym(RTLD_DEFAULT, "mallctl") != NULL;
  int tc = dlsym(RTLD_DEFAULT, "tc_malloc") != NULL;
  const char *found = je ? "jemalloc" : tc ? "tcmalloc" : "glibc";
  CHECK(heapprof != bare, "heapprof is %sloaded: this run would prove nothing",
        heapprof ? "" : "not ");
  CHECK(strcmp(found, beneath) == 0,
        "expected %s beneath heapprof, found %s (check LD_PRELOAD)", beneath,
        found);
}

#endif /* HEAPPROF_ALLOC_COMMON_H */
