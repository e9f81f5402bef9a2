/*
 * test_alloc_attach — attach mode's malloc family and operator new/delete
 * (runtime/alloc_attach.c), called directly, without patching a GOT.
 *
 * The test dlopens libheapprof.so RTLD_LOCAL, as an attach does, so that
 * dlsym(RTLD_DEFAULT) finds glibc's malloc and libstdc++'s operator new
 * (the program's binding) and heapprof stays out of the global scope. It
 * reaches the hidden attach_* functions through the library's test seam
 * (heapprof__test_attach_seam), turns sampling on as an attach does (the
 * seam's begin: no slot patched), then heapprof_set_rate(1)
 * and reads profiles back with `go tool pprof -raw`. Each mode is its own
 * process (CTest runs one per mode):
 *
 *   exact    every allocating function (11 C and C++ forms, 17 sites) N
 *            times: N objects of the asked size per site, the site as the
 *            leaf and its caller as the next frame; stats count every
 *            call; freed through free and all 12 deletes, the profile's
 *            in-use is zero and the side table empty.
 *   blocks   sampled blocks are glibc's own: glibc's chunk header sits
 *            right below the pointer, malloc_usable_size as for an
 *            unprofiled block of the same size, alignment as asked, calloc
 *            zeroed (over memory dirtied first).
 *   realloc  the record moves with the block (moved, shrunk in place),
 *            goes at realloc(p, 0) and when the new block is not sampled,
 *            and stays when realloc or reallocarray fails (p untouched,
 *            contents kept).
 *   stale    a sampled block freed by glibc's free directly (bypassing
 *            heapprof), its address then handed out again: no crash, and
 *            the old sample counts as freed when the address is sampled
 *            again, freed, or realloc'ed through heapprof; a churn with
 *            such frees mixed in, then forget, leaves in-use zero.
 *   forget   alloc_attach_forget (detach) counts every live sample freed
 *            and clears the map: blocks freed afterwards by glibc or by a
 *            leftover pointer to attach_free are never counted twice.
 *   errno    errno is the program's across sampled calls, the allocator's
 *            (ENOMEM, EINVAL) on failure.
 *   cxx      operator new's failure runs the program's new_handler and
 *            throws std::bad_alloc; the nothrow forms return NULL.
 *   threads  4 threads churn sampled blocks (every kind, realloc, delete)
 *            through a growing side table: every sample's free is found,
 *            the totals are exact, nothing is dropped.
 *   fork     100 forks while two threads churn sampled blocks: every child
 *            samples and frees 5,000 blocks and exits (the side table has
 *            no lock, so fork needs no handler of its own).
 *   maxmem   under HEAPPROF_MAX_MEM=16M, 600,000 live samples do not fit:
 *            drops are counted, nothing crashes, and in-use, the live count
 *            and the side table agree throughout.
 *
 * Usage: test_alloc_attach LIBHEAPPROF MODE. Exit 0 = pass.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <new>

#include "alloc_attach.h"
#include "heapprof.h"
#include "testlib.h"

#define NOINLINE __attribute__((noipa))
/* Keeps a call from being a tail call, so that the site is a frame. */
#define KEEP() __asm__ volatile("" ::: "memory")

/* ---- the library, loaded as an attach loads it ---- */

static void *lib;
static const alloc_attach_seam_t *seam;
static int (*set_rate)(long);
static int (*write_profile)(const char *, heapprof_kind_t);
static int (*read_stats)(heapprof_stats_t *);
static void (*libc_free)(void *);
static void *(*libc_malloc)(size_t);

/* The attach-mode functions, as a patched GOT slot would reach them. */
static struct {
  void *(*malloc)(size_t);
  void (*free)(void *);
  void *(*calloc)(size_t, size_t);
  void *(*realloc)(void *, size_t);
  void *(*reallocarray)(void *, size_t, size_t);
  int (*posix_memalign)(void **, size_t, size_t);
  void *(*aligned_alloc)(size_t, size_t);
  void *(*memalign)(size_t, size_t);
  void *(*valloc)(size_t);
  void *(*pvalloc)(size_t);
  void *(*nw)(size_t), *(*na)(size_t);
  void *(*nw_nt)(size_t, const void *), *(*na_nt)(size_t, const void *);
  void *(*nw_al)(size_t, size_t), *(*na_al)(size_t, size_t);
  void *(*nw_al_nt)(size_t, size_t, const void *);
  void *(*na_al_nt)(size_t, size_t, const void *);
  void (*dl)(void *), (*da)(void *);
  void (*dl_sz)(void *, size_t), (*da_sz)(void *, size_t);
  void (*dl_nt)(void *, const void *), (*da_nt)(void *, const void *);
  void (*dl_al)(void *, size_t), (*da_al)(void *, size_t);
  void (*dl_sz_al)(void *, size_t, size_t), (*da_sz_al)(void *, size_t, size_t);
  void (*dl_al_nt)(void *, size_t, const void *);
  void (*da_al_nt)(void *, size_t, const void *);
} h;

static void *hook(const char *name, int want_original) {
  for (size_t i = 0; i < seam->nhooks; i++)
    if (strcmp(seam->hooks[i].name, name) == 0) {
      CHECK(!want_original || seam->hooks[i].original != NULL,
            "hook %s: no original (the program's binding) after resolve", name);
      return seam->hooks[i].replacement;
    }
  tl_fail(__FILE__, __LINE__, "hook", "no hook named %s", name);
}

