/*
 * alloc_attach — attach mode's malloc family and operator new/delete: the
 * functions the patched GOT slots call, their slow paths, the hook table,
 * and the next allocator as the program binds it.
 *
 * Each fast path is its preload twin's (alloc_api.c), instruction for
 * instruction where the block is not looked at: count, charge the
 * countdown, tail-call the next allocator. What differs is how a sampled
 * block is known. Here it is the next allocator's block unchanged, so
 * free cannot read a tag below the pointer; it reads the page filter in
 * front of the sampled map instead (sampled_bare_maybe: one load of a
 * dense 128 KiB table, no call), and only a nonzero slot goes to the slow
 * path, which asks the block's bit and, if it is set, takes the record out
 * of the side table (sidetable.h) before the allocator sees the free.
 *
 * Invariants:
 * - Sampling is preload mode's, unchanged: the same countdown and
 *   decision (alloc_slow_enter), the same stats counts (each fast path
 *   counts exactly as its twin), buckets, labels and in-use accounting
 *   (alloc_sampled.h). A program sees the same profile either way.
 * - A block, sampled or not, is exactly what the next allocator returned:
 *   the pointer, alignment, zeroing and malloc_usable_size are its own,
 *   and any path to its free, through heapprof or not, is correct for the
 *   program. A free that bypasses heapprof leaves a stale record, which
 *   the next put or take at that address counts freed (sidetable.h).
 * - A sampled block is recorded before its allocation returns, and its
 *   record is out before the next allocator sees its free or realloc
 *   (another thread may be handed the address at once); a realloc that
 *   fails puts it back.
 *
 * The host contract is alloc_api.c's, word for word: no lock, system call
 * or allocation of heapprof's own on a fast path; errno as the next
 * allocator left it (slow paths put it back after heapprof's work); no
 * cancellation point (the unwinder runs with cancellation disabled); an
 * allocation on a thread inside heapprof (busy: among them a signal
 * handler that interrupted heapprof's work, and the program's fork
 * handlers while heapprof's hold its locks) is served without sampling;
 * and the side table takes no lock at all, so a free from any of them is
 * recorded like any other.
 */
#define _GNU_SOURCE
#define ALLOC_SLOW_PATH /* alloc_sampled.h's shared slow-path helpers */
#include "alloc_attach.h"

#include <dlfcn.h>
#include <link.h>
#include <string.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "alloc_next.h"
#include "alloc_sampled.h"
#include "config.h"
#include "control.h"
#include "sampled.h"
#include "sidetable.h"
#include "thread.h"

#ifndef HEAPPROF_EXPORT
#error "HEAPPROF_EXPORT is defined by CMake (target_compile_definitions)"
#endif

#define unlikely(x) __builtin_expect(!!(x), 0)
#define likely(x) __builtin_expect(!!(x), 1)

static ALLOC_SLOW void *malloc_slow(size_t n);
static ALLOC_SLOW void free_slow(void *p);
static ALLOC_SLOW void *calloc_slow(size_t c, size_t n);
static ALLOC_SLOW void *realloc_slow(void *p, size_t n);
static ALLOC_SLOW int posix_memalign_slow(void **out, size_t align, size_t n);
static ALLOC_SLOW void *aligned_alloc_slow(size_t align, size_t n);
static ALLOC_SLOW void *memalign_slow(size_t align, size_t n);
static ALLOC_SLOW void *valloc_slow(size_t n);
static ALLOC_SLOW void *pvalloc_slow(size_t n, size_t rounded);

/* ---- the fast paths (alloc_api.c's, but for free, realloc) ---- */

void *attach_malloc(size_t n) {
  hp_thread_t *t = &hp_self;
  t->mallocs++;
  if (likely(alloc_charge(t, n)))
    return alloc_next.malloc(n);
  return malloc_slow(n);
}

/* free(NULL) is the next allocator's (glibc's does nothing), uncounted.
 * Fast path: the page filter's one load (sampled.h), tail-call. */
void attach_free(void *p) {
  if (likely(!sampled_bare_maybe(p))) {
    hp_self.frees += p != NULL;
    alloc_next.free(p);
    return;
  }
  free_slow(p);
}

