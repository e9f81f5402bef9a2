/*
 * test_sidetable — runtime/sidetable.c, attach mode's address → bucket
 * records, with the sampled map (runtime/sampled.c) under it and no
 * interposer: addresses and buckets are made-up numbers (neither module
 * reads what they point at). Modes, one process each (the table is never
 * given back):
 *
 *   churn     rate 1 with churn: 6,000,000 operations on 100,000 live
 *             blocks whose addresses are handed out again last-freed
 *             first, as glibc's tcache does; some blocks unsampled, some
 *             freed behind heapprof's back (no take: a stale record),
 *             some reallocated (hold, release). Every put succeeds and
 *             returns exactly the stale record the model expects; every
 *             take the bucket put; an address's bit is set exactly when
 *             the model has a record there; the record count matches; and
 *             the tables stop growing once the live set is reached (their
 *             bytes checked against a bound and unchanged over the last
 *             5,000,000 operations). Then forget counts every record once.
 *   stale     the stale-record cases one by one: a put over a stale
 *             record gets it back and the take gets the new bucket; a
 *             free of an unsampled block at the address takes it out; a
 *             bit without a record; hold and release both ways
 *   forget    forget's race, both halves, forced with two threads and
 *             hooks around the bit (the linker's --wrap of
 *             sampled_bare_mark/unmark): forget has taken the record of a
 *             and not yet cleared a's bit when the owner frees a and
 *             another sampled block gets a. (a) the new record is
 *             published before forget clears the bit: forget's look-up
 *             must set it again; (b) forget clears the bit between the
 *             new record's mark and its publication: publish must set it
 *             again. Either way the new record ends with its bit, and its
 *             take gets its bucket.
 *   threads   4 threads putting and taking at once over addresses shared
 *             through a locked free list (another thread gets an address
 *             back), while a fifth forgets over and over: every take gets
 *             its bucket, or nothing when a forget overlapped; every put
 *             is counted freed exactly once (take or forget); a live
 *             record's bit is set at the end; the live count equals the
 *             bits set. Runs under TSan too (label threads).
 *   nomem     under an arena cap that holds the first table only: a put
 *             that finds its line full everywhere fails with no bit and no
 *             record left, and a take makes room again.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "sampled.h"
#include "sidetable.h"
#include "testlib.h"
#include "thread.h"

/* sampled.c's counts read the thread's block (alloc_sampled.c defines it
 * in the library). */
__thread hp_thread_t hp_self __attribute__((tls_model("initial-exec")));

/* ---- the bit's hooks (--wrap) ---- */

int __real_sampled_bare_mark(const void *p);
int __real_sampled_bare_unmark(const void *p);

/* Called after a mark and before an unmark that sidetable.c makes. */
static void (*_Atomic after_mark)(const void *p);
static void (*_Atomic before_unmark)(const void *p);

int __wrap_sampled_bare_mark(const void *p) {
  int rc = __real_sampled_bare_mark(p);
  void (*hook)(const void *) = atomic_load(&after_mark);
  if (hook != NULL)
    hook(p);
  return rc;
}

int __wrap_sampled_bare_unmark(const void *p) {
  void (*hook)(const void *) = atomic_load(&before_unmark);
  if (hook != NULL)
    hook(p);
  return __real_sampled_bare_unmark(p);
}

/* ---- helpers ---- */

#define BASE ((uintptr_t)0x200000000000) /* well inside 47 bits */

static bucket_t *B(uint64_t i) { return (bucket_t *)(uintptr_t)(0x10000 + 64 * i); }

static uint64_t rng = 88172645463325252ULL;
static uint64_t next_rand(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return rng;
}

static int64_t live_count(void) {
  return (int64_t)(sampled_stray_marked() - sampled_stray_unmarked());
}

static void put_ok(void *p, bucket_t *b, bucket_t *want_stale) {
  bucket_t *stale = (bucket_t *)1;
  int rc = sidetable_put(p, b, &stale);
  CHECK(rc == 0, "put %p: rc %d", p, rc);
  CHECK(stale == want_stale, "put %p: stale %p, want %p", p, (void *)stale,
        (void *)want_stale);
  CHECK(sampled_bit(p), "put %p left its bit clear", p);
}