template <typename F> static void get(F &f, const char *name) {
  f = (F)hook(name, 1);
}

static void *sym(void *handle, const char *name) {
  void *f = dlsym(handle, name);
  CHECK(f != NULL, "dlsym %s: %s", name, dlerror());
  return f;
}

static void load(const char *path) {
  CHECK(dlsym(RTLD_DEFAULT, "heapprof_set_rate") == NULL,
        "heapprof is already in the global scope: this test must run with "
        "no LD_PRELOAD and without linking it");
  lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  CHECK(lib != NULL, "dlopen %s: %s", path, dlerror());
  seam = ((const alloc_attach_seam_t *(*)(void))sym(
      lib, "heapprof__test_attach_seam"))();
  CHECK(seam->resolve() == 0, "alloc_attach_resolve: %s", strerror(errno));
  set_rate = (int (*)(long))sym(lib, "heapprof_set_rate");
  write_profile =
      (int (*)(const char *, heapprof_kind_t))sym(lib, "heapprof_write_profile");
  read_stats = (int (*)(heapprof_stats_t *))sym(lib, "heapprof_read_stats");
  libc_free = (void (*)(void *))sym(RTLD_DEFAULT, "free");
  libc_malloc = (void *(*)(size_t))sym(RTLD_DEFAULT, "malloc");
  Dl_info in;
  CHECK(dladdr((void *)libc_free, &in) != 0 && strstr(in.dli_fname, "libc") != NULL,
        "free is not glibc's: %s", in.dli_fname);
  get(h.malloc, "malloc");
  get(h.free, "free");
  get(h.calloc, "calloc");
  get(h.realloc, "realloc");
  get(h.reallocarray, "reallocarray");
  get(h.posix_memalign, "posix_memalign");
  get(h.aligned_alloc, "aligned_alloc");
  get(h.memalign, "memalign");
  get(h.valloc, "valloc");
  get(h.pvalloc, "pvalloc");
  get(h.nw, "_Znwm");
  get(h.na, "_Znam");
  get(h.nw_nt, "_ZnwmRKSt9nothrow_t");
  get(h.na_nt, "_ZnamRKSt9nothrow_t");
  get(h.nw_al, "_ZnwmSt11align_val_t");
  get(h.na_al, "_ZnamSt11align_val_t");
  get(h.nw_al_nt, "_ZnwmSt11align_val_tRKSt9nothrow_t");
  get(h.na_al_nt, "_ZnamSt11align_val_tRKSt9nothrow_t");
  get(h.dl, "_ZdlPv");
  get(h.da, "_ZdaPv");
  get(h.dl_sz, "_ZdlPvm");
  get(h.da_sz, "_ZdaPvm");
  get(h.dl_nt, "_ZdlPvRKSt9nothrow_t");
  get(h.da_nt, "_ZdaPvRKSt9nothrow_t");
  get(h.dl_al, "_ZdlPvSt11align_val_t");
  get(h.da_al, "_ZdaPvSt11align_val_t");
  get(h.dl_sz_al, "_ZdlPvmSt11align_val_t");
  get(h.da_sz_al, "_ZdaPvmSt11align_val_t");
  get(h.dl_al_nt, "_ZdlPvSt11align_val_tRKSt9nothrow_t");
  get(h.da_al_nt, "_ZdaPvSt11align_val_tRKSt9nothrow_t");
  CHECK(seam->nhooks == 30, "%zu hooks, want 30 (10 C + 20 C++)", seam->nhooks);
  /* The free family comes first, for got_patch. */
  CHECK(strcmp(seam->hooks[0].name, "free") == 0, "hook 0 is %s",
        seam->hooks[0].name);
  CHECK(seam->begin() == 0, "starting as an attach does: %s", strerror(errno));
  CHECK(set_rate(1) == 0, "heapprof_set_rate(1)");
}

static heapprof_stats_t stats(void) {
  heapprof_stats_t s;
  CHECK(read_stats(&s) == 0, "heapprof_read_stats");
  return s;
}

static void profile(const char *name, tl_profile_t *p) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s.pb.gz", tl_tmpdir(), name);
  CHECK(write_profile(path, HEAPPROF_HEAP) == 0, "heapprof_write_profile %s",
        path);
  tl_read_profile(path, p);
}

/* Site `func`'s four values are exactly these, over one or more samples,
 * each with `bytes` (if ≥ 0) as its size label and, if `caller` is given,
 * `caller` as the frame after the leaf. */