void *attach_calloc(size_t c, size_t n) {
  size_t bytes;
  hp_thread_t *t = &hp_self;
  int overflow = __builtin_mul_overflow(c, n, &bytes);
  t->mallocs++;
  if (likely(!overflow && alloc_charge(t, bytes)))
    return alloc_next.calloc(c, n);
  return calloc_slow(c, n);
}

/* Counted as preload's realloc is: a free of `p` and an allocation, or a
 * free only when realloc(p, 0) returns NULL. */
void *attach_realloc(void *p, size_t n) {
  hp_thread_t *t = &hp_self;
  void *q;
  if (likely(!sampled_bare_maybe(p) && alloc_try_charge(t, n)))
    q = alloc_next.realloc(p, n);
  else
    q = realloc_slow(p, n); /* charges (and counts) `n` itself */
  if (q != NULL) {
    t->mallocs++;
    t->frees += p != NULL;
  } else {
    hp_count_bytes(t, -(uint64_t)n); /* charged, but nothing came */
    t->frees += n == 0 && p != NULL;
  }
  return q;
}

void *attach_reallocarray(void *p, size_t c, size_t n) {
  size_t bytes;
  if (__builtin_mul_overflow(c, n, &bytes)) {
    errno = ENOMEM;
    return NULL;
  }
  return attach_realloc(p, bytes);
}

/* Only a valid alignment (a multiple of sizeof(void *)) can be sampled,
 * as in preload mode; the next posix_memalign judges any other. */
int attach_posix_memalign(void **out, size_t align, size_t n) {
  hp_self.mallocs++;
  if (likely(alloc_charge(&hp_self, n)) || align % sizeof(void *) != 0)
    return alloc_next.posix_memalign(out, align, n);
  return posix_memalign_slow(out, align, n);
}

void *attach_aligned_alloc(size_t align, size_t n) {
  hp_self.mallocs++;
  if (likely(alloc_charge(&hp_self, n)))
    return alloc_next.aligned_alloc(align, n);
  return aligned_alloc_slow(align, n);
}

void *attach_memalign(size_t align, size_t n) {
  hp_self.mallocs++;
  if (likely(alloc_charge(&hp_self, n)))
    return alloc_next.memalign(align, n);
  return memalign_slow(align, n);
}

void *attach_valloc(size_t n) {
  hp_self.mallocs++;
  if (likely(alloc_charge(&hp_self, n)))
    return alloc_next.valloc(n);
  return valloc_slow(n);
}

/* Keyed by `n` as asked, as in preload mode; a size whose rounding to
 * pages overflows is the next allocator's to refuse, unsampled. */
void *attach_pvalloc(size_t n) {
  hp_self.mallocs++;
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t rounded = n == 0 ? page : (n + page - 1) & ~(page - 1);
  if (likely(alloc_charge(&hp_self, n)) || rounded < n)
    return alloc_next.pvalloc(n);
  return pvalloc_slow(n, rounded);
}

/* Blocks are the allocator's own: its answer is right for every one. */
size_t attach_malloc_usable_size(void *p) {
  return alloc_next.malloc_usable_size(p);
}

/* ---- the slow paths ---- */

/* A sampled block `p` of bucket `b` is recorded (a stale record at `p`
 * counted freed first); a record that finds no memory is a drop, and the
 * block stays an ordinary one. */
static void record(void *p, bucket_t *b) {
  bucket_t *stale;
  int rc = sidetable_put(p, b, &stale);
  if (stale != NULL)
    alloc_note_free(stale);
  if (rc == 0)
    alloc_note_alloc(b);
  else
    control_count_drop(); /* (a bucket that could not be made is counted
                             by buckets.c) */
}

/* Block `p`, which an allocation of `size` bytes that is sampled at
 * `rate` returned, recorded; NULL (the allocation failed) or rate 0 is
 * passed through. Returns `p`, errno as the allocator left it. Inlined,
 * so that the slow path is the first frame the unwinder meets. */