static void take_is(void *p, bucket_t *want) {
  bucket_t *b = sidetable_take(p);
  CHECK(b == want, "take %p: %p, want %p", p, (void *)b, (void *)want);
  CHECK(!sampled_bit(p), "take %p left its bit set", p);
}

/* Forget's callback: counts per bucket number (B(i)) below COUNTED. */
#define COUNTED 4096
static _Atomic uint64_t forgotten[COUNTED], forgotten_all;
static void count_forgotten(bucket_t *b) {
  uint64_t i = ((uintptr_t)b - 0x10000) / 64;
  if (i < COUNTED)
    atomic_fetch_add(&forgotten[i], 1);
  atomic_fetch_add(&forgotten_all, 1);
}

/* ---- churn ---- */

enum { POOL = 160000, LIVE = 100000, WARM = 1000000, OPS = 6000000 };
enum { FREE, SAMPLED, PLAIN }; /* a pool address's block */

typedef struct addr {
  uintptr_t a;
  int state;
  bucket_t *record; /* the record the table must hold at `a`, or NULL */
} addr_t;

static addr_t pool[POOL];
static uint32_t free_stack[POOL], nfree; /* last freed, first handed out */
static uint32_t live[POOL], nlive;       /* indexes into pool */

/* A heap-like pool: blocks of 16 B – 4 KiB one after the other, so
 * ~300 MB across three of the map's 128 MiB regions. */
static void make_pool(void) {
  uintptr_t at = BASE;
  for (uint32_t i = 0; i < POOL; i++) {
    pool[i].a = at;
    at += 16 * (1 + next_rand() % 256);
  }
  for (uint32_t i = 0; i < POOL; i++)
    free_stack[nfree++] = POOL - 1 - i;
}

/* Whether the bit says what the model says, as free asks it. */
static void bit_agrees(const addr_t *x) {
  CHECK(sampled_bit((void *)x->a) == (x->record != NULL),
        "%#lx: bit %d, model's record %p", (unsigned long)x->a,
        sampled_bit((void *)x->a), (void *)x->record);
}

static void churn_alloc(uint64_t op) {
  uint32_t i = free_stack[--nfree];
  addr_t *x = &pool[i];
  bit_agrees(x);
  if (next_rand() % 10 == 0) {
    x->state = PLAIN; /* not sampled: a stale record, if any, stays */
  } else {
    bucket_t *b = B(1 + op % 100000);
    put_ok((void *)x->a, b, x->record);
    x->state = SAMPLED, x->record = b;
  }
  live[nlive++] = i;
}

/* As attach_free, or a free behind heapprof's back (no call at all). */
static void churn_free(uint32_t k) {
  uint32_t i = live[k];
  live[k] = live[--nlive];
  addr_t *x = &pool[i];
  bit_agrees(x);
  uint64_t r = next_rand();
  if (r % 16 == 0) {
    /* behind heapprof's back: the record, if any, goes stale */
  } else if (r % 16 == 1 && x->state == SAMPLED) {
    /* realloc in place that fails, then one that succeeds (realloc_slow) */
    sidetable_hold_t h;
    CHECK(sidetable_hold((void *)x->a, &h) == x->record, "hold %#lx",
          (unsigned long)x->a);
    CHECK(!sampled_bit((void *)x->a), "held, bit set");
    sidetable_release(&h, 1);
    bit_agrees(x);
    CHECK(sidetable_hold((void *)x->a, &h) == x->record, "hold again");
    sidetable_release(&h, 0);
    x->record = NULL;
  } else if (sampled_bit((void *)x->a)) {
    take_is((void *)x->a, x->record);
    x->record = NULL;
  }
  x->state = FREE;
  free_stack[nfree++] = i;
}

static size_t records_in_model(void) {
  size_t n = 0;
  for (uint32_t i = 0; i < POOL; i++)
    n += pool[i].record != NULL;
  return n;
}