static void expect(const tl_profile_t *p, const char *func, int64_t ao,
                   int64_t as, int64_t io, int64_t is, int64_t bytes,
                   const char *caller) {
  int64_t v[4];
  size_t n = tl_site(p, func, v);
  CHECK(n > 0, "no sample with leaf %s:\n%s", func, p->raw);
  CHECK(v[0] == ao && v[1] == as && v[2] == io && v[3] == is,
        "%s: %lld %lld %lld %lld, want %lld %lld %lld %lld", func,
        (long long)v[0], (long long)v[1], (long long)v[2], (long long)v[3],
        (long long)ao, (long long)as, (long long)io, (long long)is);
  for (size_t i = 0; i < p->nsamples; i++) {
    const tl_sample_t *s = &p->samples[i];
    if (s->nlocs == 0 || strcmp(s->funcs[0], func) != 0)
      continue;
    CHECK(bytes < 0 || s->bytes == bytes, "%s: bytes label %lld, want %lld",
          func, (long long)s->bytes, (long long)bytes);
    CHECK(caller == NULL || (s->nlocs > 1 && strcmp(s->funcs[1], caller) == 0),
          "%s: next frame %s, want %s (a frame of heapprof's left in, or "
          "the caller's cut)", func, s->nlocs > 1 ? s->funcs[1] : "(none)",
          caller);
  }
}

/* Whether every sample in the profile has zero in-use. */
static void expect_no_inuse(const tl_profile_t *p) {
  for (size_t i = 0; i < p->nsamples; i++)
    CHECK(p->samples[i].v[2] == 0 && p->samples[i].v[3] == 0,
          "sample with leaf %s still in use (%lld objects)",
          p->samples[i].nlocs ? p->samples[i].funcs[0] : "?",
          (long long)p->samples[i].v[2]);
}

static void expect_live(uint64_t n) {
  heapprof_stats_t s = stats();
  CHECK(s.live_samples == n, "live_samples %llu, want %llu",
        (unsigned long long)s.live_samples, (unsigned long long)n);
  CHECK(seam->records() == n, "side table holds %zu records, want %llu",
        seam->records(), (unsigned long long)n);
}

/* ---- exact ---- */

#define N 64
static void *blocks[17][N];

extern "C" {
NOINLINE void *site_malloc(void) { void *p = h.malloc(1001); KEEP(); return p; }
NOINLINE void *site_calloc(void) { void *p = h.calloc(3, 334); KEEP(); return p; }
NOINLINE void *site_realloc(void) { void *p = h.realloc(NULL, 1003); KEEP(); return p; }
NOINLINE void *site_reallocarray(void) {
  void *p = h.reallocarray(NULL, 1, 1004); KEEP(); return p;
}
NOINLINE void *site_posix_memalign(void) {
  void *p = NULL;
  CHECK(h.posix_memalign(&p, 64, 1005) == 0, "posix_memalign");
  KEEP();
  return p;
}
NOINLINE void *site_aligned_alloc(void) { void *p = h.aligned_alloc(64, 1006); KEEP(); return p; }
NOINLINE void *site_memalign(void) { void *p = h.memalign(128, 1007); KEEP(); return p; }
NOINLINE void *site_valloc(void) { void *p = h.valloc(1008); KEEP(); return p; }
NOINLINE void *site_pvalloc(void) { void *p = h.pvalloc(1009); KEEP(); return p; }
NOINLINE void *site_new(void) { void *p = h.nw(1010); KEEP(); return p; }
NOINLINE void *site_new_array(void) { void *p = h.na(1011); KEEP(); return p; }
NOINLINE void *site_new_nothrow(void) { void *p = h.nw_nt(1012, &std::nothrow); KEEP(); return p; }
NOINLINE void *site_new_array_nothrow(void) {
  void *p = h.na_nt(1013, &std::nothrow); KEEP(); return p;
}
NOINLINE void *site_new_aligned(void) { void *p = h.nw_al(1014, 256); KEEP(); return p; }
NOINLINE void *site_new_array_aligned(void) { void *p = h.na_al(1015, 256); KEEP(); return p; }
NOINLINE void *site_new_aligned_nothrow(void) {
  void *p = h.nw_al_nt(1016, 256, &std::nothrow); KEEP(); return p;
}
NOINLINE void *site_new_array_aligned_nothrow(void) {
  void *p = h.na_al_nt(1017, 256, &std::nothrow); KEEP(); return p;
}
}

static void *(*const sites[17])(void) = {
    site_malloc, site_calloc, site_realloc, site_reallocarray,
    site_posix_memalign, site_aligned_alloc, site_memalign, site_valloc,
    site_pvalloc, site_new, site_new_array, site_new_nothrow,
    site_new_array_nothrow, site_new_aligned, site_new_array_aligned,
    site_new_aligned_nothrow, site_new_array_aligned_nothrow};
static const char *const site_names[17] = {
    "site_malloc", "site_calloc", "site_realloc", "site_reallocarray",
    "site_posix_memalign", "site_aligned_alloc", "site_memalign",
    "site_valloc", "site_pvalloc", "site_new", "site_new_array",
    "site_new_nothrow", "site_new_array_nothrow", "site_new_aligned",
    "site_new_array_aligned", "site_new_aligned_nothrow",
    "site_new_array_aligned_nothrow"};

/* Frees block `i` of site `s` by one of free and the 12 deletes. */
static void release(int s, int i) {
  void *p = blocks[s][i];
  switch ((s + i) % 13) {
  case 0: h.free(p); break;
  case 1: h.dl(p); break;
  case 2: h.da(p); break;
  case 3: h.dl_sz(p, 1); break;
  case 4: h.da_sz(p, 1); break;
  case 5: h.dl_nt(p, &std::nothrow); break;
  case 6: h.da_nt(p, &std::nothrow); break;
  case 7: h.dl_al(p, 256); break;
  case 8: h.da_al(p, 256); break;
  case 9: h.dl_sz_al(p, 1, 256); break;
  case 10: h.da_sz_al(p, 1, 256); break;
  case 11: h.dl_al_nt(p, 256, &std::nothrow); break;
  default: h.da_al_nt(p, 256, &std::nothrow); break;
  }
}

