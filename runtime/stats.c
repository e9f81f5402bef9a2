/*
 * stats — what heapprof_read_stats() returns (stats_read).
 *
 * Counting costs the allocation path one increment on malloc and one on
 * free, in the thread's own TLS block: no shared cache line is written.
 * Bytes need none: the sampling countdown counts them (thread.h).
 * Reading sums the live threads' blocks under reg_lock, plus the totals of
 * threads that have exited. A thread enters the registry at its first slow
 * path (every thread's first allocation takes it); a thread-exit callback
 * folds its counts into the totals and takes it out when it exits, while
 * its TLS is still valid. Counts are read without the owner's cooperation:
 * mallocs and frees are single aligned 64-bit words, so a reader sees some
 * recent value, never a torn one; bytes is two words, read under their
 * sequence count (hp_thread_bytes).
 *
 * The allocator's view (bytes in use, bytes from the OS) comes from glibc's
 * mallinfo2 when glibc is the next allocator; another allocator reports 0
 * there rather than glibc's numbers for an arena nobody uses.
 */
#define _GNU_SOURCE
#include "stats.h"

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <string.h>

#include "arena.h"
#include "buckets.h"
#include "control.h"
#include "pipeline.h"
#include "pprof.h"
#include "sampled.h"

typedef struct node {
  hp_thread_t *thread; /* NULL: free for reuse */
  struct node *next;
} node_t;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
/* Protected by reg_lock: */
static node_t *nodes;
static uint64_t gone_mallocs, gone_frees, gone_bytes, gone_marked, gone_unmarked;

/* Thread-exit callbacks without a pthread key: keys are the program's
 * (PTHREAD_KEYS_MAX of them), and one taken by heapprof is one the program
 * cannot create. This is the hook C++ thread_local destructors use. */
extern int __cxa_thread_atexit_impl(void (*fn)(void *), void *obj,
                                    void *dso_symbol);
extern void *__dso_handle;
static struct mallinfo2 (*allocator_info)(void);

static uint64_t load(const uint64_t *v) {
  return __atomic_load_n(v, __ATOMIC_RELAXED);
}

static uint64_t acquire(const uint64_t *v) {
  return __atomic_load_n(v, __ATOMIC_ACQUIRE);
}

/* Moves node `n`'s thread (whose bytes count is `bytes`) into the totals
 * and frees the node. Under reg_lock. */
static void fold_locked(node_t *n, uint64_t bytes) {
  gone_mallocs += load(&n->thread->mallocs);
  gone_frees += load(&n->thread->frees);
  gone_bytes += bytes;
  gone_marked += load(&n->thread->marked);
  gone_unmarked += load(&n->thread->unmarked);
  n->thread->registered = -1; /* whatever it samples from now on: strays */
  n->thread = NULL;
}

static void on_thread_exit(void *arg) {
  node_t *n = arg;
  pthread_mutex_lock(&reg_lock);
  fold_locked(n, hp_thread_bytes(n->thread));
  pthread_mutex_unlock(&reg_lock);
}

void stats_init(void) {
  void *next_malloc = dlsym(RTLD_NEXT, "malloc");
  if (next_malloc != NULL && next_malloc == dlsym(RTLD_NEXT, "__libc_malloc"))
    allocator_info = (struct mallinfo2 (*)(void))dlsym(RTLD_NEXT, "mallinfo2");
}

void stats_thread_register(hp_thread_t *t) {
  pthread_mutex_lock(&reg_lock);
  node_t *n = nodes;
  while (n != NULL && n->thread != NULL)
    n = n->next;
  if (n == NULL && (n = arena_alloc(sizeof *n)) != NULL) {
    n->next = nodes;
    nodes = n;
  }
  if (n != NULL)
    n->thread = t;
  t->registered = n != NULL ? 1 : -1;
  pthread_mutex_unlock(&reg_lock);
  if (n != NULL)
    __cxa_thread_atexit_impl(on_thread_exit, n, &__dso_handle);
}

/* The sampled in-use estimate, un-sampled as the heap profile does it. */
static void sampled_inuse(heapprof_stats_t *s) {
  bucket_snapshot_t snap;
  if (bucket_snapshot(&pipeline_heap, 0, &snap) != 0)
    return;
  int64_t objects, bytes;
  pprof_inuse_total(snap.counts, snap.n, &objects, &bytes);
  s->sampled_inuse_objects = (uint64_t)objects;
  s->sampled_inuse_bytes = (uint64_t)bytes;
  s->buckets = snap.n;
  bucket_snapshot_free(&pipeline_heap, &snap);
}

int stats_read(heapprof_stats_t *s) {
  if (s == NULL) {
    errno = EINVAL;
    return -1;
  }
  hp_thread_t *t = &hp_self; /* our own allocations here are not counted */
  hp_own_work_t own = hp_own_begin(t);
  memset(s, 0, sizeof *s);
  pthread_mutex_lock(&reg_lock);
  s->mallocs = gone_mallocs;
  s->frees = gone_frees;
  s->total_alloc_bytes = gone_bytes;
  /* Bytes before calls: a count read later only grows, so no reading has
   * more bytes than its calls could have asked for. And every unmark
   * before any mark: a block's mark happens before its unmark, so each
   * unmark seen has its mark seen too, and the live count never goes
   * below zero however threads race the reading. */
  uint64_t unmarked = sampled_stray_unmarked() + gone_unmarked;
  for (node_t *n = nodes; n != NULL; n = n->next) {
    if (n->thread == NULL)
      continue;
    s->total_alloc_bytes += hp_thread_bytes(n->thread);
    s->mallocs += load(&n->thread->mallocs);
    s->frees += load(&n->thread->frees);
    unmarked += acquire(&n->thread->unmarked);
  }
  uint64_t marked = sampled_stray_marked() + gone_marked;
  for (node_t *n = nodes; n != NULL; n = n->next)
    if (n->thread != NULL)
      marked += acquire(&n->thread->marked);
  s->live_samples = marked - unmarked;
  pthread_mutex_unlock(&reg_lock);
  if (allocator_info != NULL) {
    struct mallinfo2 mi = allocator_info();
    s->heap_inuse_bytes = mi.uordblks + mi.hblkhd;
    s->heap_sys_bytes = mi.arena + mi.hblkhd;
  }
  s->rate = atomic_load(&control_rate);
  sampled_inuse(s);
  s->profiler_bytes = arena_bytes();
  s->dropped_samples = control_drops() + bucket_dropped();
  hp_own_end(t, own);
  return 0;
}

void stats_fork_prepare(void) { pthread_mutex_lock(&reg_lock); }
void stats_fork_parent(void) { pthread_mutex_unlock(&reg_lock); }

/* Only the forking thread lives on in the child: the others' counts (their
 * TLS is still mapped here) become totals, and their nodes are freed. */
void stats_fork_child(void) {
  pthread_mutex_init(&reg_lock, NULL);
  for (node_t *n = nodes; n != NULL; n = n->next) {
    if (n->thread == NULL || n->thread == &hp_self)
      continue;
    fold_locked(n, hp_thread_bytes_frozen(n->thread));
  }
}
