/*
 * test_realloc — blocks move between sampled and ordinary through realloc
 * chains, aligned allocations and calloc, with their contents checked at
 * every step; malloc_usable_size and alignment hold for sampled blocks
 * too; and once everything is freed the profile's in-use is exactly zero,
 * whatever the rate (every sampled block was recognised at its free).
 * CTest runs it at rates 1, 4096 and the default.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#define SLOTS 4096
#define STEPS 400000

typedef struct slot {
  unsigned char *p;
  size_t n;
  unsigned char fill;
} slot_t;

static uint64_t rng = 0x1234567;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void verify(const slot_t *s) {
  for (size_t i = 0; i < s->n; i += 1 + s->n / 16)
    CHECK(s->p[i] == s->fill, "block %p (%zu B) corrupted at %zu", (void *)s->p,
          s->n, i);
  if (s->n)
    CHECK(s->p[s->n - 1] == s->fill, "block tail corrupted");
  CHECK(s->p == NULL || malloc_usable_size(s->p) >= s->n,
        "usable size %zu < %zu", malloc_usable_size(s->p), s->n);
}

/* The empty asm after each call keeps the site a real frame: a tail call
 * would leave the allocation to the caller's frame. */
static __attribute__((noipa)) void *churn_alloc(size_t n, int kind, size_t align) {
  void *p = NULL;
  switch (kind) {
  case 0: p = malloc(n); break;
  case 1: p = calloc(1, n); break;
  case 2: p = aligned_alloc(align, (n + align - 1) / align * align); break;
  case 3: p = memalign(align, n); break;
  case 4: if (posix_memalign(&p, align, n) != 0) p = NULL; break;
  default: p = valloc(n); break;
  }
  __asm__ volatile("" ::: "memory");
  return p;
}

static __attribute__((noipa)) void *churn_realloc(void *p, size_t n) {
  void *q = realloc(p, n);
  __asm__ volatile("" ::: "memory");
  return q;
}

static void step(slot_t *s) {
  uint64_t r = next();
  size_t n = (size_t)(r >> 40) % (r & 1 ? 300 : 40000);
  if (s->p != NULL)
    verify(s);
  switch (r % 4) {
  case 0: /* free and allocate anew, any kind */
    free(s->p);
    size_t align = (size_t)16 << (r >> 20) % 8;
    int kind = (int)((r >> 8) % 6);
    s->p = churn_alloc(n, kind, align);
    CHECK(s->p != NULL || n == 0, "allocation of %zu failed", n);
    if (kind >= 2 && kind <= 4)
      CHECK((uintptr_t)s->p % align == 0, "kind %d: %p not %zu-aligned", kind,
            (void *)s->p, align);
    if (kind == 1)
      for (size_t i = 0; i < n; i++)
        CHECK(s->p[i] == 0, "calloc memory not zero");
    s->n = s->p ? n : 0;
    break;
  default: { /* realloc: contents up to the smaller size survive */
    if (n == 0)
      n = 1;
    unsigned char *q = churn_realloc(s->p, n);
    CHECK(q != NULL, "realloc to %zu failed", n);
    size_t keep = s->n < n ? s->n : n;
    for (size_t i = 0; i < keep; i += 1 + keep / 16)
      CHECK(q[i] == s->fill, "realloc lost contents at %zu of %zu", i, keep);
    s->p = q;
    s->n = n;
    break;
  }
  }
  s->fill = (unsigned char)(r >> 56);
  if (s->p)
    memset(s->p, s->fill, s->n);
}

int main(void) {
  static slot_t slots[SLOTS];
  for (long i = 0; i < STEPS; i++)
    step(&slots[next() % SLOTS]);
  for (int i = 0; i < SLOTS; i++) {
    if (slots[i].p)
      verify(&slots[i]);
    free(slots[i].p);
  }
  char path[512];
  snprintf(path, sizeof path, "%s/realloc.pb.gz", tl_tmpdir());
  CHECK(tl_write_profile(path, 0) == 0, "write");
  tl_profile_t p;
  tl_read_profile(path, &p);
  int64_t alloc = 0, inuse = 0, v[4];
  tl_site(&p, "churn_alloc", v);
  alloc += v[0], inuse += v[2];
  tl_site(&p, "churn_realloc", v);
  alloc += v[0], inuse += v[2];
  CHECK(alloc > 0, "no samples at the churn sites:\n%s", p.raw);
  CHECK(inuse == 0, "%lld objects still in use after every block was freed",
        (long long)inuse);
  printf("ok: %d steps, %lld sampled allocations (scaled), none left in use\n",
         STEPS, (long long)alloc);
  tl_free_profile(&p);
  return 0;
}
