/*
 * alloc_next — finding the next allocator, and living without it until
 * it is found.
 *
 * `alloc_next` starts out pointing at stubs. The first call of any entry
 * resolves every one of them with dlsym(RTLD_NEXT) (resolve), then makes
 * its call through the table. dlsym itself may call calloc or malloc; those
 * calls, made on the resolving thread while `resolving` is set, come
 * through the exported functions to the stubs not yet replaced and are
 * served from a static buffer, the boot arena, which is carved from the
 * front by a compare-and-swap and never reused or freed. Threads that race
 * the first resolution each resolve, storing the same values.
 *
 * Invariant: no boot block is ever handed to the next allocator. Each
 * carries the sampled tag below it (sampled.h) but never the map bit, so
 * free, realloc and malloc_usable_size take it to the slow path, which
 * recognises it by address (alloc_next_boot_owns) and keeps it from the
 * table.
 */
#define _GNU_SOURCE
#include "alloc_next.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "sampled.h"
#include "sampler.h"

#define SLOW __attribute__((noinline, cold))

/* ---- the boot arena ---- */

#define BOOT_BYTES ALLOC_NEXT_BOOT_BYTES
#define BOOT_HEADER 16

_Alignas(64) char alloc_next_boot_buf[BOOT_BYTES];
static _Atomic size_t boot_used;
/* Set on a thread while it resolves the table: its calls are dlsym's. */
static __thread int resolving __attribute__((tls_model("initial-exec")));

/* `n` bytes aligned to `align` from the boot arena, or NULL with ENOMEM.
 * Its header keeps the size (for realloc and malloc_usable_size) and the
 * tag that routes its free to the slow path. */
static void *boot_alloc(size_t n, size_t align) {
  if (align < BOOT_HEADER)
    align = BOOT_HEADER;
  size_t used = atomic_load(&boot_used), start, end;
  do {
    start = (used + BOOT_HEADER + align - 1) & ~(align - 1);
    end = start + n;
    if (n > BOOT_BYTES || end > BOOT_BYTES) {
      errno = ENOMEM;
      return NULL;
    }
  } while (!atomic_compare_exchange_weak(&boot_used, &used, end));
  char *p = alloc_next_boot_buf + start; /* zero, and never reused */
  memcpy(p - sizeof n, &n, sizeof n);
  uint64_t tag = sampled_tag((uintptr_t)p);
  memcpy(p - 2 * sizeof n, &tag, sizeof tag);
  return p;
}

size_t alloc_next_boot_size(const void *p) {
  size_t n;
  memcpy(&n, (const char *)p - sizeof n, sizeof n);
  return n;
}

void *alloc_next_boot_realloc(void *p, size_t n) {
  void *q = malloc(n); /* the exported one: the new block is the program's */
  if (q != NULL) {
    size_t old = alloc_next_boot_size(p);
    memcpy(q, p, old < n ? old : n);
  }
  return q;
}

/* ---- the table ---- */

static void *stub_malloc(size_t);
static void stub_free(void *);
static void *stub_calloc(size_t, size_t);
static void *stub_realloc(void *, size_t);
static int stub_posix_memalign(void **, size_t, size_t);
static void *stub_aligned_alloc(size_t, size_t);
static void *stub_memalign(size_t, size_t);
static void *stub_valloc(size_t);
static void *stub_pvalloc(size_t);
static size_t stub_malloc_usable_size(void *);

struct alloc_next alloc_next = {
    stub_malloc,         stub_free,          stub_calloc,
    stub_realloc,        stub_posix_memalign, stub_aligned_alloc,
    stub_memalign,       stub_valloc,         stub_pvalloc,
    stub_malloc_usable_size};

static void *lookup(const char *name, void *fallback) {
  void *f = dlsym(RTLD_NEXT, name);
  return f != NULL ? f : fallback;
}

extern void *__libc_malloc(size_t), *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t), *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t), *__libc_pvalloc(size_t);
extern void __libc_free(void *);

/* The sampled tag's key, set before the first boot block is tagged with
 * it. Not AT_RANDOM's bytes: glibc's stack canary and pointer guard are
 * made of them, and a sampled block's header would hand them out (tag xor
 * address). getrandom never allocates; should it fail, ASLR's addresses
 * and the clock make a key that reveals nothing else. */
static uint64_t tag_key(void) {
  uint64_t key;
  if (getrandom(&key, sizeof key, GRND_NONBLOCK) != (ssize_t)sizeof key) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    key = sampler_mix((uintptr_t)&key ^ (uintptr_t)&resolving,
                      (uint64_t)now.tv_nsec ^ ((uint64_t)now.tv_sec << 30));
  }
  return key;
}

/* Resolves every entry, errno untouched. The glibc-internal names are the
 * fallback when RTLD_NEXT finds nothing (e.g. a static dlsym failure). */
static SLOW void resolve(void) {
  int saved = errno;
  resolving = 1;
  sampled_init(tag_key());
  alloc_next.calloc = lookup("calloc", __libc_calloc);
  alloc_next.realloc = lookup("realloc", __libc_realloc);
  alloc_next.posix_memalign = lookup("posix_memalign", NULL);
  alloc_next.aligned_alloc = lookup("aligned_alloc", __libc_memalign);
  alloc_next.memalign = lookup("memalign", __libc_memalign);
  alloc_next.valloc = lookup("valloc", __libc_valloc);
  alloc_next.pvalloc = lookup("pvalloc", __libc_pvalloc);
  alloc_next.malloc_usable_size = lookup("malloc_usable_size", NULL);
  alloc_next.free = lookup("free", __libc_free);
  alloc_next.malloc = lookup("malloc", __libc_malloc);
  resolving = 0;
  errno = saved;
}

/* ---- the stubs: resolve, then call on (or, inside dlsym, the arena) ---- */

static SLOW void *stub_malloc(size_t n) {
  if (resolving)
    return boot_alloc(n, 16);
  resolve();
  return alloc_next.malloc(n);
}

static SLOW void stub_free(void *p) {
  if (p == NULL || alloc_next_boot_owns(p))
    return;
  resolve();
  alloc_next.free(p);
}

static SLOW void *stub_calloc(size_t c, size_t n) {
  size_t bytes;
  if (!resolving) {
    resolve();
    return alloc_next.calloc(c, n);
  }
  if (__builtin_mul_overflow(c, n, &bytes)) {
    errno = ENOMEM;
    return NULL;
  }
  return boot_alloc(bytes, 16);
}

static SLOW void *stub_realloc(void *p, size_t n) {
  resolve();
  return alloc_next.realloc(p, n);
}

static SLOW int stub_posix_memalign(void **out, size_t align, size_t n) {
  resolve();
  if (alloc_next.posix_memalign == NULL)
    return ENOSYS;
  return alloc_next.posix_memalign(out, align, n);
}

static SLOW void *stub_aligned_alloc(size_t align, size_t n) {
  if (resolving)
    return boot_alloc(n, align);
  resolve();
  return alloc_next.aligned_alloc(align, n);
}

static SLOW void *stub_memalign(size_t align, size_t n) {
  if (resolving)
    return boot_alloc(n, align);
  resolve();
  return alloc_next.memalign(align, n);
}

static SLOW void *stub_valloc(size_t n) {
  resolve();
  return alloc_next.valloc(n);
}

static SLOW void *stub_pvalloc(size_t n) {
  resolve();
  return alloc_next.pvalloc(n);
}

static SLOW size_t stub_malloc_usable_size(void *p) {
  resolve();
  return alloc_next.malloc_usable_size ? alloc_next.malloc_usable_size(p) : 0;
}
