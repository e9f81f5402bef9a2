/*
 * alloc_usable — host contract B1: every malloc_usable_size() byte of a
 * block is the program's, and realloc carries min(old usable, new usable)
 * of them, whichever function made the block and whichever allocator lies
 * beneath heapprof (over tcmalloc: min(old usable, new size), all that
 * tcmalloc's own realloc keeps; and jemalloc has no pvalloc of its own).
 *
 * 200,000 blocks, 1–4096 bytes (log-uniform, so most are small, like
 * redis's sds strings), made by malloc, calloc, memalign, aligned_alloc,
 * posix_memalign (alignments 16 B–4 KiB, one in 64 up to 1 MiB), valloc and
 * pvalloc. Each is filled through its whole usable size and reallocated
 * five times — a little larger, much larger, smaller, to 1 B–8 KiB or (one
 * in 64) to 128–256 KiB, and small again — so that at rate 4096 a block
 * crosses between sampled and ordinary in both directions many times, and
 * at the default rate the big steps do. After every realloc the first
 * min(old usable, new usable) bytes must be the old ones; the block is then
 * refilled through its new usable size. 512 blocks are alive at a time and
 * advanced in random order, and each is checked whole before it is freed:
 * nothing done to the others may touch it.
 *
 * usage: alloc_usable glibc|jemalloc|tcmalloc [bare]
 *        (bare: the allocator alone, without heapprof, run by hand to show
 *        the allocator itself keeps what this test demands)
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc_common.h"

#define BLOCKS 200000
#define SLOTS 512
#define STEPS 5

enum kind { MALLOC, CALLOC, MEMALIGN, ALIGNED_ALLOC, POSIX_MEMALIGN, VALLOC,
            PVALLOC, KINDS };
static const char *const kind_name[KINDS] = {
    "malloc", "calloc", "memalign", "aligned_alloc", "posix_memalign",
    "valloc", "pvalloc"};

typedef struct slot {
  unsigned char *p;
  size_t n, usable, off; /* asked, usable, pattern offset of its contents */
  int kind, step, lost;
  size_t align;
  size_t plan[STEPS];
} slot_t;

static long lost_blocks, lost_by_kind[KINDS], checked_bytes, reallocs;
static char first_loss[512];

/* The allocation sites, kept as real frames (the empty asm stops a tail
 * call) so that the profile can show that sampled blocks came through. */
static __attribute__((noipa)) void *usable_alloc(int kind, size_t align,
                                                 size_t n) {
  void *p = NULL;
  switch (kind) {
  case MALLOC: p = malloc(n); break;
  case CALLOC: p = calloc(1, n); break;
  case MEMALIGN: p = memalign(align, n); break;
  case ALIGNED_ALLOC: p = aligned_alloc(align, (n + align - 1) / align * align); break;
  case POSIX_MEMALIGN: if (posix_memalign(&p, align, n) != 0) p = NULL; break;
  case VALLOC: p = valloc(n); break;
  default: p = pvalloc(n); break;
  }
  __asm__ volatile("" ::: "memory");
  return p;
}

static __attribute__((noipa)) void *usable_realloc(void *p, size_t n) {
  void *q = realloc(p, n);
  __asm__ volatile("" ::: "memory");
  return q;
}

/* A size from 1 to 4096, log-uniform. */
static size_t small_size(void) {
  return 1 + (size_t)(alloc_rand() % ((uint64_t)1 << (alloc_rand() % 13)));
}

/* Fills every usable byte with the pattern at a fresh offset. */
static void fill(slot_t *s) {
  s->usable = malloc_usable_size(s->p);
  CHECK(s->usable >= s->n, "%s block of %zu B: malloc_usable_size %zu",
        kind_name[s->kind], s->n, s->usable);
  s->off = (size_t)(alloc_rand() % ALLOC_PAT_OFFSETS);
  CHECK(s->usable <= ALLOC_PAT_BYTES - ALLOC_PAT_OFFSETS,
        "usable size %zu beyond the pattern", s->usable);
  memcpy(s->p, alloc_pat + s->off, s->usable);
}

static int kinds = KINDS;
/* What realloc keeps: min(old usable, new usable) in glibc and jemalloc;
 * tcmalloc's own realloc copies min(old usable, new size asked), and
 * heapprof cannot promise more for the blocks it forwards. */
static int keep_to_usable = 1;

static void start(slot_t *s) {
  s->kind = (int)(alloc_rand() % (uint64_t)kinds);
  s->align = (size_t)16 << alloc_rand() % 9; /* 16 B .. 4 KiB */
  if (alloc_rand() % 64 == 0)
    s->align = (size_t)8192 << alloc_rand() % 8; /* 8 KiB .. 1 MiB */
  if (s->kind == VALLOC || s->kind == PVALLOC)
    s->align = (size_t)sysconf(_SC_PAGESIZE);
  else if (s->kind < MEMALIGN)
    s->align = 1; /* (what malloc promises for small sizes varies) */
  s->n = small_size();
  s->p = usable_alloc(s->kind, s->align, s->n);
  CHECK(s->p != NULL, "%s(%zu, align %zu) failed", kind_name[s->kind], s->n,
        s->align);
  CHECK((uintptr_t)s->p % s->align == 0, "%s: %p not %zu-aligned",
        kind_name[s->kind], (void *)s->p, s->align);
  s->plan[0] = s->n + 1 + alloc_rand() % 32;
  s->plan[1] = 2 * s->plan[0] + alloc_rand() % 4096;
  s->plan[2] = 1 + alloc_rand() % (s->plan[1] / 2);
  s->plan[3] = alloc_rand() % 64 == 0 ? 131072 + alloc_rand() % 131072
                                      : 1 + alloc_rand() % 8192;
  s->plan[4] = 1 + alloc_rand() % 256;
  s->step = 0;
  s->lost = 0;
  fill(s);
}