extern "C" NOINLINE void run_exact(void) {
  for (int s = 0; s < 17; s++)
    for (int i = 0; i < N; i++) {
      blocks[s][i] = sites[s]();
      CHECK(blocks[s][i] != NULL, "%s failed", site_names[s]);
    }
  KEEP();
}

static void mode_exact(void) {
  heapprof_stats_t before = stats();
  run_exact();
  heapprof_stats_t mid = stats();
  CHECK(mid.mallocs - before.mallocs == 17 * N, "mallocs counted %llu, want %d",
        (unsigned long long)(mid.mallocs - before.mallocs), 17 * N);
  CHECK(mid.frees == before.frees, "frees counted during allocation");
  expect_live(17 * N);
  tl_profile_t p;
  profile("exact-live", &p);
  for (int s = 0; s < 17; s++) {
    int64_t size = 1001 + s;
    expect(&p, site_names[s], N, N * size, N, N * size, size, "run_exact");
  }
  tl_free_profile(&p);
  for (int s = 0; s < 17; s++)
    for (int i = 0; i < N; i++)
      release(s, i);
  heapprof_stats_t after = stats();
  CHECK(after.frees - mid.frees == 17 * N, "frees counted %llu, want %d",
        (unsigned long long)(after.frees - mid.frees), 17 * N);
  expect_live(0);
  profile("exact-freed", &p);
  for (int s = 0; s < 17; s++) {
    int64_t size = 1001 + s;
    expect(&p, site_names[s], N, N * size, 0, 0, size, "run_exact");
  }
  expect_no_inuse(&p);
  tl_free_profile(&p);
  h.free(NULL); /* a no-op, not counted */
  CHECK(stats().frees == after.frees, "free(NULL) was counted");
}

/* ---- blocks ---- */

/* glibc's chunk header: the size word right below the pointer, whose
 * size (flags masked) is the usable size + 8, or + 16 for an mmapped
 * chunk (flag 2). A header or offset of heapprof's would break this. */
static void expect_glibc_chunk(void *p, size_t n, const char *what) {
  size_t word = ((size_t *)p)[-1], size = word & ~(size_t)7;
  size_t usable = malloc_usable_size(p);
  CHECK(usable >= n, "%s: usable %zu < %zu", what, usable, n);
  CHECK(usable == seam->usable_size(p), "%s: attach's usable size %zu, glibc's %zu",
        what, seam->usable_size(p), usable);
  CHECK(size == usable + ((word & 2) ? 16 : 8),
        "%s: %p is not glibc's block pointer (size word %#zx, usable %zu)",
        what, p, word, usable);
}

static void mode_blocks(void) {
  static const size_t sizes[] = {1, 24, 100, 1000, 5000, 70000, 300000};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    size_t n = sizes[i];
    uint64_t live = stats().live_samples;
    void *p = h.malloc(n);
    CHECK(stats().live_samples == live + 1, "malloc(%zu) not sampled", n);
    expect_glibc_chunk(p, n, "malloc");
    void *q = libc_malloc(n);
    CHECK(malloc_usable_size(q) == malloc_usable_size(p),
          "malloc(%zu): usable %zu sampled, %zu unprofiled", n,
          malloc_usable_size(p), malloc_usable_size(q));
    memset(p, 0x5a, malloc_usable_size(p)); /* every usable byte is ours */
    libc_free(q);
    h.free(p);
  }
  /* calloc over dirtied memory: glibc's calloc skips the tcache, so the
   * smallbin chunks freed here are what it hands back. */
  void *dirty[64];
  for (int i = 0; i < 64; i++) {
    dirty[i] = libc_malloc(1000);
    memset(dirty[i], 0xa5, 1000);
  }
  for (int i = 0; i < 64; i++)
    libc_free(dirty[i]);
  for (int i = 0; i < 16; i++) {
    uint64_t live = stats().live_samples;
    unsigned char *p = (unsigned char *)h.calloc(1, 1000);
    CHECK(stats().live_samples == live + 1, "calloc not sampled");
    expect_glibc_chunk(p, 1000, "calloc");
    for (size_t k = 0; k < 1000; k++)
      CHECK(p[k] == 0, "calloc block %p byte %zu is %#x", (void *)p, k, p[k]);
    dirty[i] = p;
  }
  for (int i = 0; i < 16; i++)
    h.free(dirty[i]);
  static const size_t aligns[] = {16, 64, 4096, 65536};
  for (size_t i = 0; i < 4; i++) {
    size_t a = aligns[i];
    void *p = NULL;
    CHECK(h.posix_memalign(&p, a, 300) == 0, "posix_memalign(%zu)", a);
    CHECK((uintptr_t)p % a == 0, "posix_memalign: %p not %zu-aligned", p, a);
    expect_glibc_chunk(p, 300, "posix_memalign");
    void *q = h.aligned_alloc(a, 2 * a);
    CHECK((uintptr_t)q % a == 0, "aligned_alloc: %p not %zu-aligned", q, a);
    expect_glibc_chunk(q, 2 * a, "aligned_alloc");
    void *r = h.memalign(a, 77);
    CHECK((uintptr_t)r % a == 0, "memalign: %p not %zu-aligned", r, a);
    expect_glibc_chunk(r, 77, "memalign");
    h.free(p), h.free(q), h.free(r);
  }
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  void *v = h.valloc(10), *pv = h.pvalloc(10);
  CHECK((uintptr_t)v % page == 0 && (uintptr_t)pv % page == 0,
        "valloc %p / pvalloc %p not page-aligned", v, pv);
  expect_glibc_chunk(v, 10, "valloc");
  expect_glibc_chunk(pv, page, "pvalloc"); /* rounded to a page, all usable */
  void *nw = h.nw_al(100, 4096);
  CHECK((uintptr_t)nw % 4096 == 0, "aligned new: %p", nw);
  expect_glibc_chunk(nw, 100, "aligned new");
  expect_live(3);
  h.free(v), h.free(pv), h.dl_al(nw, 4096);
  expect_live(0);
}