static void mode_churn(void) {
  make_pool();
  /* The map's region bitmaps first, so that what grows after is tables. */
  for (uintptr_t r = BASE; r < pool[POOL - 1].a + 4096;
       r += (uintptr_t)1 << SAMPLED_REGION_SHIFT) {
    CHECK(__real_sampled_bare_mark((void *)r) == 0, "mark");
    __real_sampled_bare_unmark((void *)r);
  }
  size_t bitmaps = arena_bytes(), warm = 0;
  for (uint64_t op = 0; op < OPS; op++) {
    if (nlive < LIVE || (nlive < POOL - 1000 && next_rand() % 2 == 0))
      churn_alloc(op);
    else
      churn_free((uint32_t)(next_rand() % nlive));
    if (op == WARM)
      warm = arena_bytes() - bitmaps;
    if (op % 1000000 == 0 || op == OPS - 1) {
      size_t want = records_in_model();
      CHECK(sidetable_count() == want, "op %llu: %zu records, model %zu",
            (unsigned long long)op, sidetable_count(), want);
      CHECK(live_count() == (int64_t)want, "op %llu: live count %lld, model %zu",
            (unsigned long long)op, (long long)live_count(), want);
    }
  }
  size_t tables = arena_bytes() - bitmaps, records = records_in_model();
  printf("churn: %d ops, %u live, %zu records; tables %zu bytes after %d ops, "
         "%zu at the end (%.1f bytes a record)\n",
         OPS, nlive, records, warm, WARM, tables, (double)tables / records);
  /* The live set is reached long before WARM; the tables then hold what
   * they need and take nothing more. Bound: every record in a table of
   * its own size, twice (the older tables), at one in four slots used,
   * 16 bytes a slot: 128 bytes a record. */
  CHECK(tables == warm, "the tables grew from %zu to %zu bytes after the live "
        "set was reached: slots are not given back", warm, tables);
  CHECK(tables <= 128 * (size_t)LIVE * 11 / 10, "tables %zu bytes for %zu records",
        tables, records);
  sidetable_forget(count_forgotten);
  CHECK(atomic_load(&forgotten_all) == records, "forget counted %llu, model %zu",
        (unsigned long long)atomic_load(&forgotten_all), records);
  CHECK(sidetable_count() == 0 && live_count() == 0,
        "after forget: %zu records, live %lld", sidetable_count(),
        (long long)live_count());
  for (uint32_t i = 0; i < POOL; i++)
    CHECK(!sampled_bit((void *)pool[i].a), "%#lx: bit set after forget",
          (unsigned long)pool[i].a);
}

/* ---- stale ---- */

static void mode_stale(void) {
  void *a = (void *)(BASE + 0x1000), *c = (void *)(BASE + 0x2000);
  /* Freed behind heapprof's back, sampled again at the same address. */
  put_ok(a, B(1), NULL);
  put_ok(a, B(2), B(1));
  CHECK(sidetable_count() == 1, "%zu records", sidetable_count());
  take_is(a, B(2));
  take_is(a, NULL);
  /* Freed behind its back, handed out unsampled, freed through heapprof:
   * the bit sends the free to take, which gets the stale record. */
  put_ok(a, B(3), NULL);
  CHECK(sampled_bit(a), "bit");
  take_is(a, B(3));
  CHECK(sidetable_count() == 0 && live_count() == 0, "%zu records, live %lld",
        sidetable_count(), (long long)live_count());
  /* Many stale records in one line and beyond: each put gets its own. */
  for (int round = 0; round < 3; round++)
    for (int i = 0; i < 64; i++)
      put_ok((void *)(BASE + 16 * (uintptr_t)i), B(100 + round * 64 + i),
             round == 0 ? NULL : B(100 + (round - 1) * 64 + i));
  for (int i = 0; i < 64; i++)
    take_is((void *)(BASE + 16 * (uintptr_t)i), B(228 + i));
  /* A bit without a record (a fork's, forget's): harmless both ways. */
  CHECK(__real_sampled_bare_mark(c) == 0, "mark");
  put_ok(c, B(4), NULL);
  take_is(c, B(4));
  CHECK(__real_sampled_bare_mark(c) == 0, "mark");
  take_is(c, NULL);
  /* Hold and release, both ways, and a stale record held (realloc of a
   * block at a stale address). */
  put_ok(a, B(5), NULL);
  sidetable_hold_t h;
  CHECK(sidetable_hold(a, &h) == B(5) && !sampled_bit(a), "hold");
  CHECK(sidetable_count() == 0, "a held record is out");
  sidetable_release(&h, 1);
  CHECK(sampled_bit(a) && sidetable_count() == 1, "restored");
  CHECK(sidetable_hold(a, &h) == B(5), "hold again");
  sidetable_release(&h, 0);
  take_is(a, NULL);
  CHECK(sidetable_hold(c, &h) == NULL && h.slot == NULL, "hold of nothing");
  sidetable_release(&h, 1);
  CHECK(!sampled_bit(c) && sidetable_count() == 0, "nothing restored");
  CHECK(live_count() == 0, "live %lld", (long long)live_count());
  /* Forget takes stale records too, and a new record at the address then
   * is the only one. */
  put_ok(a, B(6), NULL);
  sidetable_forget(count_forgotten);
  CHECK(atomic_load(&forgotten[6]) == 1 && !sampled_bit(a), "forget");
  put_ok(a, B(7), NULL);
  take_is(a, B(7));
  CHECK(sidetable_count() == 0 && live_count() == 0, "end");
}