UNWOUND void *sample(void *p, size_t size, int64_t rate) {
  if (p == NULL || rate <= 0)
    return p;
  hp_thread_t *t = &hp_self;
  int saved = errno;
  t->busy++;
  bucket_t *b = alloc_bucket_here(size, rate);
  if (b != NULL)
    record(p, b);
  t->busy--;
  errno = saved;
  return p;
}

/* The sampling decision for an allocation of `n` bytes, errno kept: the
 * next allocator must see the program's errno, and set its own. */
static int64_t enter(size_t n) {
  int saved = errno;
  int64_t rate = alloc_slow_enter(n);
  errno = saved;
  return rate;
}

/* The same for an aligned allocation: only a power-of-two alignment up to
 * 2^40 is sampled (preload's rule: alloc_aligned_slow), and any other
 * leaves the countdown for the next allocation, as there. */
static int64_t enter_aligned(size_t align, size_t n) {
  if (align == 0 || (align & (align - 1)) != 0 || align > ((size_t)1 << 40))
    return 0;
  return enter(n);
}

static ALLOC_SLOW void *malloc_slow(size_t n) {
  int64_t rate = enter(n);
  return sample(alloc_next.malloc(n), n, rate);
}

static ALLOC_SLOW void *calloc_slow(size_t c, size_t n) {
  size_t bytes = 0;
  int64_t rate = 0;
  if (!__builtin_mul_overflow(c, n, &bytes))
    rate = enter(bytes);
  return sample(alloc_next.calloc(c, n), bytes, rate);
}

/* `p`'s page filter slot said "maybe": its bit says whether it is a
 * sampled block (NULL's never is). If so, the record goes before the next
 * free: another thread may be handed the address the moment it returns.
 * A set bit with no record (a high address's alias) is simply freed. */
static ALLOC_SLOW void free_sampled(void *p);

static ALLOC_SLOW void free_slow(void *p) {
  if (!sampled_bit(p)) { /* the filter's false "maybe": no register saved */
    hp_self.frees += p != NULL;
    alloc_next.free(p);
    return;
  }
  free_sampled(p);
}

static ALLOC_SLOW void free_sampled(void *p) {
  int saved = errno;
  hp_self.frees++;
  bucket_t *b = sidetable_take(p);
  if (b != NULL)
    alloc_note_free(b);
  alloc_next.free(p);
  errno = saved;
}

/*
 * realloc(p, n) when `p`'s bit is set or `n` ran the countdown out. A
 * sampled `p` is held out of the side table while the next realloc runs
 * (the address may be handed out meanwhile) and then: put back as it was
 * if realloc failed (NULL, n ≠ 0: `p` untouched); otherwise counted freed
 * — realloc is a free and an allocation, as in preload mode — and the
 * new block, moved or in place, is recorded if it is sampled.
 * realloc(p, 0) returning NULL freed `p` (glibc's).
 */
static ALLOC_SLOW void *realloc_slow(void *p, size_t n) {
  hp_thread_t *t = &hp_self;
  int saved = errno;
  int64_t rate = !alloc_charge(t, n) && n != 0 && n <= SIZE_MAX - 4096
                     ? alloc_slow_enter(n) : 0;
  sidetable_hold_t held = {NULL, NULL, NULL};
  bucket_t *old = p != NULL && sampled_bit(p) ? sidetable_hold(p, &held) : NULL;
  errno = saved;
  void *q = alloc_next.realloc(p, n);
  int e = errno;
  if (q == NULL && n != 0) {
    sidetable_release(&held, 1);
  } else {
    sidetable_release(&held, 0);
    if (old != NULL)
      alloc_note_free(old);
    sample(q, n, rate);
  }
  errno = e;
  return q;
}

static ALLOC_SLOW int posix_memalign_slow(void **out, size_t align, size_t n) {
  int64_t rate = enter_aligned(align, n);
  int rc = alloc_next.posix_memalign(out, align, n);
  if (rc == 0)
    sample(*out, n, rate);
  return rc;
}

static ALLOC_SLOW void *aligned_alloc_slow(size_t align, size_t n) {
  int64_t rate = enter_aligned(align, n);
  return sample(alloc_next.aligned_alloc(align, n), n, rate);
}