/* ---- realloc ---- */

extern "C" {
NOINLINE void *site_r0(void) { void *p = h.malloc(100); KEEP(); return p; }
NOINLINE void *site_r1(void *p) { void *q = h.realloc(p, 200000); KEEP(); return q; }
NOINLINE void *site_r2(void) { void *p = h.malloc(2000); KEEP(); return p; }
NOINLINE void *site_r3(void *p) { void *q = h.realloc(p, 1500); KEEP(); return q; }
NOINLINE void *site_r4(void) { void *p = h.malloc(300); KEEP(); return p; }
NOINLINE void *site_r5(void *p, size_t n) { void *q = h.realloc(p, n); KEEP(); return q; }
NOINLINE void *site_r6(void *p) { void *q = h.reallocarray(p, 50, 10); KEEP(); return q; }
}

static void fill(void *p, size_t n, unsigned char c) { memset(p, c, n); }
static void verify(const void *p, size_t n, unsigned char c, const char *what) {
  for (size_t i = 0; i < n; i++)
    CHECK(((const unsigned char *)p)[i] == c, "%s: byte %zu lost", what, i);
}

static void mode_realloc(void) {
  /* Moved: the whole usable size travels (glibc's slack is the program's). */
  unsigned char *p = (unsigned char *)site_r0();
  size_t up = malloc_usable_size(p);
  fill(p, up, 0x11);
  unsigned char *q = (unsigned char *)site_r1(p);
  CHECK(q != NULL && q != p, "realloc to 200000 did not move");
  verify(q, up, 0x11, "moved block");
  expect_live(1);
  /* Shrunk in place: the same address, recorded as the new sample. */
  unsigned char *a = (unsigned char *)site_r2();
  fill(a, 1500, 0x22);
  unsigned char *b = (unsigned char *)site_r3(a);
  CHECK(b == a, "glibc moved a shrinking block (%p → %p)", (void *)a, (void *)b);
  verify(b, 1500, 0x22, "shrunk block");
  expect_live(2);
  /* Failed: NULL and ENOMEM, the block untouched and still recorded. */
  unsigned char *c = (unsigned char *)site_r4();
  fill(c, 300, 0x33);
  errno = 0;
  CHECK(site_r5(c, SIZE_MAX / 4) == NULL && errno == ENOMEM,
        "realloc(SIZE_MAX / 4) did not fail with ENOMEM");
  verify(c, 300, 0x33, "block of a failed realloc");
  errno = 0;
  CHECK(h.reallocarray(c, SIZE_MAX / 2, 4) == NULL && errno == ENOMEM,
        "reallocarray overflow did not fail with ENOMEM");
  expect_live(3);
  tl_profile_t pr;
  profile("realloc-1", &pr);
  expect(&pr, "site_r0", 1, 100, 0, 0, 100, NULL);
  expect(&pr, "site_r1", 1, 200000, 1, 200000, 200000, NULL);
  expect(&pr, "site_r2", 1, 2000, 0, 0, 2000, NULL);
  expect(&pr, "site_r3", 1, 1500, 1, 1500, 1500, NULL);
  expect(&pr, "site_r4", 1, 300, 1, 300, 300, NULL);
  int64_t none[4];
  CHECK(tl_site(&pr, "site_r5", none) == 0, "a failed realloc sampled");
  tl_free_profile(&pr);
  /* realloc(p, 0) frees (glibc): the record goes. */
  CHECK(site_r5(c, 0) == NULL, "realloc(p, 0) returned a block");
  expect_live(2);
  /* reallocarray of a sampled block: a new sample, the old one freed. */
  unsigned char *d = (unsigned char *)site_r6(b);
  CHECK(d != NULL, "reallocarray");
  verify(d, 500, 0x22, "reallocarray'ed block");
  expect_live(2);
  /* Sampling off: a sampled block realloc'ed becomes an ordinary one. */
  CHECK(set_rate(0) == 0, "set_rate 0");
  unsigned char *e = (unsigned char *)site_r5(q, 300000);
  CHECK(e != NULL, "realloc");
  verify(e, up, 0x11, "block realloc'ed at rate 0");
  expect_live(1);
  h.free(e); /* ordinary now */
  h.free(d);
  expect_live(0);
  CHECK(set_rate(1) == 0, "set_rate 1");
  profile("realloc-2", &pr);
  expect(&pr, "site_r1", 1, 200000, 0, 0, 200000, NULL);
  expect(&pr, "site_r3", 1, 1500, 0, 0, 1500, NULL);
  expect(&pr, "site_r4", 1, 300, 0, 0, 300, NULL);
  expect(&pr, "site_r6", 1, 500, 0, 0, 500, NULL);
  expect_no_inuse(&pr);
  tl_free_profile(&pr);
}