/* ---- forget's race ---- */

static sem_t at_unmark, go_on, forget_done;
static pthread_t forgetter;
static _Atomic int armed_unmark, armed_mark;

/* In the forget thread, once: forget has taken the record and is about
 * to clear its bit. Lets the owner run, and waits. */
static void pause_forget(const void *p) {
  (void)p;
  if (pthread_equal(pthread_self(), forgetter) && atomic_exchange(&armed_unmark, 0)) {
    sem_post(&at_unmark);
    while (sem_wait(&go_on) != 0) {
    }
  }
}

/* In the owner, once, after the new record's mark: lets forget clear the
 * bit and finish before the record is published. */
static void let_forget_finish(const void *p) {
  (void)p;
  if (!pthread_equal(pthread_self(), forgetter) && atomic_exchange(&armed_mark, 0)) {
    sem_post(&go_on);
    while (sem_wait(&forget_done) != 0) {
    }
  }
}

static void *forget_thread(void *arg) {
  (void)arg;
  sidetable_forget(count_forgotten);
  sem_post(&forget_done);
  return NULL;
}

/* One run of the race: (a) `early` publishes before forget clears, (b)
 * the clear lands between the mark and the publication. */
static void race(void *a, int early) {
  sem_init(&at_unmark, 0, 0), sem_init(&go_on, 0, 0), sem_init(&forget_done, 0, 0);
  memset(forgotten, 0, sizeof forgotten);
  put_ok(a, B(1), NULL);
  atomic_store(&armed_unmark, 1);
  atomic_store(&before_unmark, pause_forget);
  if (!early) {
    atomic_store(&armed_mark, 1);
    atomic_store(&after_mark, let_forget_finish);
  }
  CHECK(pthread_create(&forgetter, NULL, forget_thread, NULL) == 0, "thread");
  while (sem_wait(&at_unmark) != 0) {
  }
  /* The owner frees `a` (forget has its record) and `a` is sampled anew. */
  take_is(a, NULL);
  bucket_t *stale = (bucket_t *)1;
  CHECK(sidetable_put(a, B(2), &stale) == 0 && stale == NULL, "put");
  if (early) {
    sem_post(&go_on);
    while (sem_wait(&forget_done) != 0) {
    }
  }
  pthread_join(forgetter, NULL);
  atomic_store(&before_unmark, NULL);
  atomic_store(&after_mark, NULL);
  CHECK(atomic_load(&forgotten[1]) == 1 && atomic_load(&forgotten[2]) == 0,
        "(%s) forget counted B1 %llu times, B2 %llu", early ? "a" : "b",
        (unsigned long long)atomic_load(&forgotten[1]),
        (unsigned long long)atomic_load(&forgotten[2]));
  CHECK(sidetable_count() == 1, "(%s) %zu records", early ? "a" : "b",
        sidetable_count());
  CHECK(sampled_bit(a), "(%s) the new record of %p lost its bit to forget's "
        "clear: its free would never take it", early ? "a: forget's look-up" :
        "b: publish's check", a);
  take_is(a, B(2));
  CHECK(live_count() == 0, "(%s) live %lld", early ? "a" : "b",
        (long long)live_count());
}