static ALLOC_SLOW void *memalign_slow(size_t align, size_t n) {
  int64_t rate = enter_aligned(align, n);
  return sample(alloc_next.memalign(align, n), n, rate);
}

static ALLOC_SLOW void *valloc_slow(size_t n) {
  int64_t rate = enter(n);
  return sample(alloc_next.valloc(n), n, rate);
}

static ALLOC_SLOW void *pvalloc_slow(size_t n, size_t rounded) {
  (void)rounded; /* the next pvalloc rounds; the bucket is keyed by n */
  int64_t rate = enter(n);
  return sample(alloc_next.pvalloc(n), n, rate);
}

/* ---- operator new and delete (cxx.c's twenty, attach mode's) ---- */

/* The hooks, by index: the free family first (got_patch applies them in
 * this order), then the allocating functions. */
enum {
  H_FREE, H_REALLOC, H_REALLOCARRAY,
  H_ZdlPv, H_ZdaPv, H_ZdlPvm, H_ZdaPvm, H_ZdlPvRKSt9nothrow_t,
  H_ZdaPvRKSt9nothrow_t, H_ZdlPvSt11align_val_t, H_ZdaPvSt11align_val_t,
  H_ZdlPvmSt11align_val_t, H_ZdaPvmSt11align_val_t,
  H_ZdlPvSt11align_val_tRKSt9nothrow_t, H_ZdaPvSt11align_val_tRKSt9nothrow_t,
  H_FREE_FAMILY, /* the count of those above */
  H_MALLOC = H_FREE_FAMILY, H_CALLOC, H_POSIX_MEMALIGN, H_ALIGNED_ALLOC,
  H_MEMALIGN, H_VALLOC, H_PVALLOC,
  H_Znwm, H_Znam, H_ZnwmRKSt9nothrow_t, H_ZnamRKSt9nothrow_t,
  H_ZnwmSt11align_val_t, H_ZnamSt11align_val_t,
  H_ZnwmSt11align_val_tRKSt9nothrow_t, H_ZnamSt11align_val_tRKSt9nothrow_t,
  H_COUNT
};

got_hook_t alloc_attach_hooks[H_COUNT];

/*
 * On failure C++ requires the new_handler loop and std::bad_alloc, which
 * C cannot raise: as cxx.c does, the call is handed to the next operator
 * new — here the program's own binding (libstdc++'s, or its allocator's),
 * resolved with the others before any patching — which retries and
 * throws, or, for the nothrow forms, returns NULL.
 */
static void *next_new(int hook) {
  void *f = alloc_attach_hooks[hook].original;
  if (f == NULL) {
    static const char msg[] =
        "heapprof: out of memory in operator new, and no C++ runtime in the "
        "program to report it; aborting\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
    abort();
  }
  return f;
}

typedef void *(*new_fn)(size_t);
typedef void *(*new_aligned_fn)(size_t, size_t);
typedef void *(*new_nothrow_fn)(size_t, const void *);
typedef void *(*new_aligned_nothrow_fn)(size_t, size_t, const void *);

static void *plain_new(size_t n, int hook) {
  void *p = attach_malloc(n);
  return p != NULL ? p : ((new_fn)next_new(hook))(n);
}

static void *aligned_new(size_t n, size_t align, int hook) {
  void *p = NULL;
  if (attach_posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align,
                            n ? n : 1) == 0)
    return p;
  return ((new_aligned_fn)next_new(hook))(n, align);
}

static void *plain_new_nothrow(size_t n, const void *tag, int hook) {
  void *p = attach_malloc(n);
  return p != NULL ? p : ((new_nothrow_fn)next_new(hook))(n, tag);
}

static void *aligned_new_nothrow(size_t n, size_t align, const void *tag,
                                 int hook) {
  void *p = NULL;
  if (attach_posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align,
                            n ? n : 1) == 0)
    return p;
  return ((new_aligned_nothrow_fn)next_new(hook))(n, align, tag);
}

