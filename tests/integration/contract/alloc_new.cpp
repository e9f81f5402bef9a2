/*
 * alloc_new — host contract: a block from C++'s operator new is the
 * program's through its whole malloc_usable_size, like malloc's (B1).
 *
 * 200,000 blocks of 1–4096 bytes (log-uniform) from every form of operator
 * new — new, new[], their nothrow forms, and the aligned forms with
 * alignments 32 B–4 KiB (one in 64 up to 1 MiB) — are filled through their
 * whole usable size, kept 512 at a time while the others come and go in
 * random order, checked whole, and given back by the matching delete
 * (sized and unsized). Aligned forms must return their alignment, plain
 * forms 16 bytes (__STDCPP_DEFAULT_NEW_ALIGNMENT__) from 16 bytes up.
 * Afterwards the profile holds samples from every site and none of them in
 * use: every delete reached heapprof.
 *
 * usage: alloc_new glibc|jemalloc|tcmalloc [bare]
 */
#include <malloc.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>

#include "alloc_common.h"

#define BLOCKS 200000
#define SLOTS 512
#define NOINLINE __attribute__((noipa))

enum form { NEW, NEW_ARRAY, NEW_NOTHROW, NEW_ARRAY_NOTHROW, NEW_ALIGNED,
            NEW_ARRAY_ALIGNED, NEW_ALIGNED_NOTHROW, NEW_ARRAY_ALIGNED_NOTHROW,
            FORMS };
static const char *const form_name[FORMS] = {
    "new", "new[]", "new(nothrow)", "new[](nothrow)", "new(align)",
    "new[](align)", "new(align, nothrow)", "new[](align, nothrow)"};
/* One allocating function per form: the profile's leaf for its blocks. */
static const char *const site_name[FORMS] = {
    "site_new", "site_new_array", "site_new_nothrow", "site_new_array_nothrow",
    "site_new_aligned", "site_new_array_aligned", "site_new_aligned_nothrow",
    "site_new_array_aligned_nothrow"};

#define BARRIER __asm__ volatile("" ::: "memory")
extern "C" {
NOINLINE void *site_new(size_t n) { void *p = ::operator new(n); BARRIER; return p; }
NOINLINE void *site_new_array(size_t n) { void *p = ::operator new[](n); BARRIER; return p; }
NOINLINE void *site_new_nothrow(size_t n) {
  void *p = ::operator new(n, std::nothrow); BARRIER; return p;
}
NOINLINE void *site_new_array_nothrow(size_t n) {
  void *p = ::operator new[](n, std::nothrow); BARRIER; return p;
}
NOINLINE void *site_new_aligned(size_t n, std::align_val_t a) {
  void *p = ::operator new(n, a); BARRIER; return p;
}
NOINLINE void *site_new_array_aligned(size_t n, std::align_val_t a) {
  void *p = ::operator new[](n, a); BARRIER; return p;
}
NOINLINE void *site_new_aligned_nothrow(size_t n, std::align_val_t a) {
  void *p = ::operator new(n, a, std::nothrow); BARRIER; return p;
}
NOINLINE void *site_new_array_aligned_nothrow(size_t n, std::align_val_t a) {
  void *p = ::operator new[](n, a, std::nothrow); BARRIER; return p;
}
}

struct slot {
  unsigned char *p;
  size_t n, usable, off, align;
  int form, sized;
};

static long lost_blocks, checked_bytes;
static char first_loss[512];

static size_t small_size(void) {
  return 1 + (size_t)(alloc_rand() % ((uint64_t)1 << (alloc_rand() % 13)));
}

static void *make(int form, size_t n, size_t align) {
  std::align_val_t a = static_cast<std::align_val_t>(align);
  switch (form) {
  case NEW: return site_new(n);
  case NEW_ARRAY: return site_new_array(n);
  case NEW_NOTHROW: return site_new_nothrow(n);
  case NEW_ARRAY_NOTHROW: return site_new_array_nothrow(n);
  case NEW_ALIGNED: return site_new_aligned(n, a);
  case NEW_ARRAY_ALIGNED: return site_new_array_aligned(n, a);
  case NEW_ALIGNED_NOTHROW: return site_new_aligned_nothrow(n, a);
  default: return site_new_array_aligned_nothrow(n, a);
  }
}