/* ---- stale records ---- */

extern "C" {
NOINLINE void *site_s1(void) { void *p = h.malloc(1000); KEEP(); return p; }
NOINLINE void *site_s2(void) { void *p = h.malloc(1000); KEEP(); return p; }
NOINLINE void *site_s3(void) { void *p = h.malloc(1000); KEEP(); return p; }
NOINLINE void *site_s4(size_t n) { void *p = h.malloc(n); KEEP(); return p; }
}

static void mode_stale(void) {
  /* Freed behind heapprof's back, then sampled again at the same address:
   * the old sample counts as freed, the new one is live. */
  void *p = site_s1();
  libc_free(p);
  void *q = site_s2();
  CHECK(q == p, "glibc did not hand %p out again (got %p): the test's "
        "premise (tcache reuse) does not hold", p, q);
  expect_live(1);
  tl_profile_t pr;
  profile("stale-1", &pr);
  expect(&pr, "site_s1", 1, 1000, 0, 0, 1000, NULL);
  expect(&pr, "site_s2", 1, 1000, 1, 1000, 1000, NULL);
  tl_free_profile(&pr);
  /* Again, but the block at the address is ordinary: its free through
   * heapprof counts the stale sample freed. */
  libc_free(q);
  CHECK(set_rate(0) == 0, "set_rate");
  void *r = h.malloc(1000);
  CHECK(r == q, "no reuse (%p, %p)", q, r);
  h.free(r);
  expect_live(0);
  /* And through realloc. */
  CHECK(set_rate(1) == 0, "set_rate");
  void *s = site_s3();
  libc_free(s);
  CHECK(set_rate(0) == 0, "set_rate");
  void *t = h.malloc(1000);
  CHECK(t == s, "no reuse (%p, %p)", s, t);
  void *u = h.realloc(t, 100000);
  CHECK(u != NULL, "realloc");
  expect_live(0);
  h.free(u);
  CHECK(set_rate(1) == 0, "set_rate");
  profile("stale-2", &pr);
  expect(&pr, "site_s2", 1, 1000, 0, 0, 1000, NULL);
  expect(&pr, "site_s3", 1, 1000, 0, 0, 1000, NULL);
  expect_no_inuse(&pr);
  tl_free_profile(&pr);
  /* A churn with frees behind heapprof's back mixed in: no crash; what
   * stays recorded is exactly what the live count says, and forget
   * (detach) then leaves nothing in use. */
  enum { SLOTS = 512, STEPS = 40000 };
  static void *slot[SLOTS];
  uint64_t x = 88172645463325252ULL;
  for (int i = 0; i < STEPS; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    void **sl = &slot[x % SLOTS];
    size_t n = 16 + (x >> 32) % 2000;
    if (*sl == NULL) {
      *sl = site_s4(n);
    } else if ((x >> 20) % 5 == 0) {
      libc_free(*sl); /* behind heapprof's back */
      *sl = NULL;
    } else if ((x >> 20) % 5 == 1) {
      void *v = h.realloc(*sl, n);
      CHECK(v != NULL, "realloc");
      *sl = v;
    } else {
      h.free(*sl);
      *sl = NULL;
    }
  }
  for (int i = 0; i < SLOTS; i++)
    h.free(slot[i]);
  heapprof_stats_t st = stats();
  CHECK(st.live_samples == seam->records(), "live %llu, records %zu",
        (unsigned long long)st.live_samples, seam->records());
  profile("stale-3", &pr);
  int64_t inuse = 0;
  for (size_t i = 0; i < pr.nsamples; i++)
    inuse += pr.samples[i].v[2];
  CHECK(st.live_samples > 0 && inuse == (int64_t)st.live_samples,
        "in-use %lld, live %llu: stale records and the profile disagree",
        (long long)inuse, (unsigned long long)st.live_samples);
  tl_free_profile(&pr);
  seam->forget();
  expect_live(0);
  profile("stale-4", &pr);
  expect_no_inuse(&pr);
  tl_free_profile(&pr);
}

/* ---- forget (detach) ---- */

extern "C" {
NOINLINE void *site_f(void) { void *p = h.malloc(500); KEEP(); return p; }
NOINLINE void *site_g(void) { void *p = h.malloc(500); KEEP(); return p; }
}