static void *attach_Znwm(size_t n) { return plain_new(n, H_Znwm); }
static void *attach_Znam(size_t n) { return plain_new(n, H_Znam); }
static void *attach_ZnwmRKSt9nothrow_t(size_t n, const void *t) {
  return plain_new_nothrow(n, t, H_ZnwmRKSt9nothrow_t);
}
static void *attach_ZnamRKSt9nothrow_t(size_t n, const void *t) {
  return plain_new_nothrow(n, t, H_ZnamRKSt9nothrow_t);
}
static void *attach_ZnwmSt11align_val_t(size_t n, size_t a) {
  return aligned_new(n, a, H_ZnwmSt11align_val_t);
}
static void *attach_ZnamSt11align_val_t(size_t n, size_t a) {
  return aligned_new(n, a, H_ZnamSt11align_val_t);
}
static void *attach_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t a,
                                                      const void *t) {
  return aligned_new_nothrow(n, a, t, H_ZnwmSt11align_val_tRKSt9nothrow_t);
}
static void *attach_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t a,
                                                      const void *t) {
  return aligned_new_nothrow(n, a, t, H_ZnamSt11align_val_tRKSt9nothrow_t);
}

/* Every delete is a free: sizes and alignments are not needed by free. */
static void attach_ZdlPv(void *p) { attach_free(p); }
static void attach_ZdaPv(void *p) { attach_free(p); }
static void attach_ZdlPvm(void *p, size_t n) { (void)n, attach_free(p); }
static void attach_ZdaPvm(void *p, size_t n) { (void)n, attach_free(p); }
static void attach_ZdlPvRKSt9nothrow_t(void *p, const void *t) {
  (void)t, attach_free(p);
}
static void attach_ZdaPvRKSt9nothrow_t(void *p, const void *t) {
  (void)t, attach_free(p);
}
static void attach_ZdlPvSt11align_val_t(void *p, size_t a) {
  (void)a, attach_free(p);
}
static void attach_ZdaPvSt11align_val_t(void *p, size_t a) {
  (void)a, attach_free(p);
}
static void attach_ZdlPvmSt11align_val_t(void *p, size_t n, size_t a) {
  (void)n, (void)a, attach_free(p);
}
static void attach_ZdaPvmSt11align_val_t(void *p, size_t n, size_t a) {
  (void)n, (void)a, attach_free(p);
}
static void attach_ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a,
                                                      const void *t) {
  (void)a, (void)t, attach_free(p);
}
static void attach_ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a,
                                                      const void *t) {
  (void)a, (void)t, attach_free(p);
}

/* ---- the hook table ---- */

#define HOOK(i, name, fn) [i] = {name, (void *)(uintptr_t)(fn), NULL, NULL}
#define HOOK_CXX(sym) HOOK(H##sym, #sym, attach##sym)

got_hook_t alloc_attach_hooks[H_COUNT] = {
    HOOK(H_FREE, "free", attach_free),
    HOOK(H_REALLOC, "realloc", attach_realloc),
    HOOK(H_REALLOCARRAY, "reallocarray", attach_reallocarray),
    HOOK_CXX(_ZdlPv), HOOK_CXX(_ZdaPv), HOOK_CXX(_ZdlPvm), HOOK_CXX(_ZdaPvm),
    HOOK_CXX(_ZdlPvRKSt9nothrow_t), HOOK_CXX(_ZdaPvRKSt9nothrow_t),
    HOOK_CXX(_ZdlPvSt11align_val_t), HOOK_CXX(_ZdaPvSt11align_val_t),
    HOOK_CXX(_ZdlPvmSt11align_val_t), HOOK_CXX(_ZdaPvmSt11align_val_t),
    HOOK_CXX(_ZdlPvSt11align_val_tRKSt9nothrow_t),
    HOOK_CXX(_ZdaPvSt11align_val_tRKSt9nothrow_t),
    HOOK(H_MALLOC, "malloc", attach_malloc),
    HOOK(H_CALLOC, "calloc", attach_calloc),
    HOOK(H_POSIX_MEMALIGN, "posix_memalign", attach_posix_memalign),
    HOOK(H_ALIGNED_ALLOC, "aligned_alloc", attach_aligned_alloc),
    HOOK(H_MEMALIGN, "memalign", attach_memalign),
    HOOK(H_VALLOC, "valloc", attach_valloc),
    HOOK(H_PVALLOC, "pvalloc", attach_pvalloc),
    HOOK_CXX(_Znwm), HOOK_CXX(_Znam),
    HOOK_CXX(_ZnwmRKSt9nothrow_t), HOOK_CXX(_ZnamRKSt9nothrow_t),
    HOOK_CXX(_ZnwmSt11align_val_t), HOOK_CXX(_ZnamSt11align_val_t),
    HOOK_CXX(_ZnwmSt11align_val_tRKSt9nothrow_t),
    HOOK_CXX(_ZnamSt11align_val_tRKSt9nothrow_t),
};
const size_t alloc_attach_nhooks = H_COUNT;
const size_t alloc_attach_nfree_hooks = H_FREE_FAMILY;