static void mode_forget(void) {
  alarm(60);
  race((void *)(BASE + 0x4000), 1);
  race((void *)(BASE + 0x8000), 0);
}

/* ---- threads ---- */

enum { THREADS = 4, TADDRS = 20000, TLIVE = 2000, TOPS = 400000 };

static pthread_mutex_t free_lock = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t tfree[TADDRS];
static size_t ntfree;
static _Atomic uint64_t forgets_started, forgets_done;
static _Atomic int stop;

typedef struct worker {
  int id;
  uintptr_t a[TLIVE];
  bucket_t *b[TLIVE];
  uint64_t done_at_put[TLIVE]; /* forgets_done when it was put */
  int n;
  uint64_t puts, takes, rng;
} worker_t;

static worker_t workers[THREADS];

static uintptr_t get_addr(void) {
  pthread_mutex_lock(&free_lock);
  uintptr_t a = ntfree > 0 ? tfree[--ntfree] : 0;
  pthread_mutex_unlock(&free_lock);
  return a;
}

static void give_addr(uintptr_t a) {
  pthread_mutex_lock(&free_lock);
  tfree[ntfree++] = a;
  pthread_mutex_unlock(&free_lock);
}

static uint64_t wrand(worker_t *w) {
  w->rng ^= w->rng << 13, w->rng ^= w->rng >> 7, w->rng ^= w->rng << 17;
  return w->rng;
}

static void worker_take(worker_t *w, int k) {
  uintptr_t a = w->a[k];
  bucket_t *want = w->b[k];
  uint64_t since = w->done_at_put[k];
  bucket_t *got = sampled_bit((void *)a) ? sidetable_take((void *)a) : NULL;
  /* Read after the take: a forget that started by now may have had it. */
  uint64_t started = atomic_load(&forgets_started);
  CHECK(got == want || (got == NULL && started > since),
        "thread %d: take %#lx: %p, want %p (forgets started %llu, done at "
        "put %llu)", w->id, (unsigned long)a, (void *)got, (void *)want,
        (unsigned long long)started, (unsigned long long)since);
  w->takes += got != NULL;
  w->a[k] = w->a[--w->n], w->b[k] = w->b[w->n];
  w->done_at_put[k] = w->done_at_put[w->n];
  give_addr(a);
}

static void *worker_run(void *arg) {
  worker_t *w = arg;
  for (int op = 0; op < TOPS; op++) {
    if (w->n < TLIVE && (w->n < TLIVE / 2 || wrand(w) % 2 == 0)) {
      uintptr_t a = get_addr();
      if (a == 0)
        continue;
      bucket_t *b = B(1 + (uint64_t)w->id * 1000000 + (uint64_t)op);
      uint64_t since = atomic_load(&forgets_done);
      bucket_t *stale = (bucket_t *)1;
      CHECK(sidetable_put((void *)a, b, &stale) == 0, "put");
      CHECK(stale == NULL, "thread %d: put %#lx found a stale record %p",
            w->id, (unsigned long)a, (void *)stale);
      w->puts++;
      w->a[w->n] = a, w->b[w->n] = b, w->done_at_put[w->n] = since;
      w->n++;
    } else if (w->n > 0) {
      worker_take(w, (int)(wrand(w) % (uint64_t)w->n));
    }
  }
  return NULL;
}

static void *forget_loop(void *arg) {
  (void)arg;
  while (!atomic_load(&stop)) {
    atomic_fetch_add(&forgets_started, 1);
    sidetable_forget(count_forgotten);
    atomic_fetch_add(&forgets_done, 1);
    usleep(200);
  }
  return NULL;
}