/* The delete that matches the form, sized or not. */
static void give_back(const slot &s) {
  std::align_val_t a = static_cast<std::align_val_t>(s.align);
  int array = s.form % 2 == 1, aligned = s.form >= NEW_ALIGNED;
  if (!aligned && !array)
    s.sized ? ::operator delete(s.p, s.n) : ::operator delete(s.p);
  else if (!aligned)
    s.sized ? ::operator delete[](s.p, s.n) : ::operator delete[](s.p);
  else if (!array)
    s.sized ? ::operator delete(s.p, s.n, a) : ::operator delete(s.p, a);
  else
    s.sized ? ::operator delete[](s.p, s.n, a) : ::operator delete[](s.p, a);
}

static void start(slot &s) {
  s.form = (int)(alloc_rand() % FORMS);
  s.sized = (int)(alloc_rand() % 2);
  s.n = small_size();
  s.align = (size_t)32 << alloc_rand() % 8; /* 32 B .. 4 KiB */
  if (alloc_rand() % 64 == 0)
    s.align = (size_t)8192 << alloc_rand() % 8; /* 8 KiB .. 1 MiB */
  if (s.form < NEW_ALIGNED)
    s.align = s.n >= 16 ? 16 : 1;
  s.p = static_cast<unsigned char *>(make(s.form, s.n, s.align));
  CHECK(s.p != NULL, "%s(%zu) gave NULL", form_name[s.form], s.n);
  CHECK((uintptr_t)s.p % s.align == 0, "%s(%zu): %p not %zu-aligned",
        form_name[s.form], s.n, (void *)s.p, s.align);
  s.usable = malloc_usable_size(s.p);
  CHECK(s.usable >= s.n, "%s(%zu): malloc_usable_size %zu", form_name[s.form],
        s.n, s.usable);
  CHECK(s.usable <= ALLOC_PAT_BYTES - ALLOC_PAT_OFFSETS, "usable %zu", s.usable);
  s.off = (size_t)(alloc_rand() % ALLOC_PAT_OFFSETS);
  memcpy(s.p, alloc_pat + s.off, s.usable);
}

static void finish(slot &s) {
  CHECK(malloc_usable_size(s.p) == s.usable, "%s block: usable size %zu, was %zu",
        form_name[s.form], malloc_usable_size(s.p), s.usable);
  size_t at = alloc_pat_diff(s.p, s.off, s.usable);
  checked_bytes += (long)s.usable;
  if (at < s.usable && lost_blocks++ == 0)
    snprintf(first_loss, sizeof first_loss,
             "%s(%zu, align %zu), %zu usable: byte %zu is 0x%02x, want 0x%02x",
             form_name[s.form], s.n, s.align, s.usable, at, s.p[at],
             alloc_pat[s.off + at]);
  give_back(s);
  s.p = NULL;
}

int main(int argc, char **argv) {
  CHECK(argc == 2 || (argc == 3 && strcmp(argv[2], "bare") == 0),
        "usage: alloc_new glibc|jemalloc|tcmalloc [bare]");
  alloc_expect_beneath(argv[1], argc == 3);
  alloc_pat_init();
  static slot slots[SLOTS];
  long started = 0, live = 0;
  while (started < BLOCKS || live > 0) {
    slot &s = slots[alloc_rand() % SLOTS];
    if (s.p == NULL) {
      if (started < BLOCKS)
        start(s), started++, live++;
    } else {
      finish(s), live--;
    }
  }
  CHECK(lost_blocks == 0, "%ld of %d blocks were changed while the program "
        "owned them; the first: %s", lost_blocks, BLOCKS, first_loss);
  printf("ok: %d blocks from operator new, %ld bytes checked, none changed\n",
         BLOCKS, checked_bytes);
  if (argc == 3)
    return 0;

  char path[512];
  snprintf(path, sizeof path, "%s/new.pb.gz", tl_tmpdir());
  CHECK(tl_write_profile(path, 1) == 0, "write %s", path);
  tl_profile_t prof;
  tl_read_profile(path, &prof);
  for (int f = 0; f < FORMS; f++) {
    int64_t v[4];
    size_t nb = tl_site(&prof, site_name[f], v);
    CHECK(nb > 0 && v[0] > 0, "no sampled %s blocks at %s: the slow path "
          "was not tested\n%.3000s", form_name[f], site_name[f], prof.raw);
    CHECK(v[2] == 0 && v[3] == 0, "%s: %lld objects (%lld B) still in use "
          "after every block was deleted", form_name[f], (long long)v[2],
          (long long)v[3]);
    printf("%-22s %6lld sampled allocations (scaled), none in use\n",
           form_name[f], (long long)v[0]);
  }
  tl_free_profile(&prof);
  return 0;
}