/* ---- the next allocator, as the program binds it ---- */

/* dlsym(RTLD_DEFAULT, name): from a library loaded RTLD_LOCAL, the global
 * scope first — the program's own binding — and then heapprof's local
 * scope, where heapprof's own exports would be found for a name the
 * program does not bind (operator new in a C program): those are NULL. */
static void *program_binding(const char *name, const void *self_base) {
  void *f = dlsym(RTLD_DEFAULT, name);
  Dl_info info;
  if (f != NULL && dladdr(f, &info) != 0 && info.dli_fbase == self_base)
    return NULL;
  return f;
}

/* dl_iterate_phdr: the first object after the executable, heapprof and
 * the vdso aside, that defines the name (definition_behind's search). */
typedef struct behind {
  const char *name;
  const void *self_base;
  void *found;
} behind_t;

static int define_in(struct dl_phdr_info *m, size_t size, void *data) {
  (void)size;
  behind_t *b = data;
  if (m->dlpi_name == NULL || m->dlpi_name[0] != '/' ||
      (const void *)m->dlpi_addr == b->self_base)
    return 0; /* the executable (""), the vdso, heapprof */
  void *h = dlopen(m->dlpi_name, RTLD_LAZY | RTLD_NOLOAD);
  void *f = h != NULL ? dlsym(h, b->name) : NULL;
  Dl_info info;
  if (f != NULL && dladdr(f, &info) != 0 &&
      (uintptr_t)info.dli_fbase == m->dlpi_addr) /* its own, not a dependency's;
                                                     (dladdr may name it
                                                     __libc_malloc) */
    b->found = f;
  if (h != NULL)
    dlclose(h);
  return b->found != NULL;
}

/* dl_iterate_phdr's first object is the executable: whether `data`
 * lies in one of its segments. */
static int in_executable(struct dl_phdr_info *m, size_t size, void *data) {
  (void)size;
  uintptr_t a = (uintptr_t)data;
  for (int i = 0; i < m->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &m->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && a - (m->dlpi_addr + ph->p_vaddr) < ph->p_memsz)
      return 1;
  }
  return -1; /* stop after the first object either way */
}

/* When the program's binding of `name` is a non-PIE executable's
 * canonical PLT stub (it takes the function's address, so every module
 * binds to the stub, while the stub jumps through the executable's own
 * slot to the definition): the definition, which is the one to call as
 * the next allocator (calling the stub would come back through the
 * patched slot) and the value the executable's own slot holds. NULL for
 * an ordinary binding.
 *
 * The executable's own definition is a defined symbol starting exactly at
 * `f`. A stub is not: glibc's dladdr names it by the undefined symbol
 * whose value is the stub (st_shndx SHN_UNDEF: python3.11's malloc and
 * free), or by none, or by the nearest symbol before it. */
static void *definition_behind(const char *name, void *f, const void *self_base) {
  if (f == NULL || dl_iterate_phdr(in_executable, f) != 1)
    return NULL; /* in a library: a definition (tcmalloc's may be named
                    otherwise, __libc_malloc or tc_cfree, by dladdr) */
  Dl_info info;
  const ElfW(Sym) *sym = NULL;
  if (dladdr1(f, &info, (void **)&sym, RTLD_DL_SYMENT) != 0 && sym != NULL &&
      sym->st_shndx != SHN_UNDEF && info.dli_saddr == f)
    return NULL; /* the executable's own definition (its own malloc) */
  behind_t b = {name, self_base, NULL};
  dl_iterate_phdr(define_in, &b);
  return b.found;
}