static void mode_threads(void) {
  alarm(240);
  for (size_t i = 0; i < TADDRS; i++)
    tfree[ntfree++] = BASE + 48 * (uintptr_t)(TADDRS - i);
  pthread_t t[THREADS], f;
  CHECK(pthread_create(&f, NULL, forget_loop, NULL) == 0, "thread");
  for (int i = 0; i < THREADS; i++) {
    workers[i].id = i;
    workers[i].rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
    CHECK(pthread_create(&t[i], NULL, worker_run, &workers[i]) == 0, "thread");
  }
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  atomic_store(&stop, 1);
  pthread_join(f, NULL);
  /* Every record left is one of the workers', and carries its bit. */
  uint64_t puts = 0, takes = 0;
  size_t left = 0;
  for (int i = 0; i < THREADS; i++) {
    for (int k = 0; k < workers[i].n; k++)
      if (workers[i].done_at_put[k] == atomic_load(&forgets_started)) {
        /* put after the last forget ended: surely still recorded */
        CHECK(sampled_bit((void *)workers[i].a[k]), "a live record lost its bit");
        left++;
      }
  }
  CHECK(sidetable_count() >= left, "%zu records, %zu put after the last forget",
        sidetable_count(), left);
  for (int i = 0; i < THREADS; i++) {
    while (workers[i].n > 0)
      worker_take(&workers[i], 0);
    puts += workers[i].puts, takes += workers[i].takes;
  }
  CHECK(sidetable_count() == 0, "%zu records left", sidetable_count());
  uint64_t gone = atomic_load(&forgotten_all);
  printf("threads: %llu puts, %llu taken, %llu forgotten, %llu forgets\n",
         (unsigned long long)puts, (unsigned long long)takes,
         (unsigned long long)gone, (unsigned long long)atomic_load(&forgets_done));
  CHECK(puts == takes + gone, "%llu puts, %llu taken + %llu forgotten",
        (unsigned long long)puts, (unsigned long long)takes,
        (unsigned long long)gone);
  CHECK(atomic_load(&forgets_done) > 10, "forget ran %llu times only",
        (unsigned long long)atomic_load(&forgets_done));
  /* What forget set again for records their owners took at that moment
   * stays, counted: the live count is the bits set. */
  int64_t bits = 0;
  for (size_t i = 0; i < ntfree; i++)
    bits += sampled_bit((void *)tfree[i]);
  CHECK(live_count() == bits, "live count %lld, bits set %lld",
        (long long)live_count(), (long long)bits);
}

/* ---- nomem ---- */

static void mode_nomem(void) {
  /* The region's bitmap, then room for the first table (1024 slots and a
   * 64-byte head: five pages) and no more. */
  CHECK(__real_sampled_bare_mark((void *)BASE) == 0, "mark");
  __real_sampled_bare_unmark((void *)BASE);
  arena_set_cap(arena_bytes() + 5 * 4096);
  int n = 0;
  for (;; n++) {
    void *p = (void *)(BASE + 16 * (uintptr_t)n);
    bucket_t *stale = (bucket_t *)1;
    if (sidetable_put(p, B(1 + (uint64_t)n), &stale) != 0) {
      CHECK(stale == NULL && !sampled_bit(p), "a failed put left its bit");
      CHECK(sidetable_count() == (size_t)n, "%zu records after %d puts",
            sidetable_count(), n);
      /* A take makes room in its line: the put that failed fits after
       * the record sharing its line is taken. */
      int freed = 0;
      for (int i = 0; i < n && !freed; i++) {
        take_is((void *)(BASE + 16 * (uintptr_t)i), B(1 + (uint64_t)i));
        freed = sidetable_put(p, B(1 + (uint64_t)n), &stale) == 0;
        CHECK(freed || !sampled_bit(p), "bit");
      }
      CHECK(freed, "no take made room");
      break;
    }
    CHECK(n < 1024, "1024 records in a table of 1024 slots, and more");
  }
  printf("nomem: the first table refused put %d\n", n + 1);
  CHECK(n > 256, "the first table (1024 slots) refused the %dth put", n + 1);
  CHECK(live_count() == (int64_t)sidetable_count(), "live %lld, records %zu",
        (long long)live_count(), sidetable_count());
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "churn") == 0)
    mode_churn();
  else if (strcmp(mode, "stale") == 0)
    mode_stale();
  else if (strcmp(mode, "forget") == 0)
    mode_forget();
  else if (strcmp(mode, "threads") == 0)
    mode_threads();
  else if (strcmp(mode, "nomem") == 0)
    mode_nomem();
  else
    CHECK(0, "usage: test_sidetable churn|stale|forget|threads|nomem (got '%s')",
          mode);
  printf("ok %s\n", mode);
  return 0;
}