static void lose(slot_t *s, const char *what, size_t old_n,
                 size_t old_usable, size_t keep, size_t at, unsigned got,
                 unsigned want) {
  if (s->lost++ == 0)
    lost_blocks++, lost_by_kind[s->kind]++;
  if (lost_blocks == 1 && s->lost == 1)
    snprintf(first_loss, sizeof first_loss,
             "%s block (align %zu) %s: %zu B asked, %zu usable -> %zu B asked, "
             "%zu usable: byte %zu of the %zu kept is 0x%02x, want 0x%02x",
             kind_name[s->kind], s->align, what, old_n, old_usable, s->n,
             s->usable, at, keep, got, want);
}

/* One realloc: the old block's usable bytes, up to the new usable size,
 * must arrive. */
static void step(slot_t *s) {
  size_t old_n = s->n, old_usable = s->usable, old_off = s->off;
  s->n = s->plan[s->step++];
  unsigned char *q = usable_realloc(s->p, s->n);
  CHECK(q != NULL, "realloc(%zu) failed", s->n);
  s->p = q;
  s->usable = malloc_usable_size(q);
  size_t room = keep_to_usable ? s->usable : s->n;
  size_t keep = old_usable < room ? old_usable : room;
  size_t at = alloc_pat_diff(q, old_off, keep);
  checked_bytes += (long)keep;
  reallocs++;
  if (at < keep)
    lose(s, "realloc", old_n, old_usable, keep, at, q[at],
         alloc_pat[old_off + at]);
  fill(s);
}

/* The whole block as last filled, however the other blocks were treated. */
static void finish(slot_t *s) {
  size_t at = alloc_pat_diff(s->p, s->off, s->usable);
  checked_bytes += (long)s->usable;
  if (at < s->usable)
    lose(s, "before free", s->n, s->usable, s->usable, at, s->p[at],
         alloc_pat[s->off + at]);
  free(s->p);
  s->p = NULL;
}

int main(int argc, char **argv) {
  CHECK(argc == 2 || (argc == 3 && strcmp(argv[2], "bare") == 0),
        "usage: alloc_usable glibc|jemalloc|tcmalloc [bare]");
  alloc_expect_beneath(argv[1], argc == 3);
  alloc_pat_init();
  if (strcmp(argv[1], "jemalloc") == 0) {
    /* jemalloc has no pvalloc: glibc's answers, and jemalloc's free or
     * malloc_usable_size of that block crashes, heapprof or not. */
    kinds = PVALLOC;
    printf("jemalloc: pvalloc left out (it crashes without heapprof)\n");
  }
  if (strcmp(argv[1], "tcmalloc") == 0) {
    keep_to_usable = 0;
    printf("tcmalloc: realloc keeps min(old usable, new size), as tcmalloc "
           "does\n");
  }
  static slot_t slots[SLOTS];
  long started = 0, live = 0;
  while (started < BLOCKS || live > 0) {
    slot_t *s = &slots[alloc_rand() % SLOTS];
    if (s->p == NULL) {
      if (started < BLOCKS)
        start(s), started++, live++;
    } else if (s->step < STEPS) {
      step(s);
    } else {
      finish(s), live--;
    }
  }
  char by_kind[256] = "";
  for (int k = 0, n = 0; k < KINDS; k++)
    n += snprintf(by_kind + n, sizeof by_kind - (size_t)n, " %s %ld",
                  kind_name[k], lost_by_kind[k]);
  CHECK(lost_blocks == 0, "%ld of %d blocks lost bytes (by function:%s); "
        "the first: %s", lost_blocks, BLOCKS, by_kind, first_loss);
  printf("ok: %d blocks, %ld reallocs, %ld bytes checked, none lost\n", BLOCKS,
         reallocs, checked_bytes);
  if (argc == 3)
    return 0;

  /* Sampled blocks went through both sites: the run tested heapprof's
   * slow paths, not only its forwarding. */
  char path[512];
  snprintf(path, sizeof path, "%s/usable.pb.gz", tl_tmpdir());
  CHECK(tl_write_profile(path, 1) == 0, "write %s", path);
  tl_profile_t prof;
  tl_read_profile(path, &prof);
  int64_t a[4], r[4];
  size_t na = tl_site(&prof, "usable_alloc", a);
  size_t nr = tl_site(&prof, "usable_realloc", r);
  CHECK(na > 0 && nr > 0, "no sampled blocks at usable_alloc (%zu) or "
        "usable_realloc (%zu): the slow paths were not tested\n%.3000s",
        na, nr, prof.raw);
  printf("ok: %zu sampled buckets at usable_alloc, %zu at usable_realloc\n", na,
         nr);
  tl_free_profile(&prof);
  return 0;
}