void *alloc_attach_binding(const char *name, void **alias) {
  Dl_info self;
  if (dladdr((const void *)(uintptr_t)&alloc_attach_binding, &self) == 0)
    return NULL;
  void *f = program_binding(name, self.dli_fbase);
  void *def = definition_behind(name, f, self.dli_fbase);
  if (alias != NULL)
    *alias = def;
  return alias != NULL || def == NULL ? f : def;
}

int alloc_attach_resolve(void) {
  int saved = errno;
  Dl_info self;
  if (dladdr((const void *)(uintptr_t)&alloc_attach_resolve, &self) == 0) {
    errno = ENOENT;
    return -1;
  }
  void *found[H_COUNT], *behind[H_COUNT];
  for (int i = 0; i < H_COUNT; i++) {
    void *f = program_binding(alloc_attach_hooks[i].name, self.dli_fbase);
    behind[i] = definition_behind(alloc_attach_hooks[i].name, f, self.dli_fbase);
    found[i] = behind[i] != NULL ? behind[i] : f; /* what to call */
  }
  struct alloc_next next = {
      (void *(*)(size_t))found[H_MALLOC],
      (void (*)(void *))found[H_FREE],
      (void *(*)(size_t, size_t))found[H_CALLOC],
      (void *(*)(void *, size_t))found[H_REALLOC],
      (int (*)(void **, size_t, size_t))found[H_POSIX_MEMALIGN],
      (void *(*)(size_t, size_t))found[H_ALIGNED_ALLOC],
      (void *(*)(size_t, size_t))found[H_MEMALIGN],
      (void *(*)(size_t))found[H_VALLOC],
      (void *(*)(size_t))found[H_PVALLOC],
      (size_t (*)(void *))alloc_attach_binding("malloc_usable_size", NULL),
  };
  if (next.malloc == NULL || next.free == NULL) {
    /* Not found at all, or heapprof's own: heapprof is the program's
     * malloc (preloaded or linked), so this is no late load. */
    errno = dlsym(RTLD_DEFAULT, "malloc") != NULL ? EBUSY : ENOENT;
    return -1;
  }
  if (next.calloc == NULL || next.realloc == NULL ||
      next.posix_memalign == NULL || next.aligned_alloc == NULL ||
      next.memalign == NULL || next.valloc == NULL || next.pvalloc == NULL ||
      next.malloc_usable_size == NULL) {
    errno = ENOENT;
    return -1;
  }
  alloc_next = next; /* word stores: nothing reads it in attach mode yet */
  for (int i = 0; i < H_COUNT; i++) { /* what slots hold: the stub, if any */
    alloc_attach_hooks[i].original = behind[i] != NULL
        ? program_binding(alloc_attach_hooks[i].name, self.dli_fbase)
        : found[i];
    alloc_attach_hooks[i].alias = behind[i];
  }
  errno = saved;
  return 0;
}

static void forget_one(bucket_t *b) { alloc_note_free(b); }

void alloc_attach_forget(void) { sidetable_forget(forget_one); }

/* ---- test seam: for tests only, not heapprof's API ---- */

static const char *from_env(const char *name, void *ctx) {
  (void)ctx;
  return getenv(name);
}

/* Sampling started as an attach starts it, with the test's HEAPPROF_*
 * environment as the settings; no slot patched. */
static int seam_begin(void) {
  hp_config_t c;
  config_read_with(&c, from_env, NULL);
  return control_attach(&c);
}

HEAPPROF_EXPORT const alloc_attach_seam_t *heapprof__test_attach_seam(void) {
  static const alloc_attach_seam_t seam = {
      alloc_attach_hooks, H_COUNT, alloc_attach_resolve, alloc_attach_forget,
      attach_malloc_usable_size, sidetable_count, seam_begin};
  return &seam;
}