static void mode_forget(void) {
  enum { K = 200 };
  void *f[K], *g[K];
  for (int i = 0; i < K; i++)
    f[i] = site_f();
  expect_live(K);
  seam->forget();
  expect_live(0);
  tl_profile_t pr;
  profile("forget-1", &pr);
  expect(&pr, "site_f", K, K * 500, 0, 0, 500, NULL);
  tl_free_profile(&pr);
  /* After the detach: half freed by the program's free, half by a pointer
   * to attach_free left over from the attach. Neither counts again. */
  for (int i = 0; i < K; i++) {
    if (i % 2)
      libc_free(f[i]);
    else
      h.free(f[i]);
  }
  /* Attached again: the addresses come back, sampled anew. */
  for (int i = 0; i < K; i++)
    g[i] = site_g();
  expect_live(K);
  profile("forget-2", &pr);
  expect(&pr, "site_f", K, K * 500, 0, 0, 500, NULL);
  expect(&pr, "site_g", K, K * 500, K, K * 500, 500, NULL);
  tl_free_profile(&pr);
  for (int i = 0; i < K; i++)
    h.free(g[i]);
  expect_live(0);
  profile("forget-3", &pr);
  expect_no_inuse(&pr);
  tl_free_profile(&pr);
}

/* ---- errno ---- */

static void mode_errno(void) {
  errno = 4321;
  void *p = h.malloc(64);
  CHECK(errno == 4321, "sampled malloc changed errno to %d", errno);
  void *q = h.calloc(2, 64);
  CHECK(errno == 4321, "sampled calloc changed errno to %d", errno);
  void *r = h.realloc(p, 5000);
  CHECK(errno == 4321, "sampled realloc changed errno to %d", errno);
  void *s = NULL;
  CHECK(h.posix_memalign(&s, 64, 64) == 0 && errno == 4321,
        "posix_memalign: errno %d", errno);
  void *t = h.nw(64);
  CHECK(errno == 4321, "operator new changed errno to %d", errno);
  expect_live(4);
  h.free(q), h.free(r), h.free(s), h.dl(t);
  CHECK(errno == 4321, "free of sampled blocks changed errno to %d", errno);
  expect_live(0);
  errno = 0;
  CHECK(h.malloc(SIZE_MAX / 2) == NULL && errno == ENOMEM,
        "malloc(SIZE_MAX / 2): errno %d", errno);
  errno = 0;
  CHECK(h.calloc(SIZE_MAX / 2, 4) == NULL && errno == ENOMEM,
        "calloc overflow: errno %d", errno);
  errno = 0;
  CHECK(h.reallocarray(NULL, SIZE_MAX / 2, 4) == NULL && errno == ENOMEM,
        "reallocarray overflow: errno %d", errno);
  errno = 77;
  CHECK(h.posix_memalign(&s, 24, 64) == EINVAL && errno == 77,
        "posix_memalign(24) did not answer EINVAL with errno kept");
  expect_live(0);
}

/* ---- operator new's failure ---- */

static int handler_calls;
static void handler(void) {
  handler_calls++;
  std::set_new_handler(nullptr); /* the next attempt throws */
}

static void mode_cxx(void) {
  size_t huge = SIZE_MAX / 4;
  static const struct {
    const char *what;
    int aligned, array;
  } forms[] = {{"new", 0, 0}, {"new[]", 0, 1}, {"aligned new", 1, 0},
               {"aligned new[]", 1, 1}};
  for (const auto &f : forms) {
    handler_calls = 0;
    std::set_new_handler(handler);
    bool thrown = false;
    try {
      void *p = f.aligned ? (f.array ? h.na_al : h.nw_al)(huge, 64)
                          : (f.array ? h.na : h.nw)(huge);
      CHECK(p == NULL, "%s(%zu) returned %p", f.what, huge, p);
    } catch (const std::bad_alloc &) {
      thrown = true;
    }
    CHECK(thrown, "%s(%zu) did not throw std::bad_alloc", f.what, huge);
    CHECK(handler_calls == 1, "%s: new_handler called %d times, want 1",
          f.what, handler_calls);
    std::set_new_handler(nullptr);
  }
  CHECK(h.nw_nt(huge, &std::nothrow) == NULL, "nothrow new");
  CHECK(h.na_nt(huge, &std::nothrow) == NULL, "nothrow new[]");
  CHECK(h.nw_al_nt(huge, 64, &std::nothrow) == NULL, "aligned nothrow new");
  CHECK(h.na_al_nt(huge, 64, &std::nothrow) == NULL, "aligned nothrow new[]");
  expect_live(0);
}

/* ---- threads ---- */

enum { THREADS = 4, TSLOTS = 3000, TSTEPS = 60000 };
static uint64_t thread_allocs[THREADS];

extern "C" NOINLINE void *thread_site(int kind, size_t n) {
  void *p = NULL;
  switch (kind) {
  case 0: p = h.malloc(n); break;
  case 1: p = h.calloc(1, n); break;
  case 2: p = h.nw(n); break;
  case 3: CHECK(h.posix_memalign(&p, 32, n) == 0, "posix_memalign"); break;
  default: p = h.realloc(NULL, n); break;
  }
  KEEP();
  return p;
}

extern "C" NOINLINE void *thread_resize(void *p, size_t n) {
  void *q = h.realloc(p, n);
  KEEP();
  return q;
}

static void *churn(void *arg) {
  int id = (int)(intptr_t)arg;
  static void *slots[THREADS][TSLOTS];
  void **slot = slots[id];
  uint64_t x = 0x9e3779b97f4a7c15ULL * (uint64_t)(id + 1), allocs = 0;
  for (int i = 0; i < TSTEPS; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    void **sl = &slot[x % TSLOTS];
    size_t n = 8 + (x >> 40) % 600;
    if (*sl == NULL) {
      *sl = thread_site((int)((x >> 16) % 5), n);
      allocs++;
    } else if ((x >> 16) % 3 == 0) {
      *sl = thread_resize(*sl, n);
      CHECK(*sl != NULL, "realloc");
      allocs++;
    } else {
      if ((x >> 24) % 2)
        h.free(*sl);
      else
        h.dl_sz(*sl, n);
      *sl = NULL;
    }
  }
  for (int i = 0; i < TSLOTS; i++)
    h.free(slot[i]);
  thread_allocs[id] = allocs;
  return NULL;
}

static void mode_threads(void) {
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++)
    CHECK(pthread_create(&t[i], NULL, churn, (void *)(intptr_t)i) == 0,
          "pthread_create");
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  expect_live(0);
  heapprof_stats_t st = stats();
  CHECK(st.dropped_samples == 0, "%llu samples dropped",
        (unsigned long long)st.dropped_samples);
  uint64_t want = 0;
  for (int i = 0; i < THREADS; i++)
    want += thread_allocs[i];
  tl_profile_t pr;
  profile("threads", &pr);
  int64_t a[4], b[4];
  tl_site(&pr, "thread_site", a);
  tl_site(&pr, "thread_resize", b);
  CHECK((uint64_t)(a[0] + b[0]) == want, "%lld samples, %llu allocations",
        (long long)(a[0] + b[0]), (unsigned long long)want);
  expect_no_inuse(&pr);
  tl_free_profile(&pr);
}

/* ---- fork ---- */

static volatile int forking = 1;

static void *fork_churn(void *arg) {
  (void)arg;
  void *slot[64] = {NULL};
  for (unsigned i = 0; forking; i++) {
    void **sl = &slot[(i * 2654435761u) % 64];
    if (*sl != NULL) {
      *sl = i % 3 ? (h.free(*sl), (void *)NULL) : h.realloc(*sl, 64 + i % 3000);
    } else {
      *sl = i % 2 ? h.malloc(16 + i % 5000) : h.nw(24);
    }
  }
  for (int i = 0; i < 64; i++)
    h.free(slot[i]);
  return NULL;
}

/* Forks while two threads churn sampled blocks through the side table,
 * which has no fork handler: each child samples, frees, grows the table
 * and exits, within its own alarm. */
static void mode_fork(void) {
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    CHECK(pthread_create(&t[i], NULL, fork_churn, NULL) == 0, "pthread_create");
  for (int k = 0; k < 100; k++) {
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
      alarm(20);
      uint64_t live = stats().live_samples;
      static void *kept[5000];
      for (int i = 0; i < 5000; i++)
        kept[i] = h.malloc(40);
      int ok = stats().live_samples == live + 5000;
      for (int i = 0; i < 5000; i++)
        h.free(kept[i]);
      ok = ok && stats().live_samples == live;
      _exit(ok ? 0 : 3);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "child %d: %s %d", k, WIFEXITED(status) ? "exit" : "signal",
          WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
  }
  forking = 0;
  for (int i = 0; i < 2; i++)
    pthread_join(t[i], NULL);
  expect_live(0);
}

/* ---- memory cap ---- */

extern "C" NOINLINE void *cap_site(void) { void *p = h.malloc(16); KEEP(); return p; }

static void mode_maxmem(void) {
  enum { M = 600000 };
  void **kept = (void **)libc_malloc(M * sizeof *kept);
  for (int i = 0; i < M; i++)
    kept[i] = cap_site();
  heapprof_stats_t st = stats();
  CHECK(st.dropped_samples > 0, "600,000 live samples fit in 16 MiB?");
  CHECK(st.live_samples + st.dropped_samples == M,
        "live %llu + dropped %llu != %d", (unsigned long long)st.live_samples,
        (unsigned long long)st.dropped_samples, M);
  CHECK(seam->records() == st.live_samples, "records %zu, live %llu",
        seam->records(), (unsigned long long)st.live_samples);
  for (int i = 0; i < M; i++)
    h.free(kept[i]);
  libc_free(kept);
  expect_live(0);
}

int main(int argc, char **argv) {
  CHECK(argc == 3, "usage: test_alloc_attach LIBHEAPPROF MODE");
  alarm(240); /* a hang is a failure */
  load(argv[1]);
  const char *m = argv[2];
  if (strcmp(m, "exact") == 0) mode_exact();
  else if (strcmp(m, "blocks") == 0) mode_blocks();
  else if (strcmp(m, "realloc") == 0) mode_realloc();
  else if (strcmp(m, "stale") == 0) mode_stale();
  else if (strcmp(m, "forget") == 0) mode_forget();
  else if (strcmp(m, "errno") == 0) mode_errno();
  else if (strcmp(m, "cxx") == 0) mode_cxx();
  else if (strcmp(m, "threads") == 0) mode_threads();
  else if (strcmp(m, "maxmem") == 0) mode_maxmem();
  else if (strcmp(m, "fork") == 0) mode_fork();
  else CHECK(0, "unknown mode %s", m);
  printf("ok %s\n", m);
  return 0;
}
