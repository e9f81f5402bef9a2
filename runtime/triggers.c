/*
 * triggers — when a profile is written without the program asking: the
 * dump signal, a timer (HEAPPROF_INTERVAL), growth of the in-use estimate
 * (HEAPPROF_GROWTH, inuse.c) and leak watch (HEAPPROF_LEAKWATCH); the
 * dump thread that answers them all through the pipeline.
 *
 * Nothing that writes a profile runs in a signal handler or on an
 * allocating thread: the handler, and an allocating thread whose sample
 * crossed the growth threshold, note what they want in an atomic and post
 * a semaphore; the dump thread, with every signal blocked, waits on the
 * semaphore with the interval as its timeout and writes the profile.
 * sem_post is async-signal-safe, is no cancellation point and touches no
 * descriptor, so neither the handler nor malloc can act on a program's
 * pending cancellation or on a descriptor the program now owns (a wake
 * pipe did both).
 *
 * Leak watch: every HEAPPROF_LEAKWATCH period the thread looks at the
 * estimate; after K rises in a row it compares the buckets with a copy
 * taken when the rise began, names the sites that grew most in one stderr
 * line, writes a profile, and starts counting again.
 */
#define _GNU_SOURCE
#include "triggers.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "heapprof.h"

#include "config.h"
#include "inuse.h"
#include "pipeline.h"
#include "pprof.h"
#include "spawn.h"
#include "stats.h"

static hp_config_t cfg; /* a copy of what triggers_start was given */

/* The wake-up: what was asked for, then a post. */
static sem_t wake_sem;
static _Atomic int thread_up;        /* wake_sem is live and waited on */
static _Atomic int pending_signals;  /* dump signals not yet answered */
static _Atomic int pending_growth;   /* growth steps not yet dumped */
static _Atomic int quit;             /* triggers_stop_thread asks it to end */
static spawned_t dump_thread_id;

static void wake(_Atomic int *what) {
  int saved = errno;
  atomic_fetch_add_explicit(what, 1, memory_order_relaxed);
  if (atomic_load_explicit(&thread_up, memory_order_acquire))
    sem_post(&wake_sem);
  errno = saved;
}

static void on_growth(void) { wake(&pending_growth); }

/* ---- leak watch ---- */

static struct {
  int64_t last;            /* the estimate at the previous look */
  int rises;               /* consecutive rises so far */
  int high;                /* consecutive looks with mallocs − frees > LIVE */
  bucket_snapshot_t base;  /* counts when the rise began, by bucket */
} watch = {-1, 0, 0, {NULL, 0, 0}};

typedef struct growth {
  const char *site;
  int64_t bytes;
} growth_t;

/* Adds `bytes` to the entry for `site` among the `n` kept (largest first
 * after sorting); sites beyond the array's room are dropped. */
static void add_growth(growth_t *g, size_t *n, size_t cap, const char *site,
                       int64_t bytes) {
  for (size_t i = 0; i < *n; i++)
    if (strcmp(g[i].site, site) == 0) {
      g[i].bytes += bytes;
      return;
    }
  if (*n < cap)
    g[(*n)++] = (growth_t){site, bytes};
}

static int by_growth(const void *a, const void *b) {
  int64_t x = ((const growth_t *)a)->bytes, y = ((const growth_t *)b)->bytes;
  return (x < y) - (x > y);
}

static int by_bucket(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)((const bucket_count_t *)a)->bucket;
  uintptr_t y = (uintptr_t)((const bucket_count_t *)b)->bucket;
  return (x > y) - (x < y);
}

static int64_t inuse_of(const bucket_count_t *c) {
  int64_t objects, bytes;
  pprof_inuse(c, &objects, &bytes);
  return bytes;
}

/* The three sites that grew most since the watch began counting (or that
 * hold most now), named while the symbol table is at hand. */
typedef struct leak_sites {
  const bucket_snapshot_t *now;
  int growth;
  char text[256];
  size_t found;
} leak_sites_t;

static void name_sites(const prof_symtab_t *syms, void *ctx) {
  leak_sites_t *ls = ctx;
  growth_t g[256];
  size_t ng = 0;
  for (size_t i = 0; i < ls->now->n; i++) {
    const bucket_count_t *c = &ls->now->counts[i];
    const bucket_count_t *was =
        bsearch(c, watch.base.counts, watch.base.n, sizeof *c, by_bucket);
    int64_t grew = inuse_of(c) - (was != NULL && ls->growth ? inuse_of(was) : 0);
    if (grew <= 0)
      continue;
    prof_frame_t fr = {NULL, 0, -1, false};
    if (c->bucket->nframes > 0) {
      uint64_t addr = c->bucket->pcs[0] - 1;
      uint32_t space =
          syms->space ? syms->space(syms->ctx, addr, c->bucket->serial) : 0;
      syms->lookup(syms->ctx, addr, space, &fr);
    }
    /* The innermost function: the one that called the allocator. */
    const char *site = fr.nlines > 0 ? fr.lines[0].name : NULL;
    add_growth(g, &ng, 256, site ? site : "?", grew);
  }
  qsort(g, ng, sizeof *g, by_growth);
  ls->found = ng;
  ls->text[0] = '\0';
  for (size_t i = 0, at = 0; i < ng && i < 3 && at < sizeof ls->text; i++)
    at += (size_t)snprintf(ls->text + at, sizeof ls->text - at, "%s%s +%.1f MB",
                           i ? ", " : "", g[i].site, (double)g[i].bytes / 1e6);
}

/* One stderr line: the sign seen (`why`), and the sites where in-use grew
 * most since the watch began counting (`growth`) or that hold most now. */
static void report_leak(const char *why, int growth, const char *path) {
  bucket_snapshot_t now;
  if (bucket_snapshot(&pipeline_heap, 0, &now) != 0)
    return;
  leak_sites_t ls = {&now, growth, "", 0};
  pipeline_symbolize(name_sites, &ls);
  config_warn("heapprof: leak watch: %s; %s most: %s; profile %s", why,
              growth ? "growing" : "holding", ls.found ? ls.text : "(no site)",
              path);
  bucket_snapshot_free(&pipeline_heap, &now);
}

/* Keeps the counts now, sorted by bucket for name_sites' lookups. */
static void rebase(void) {
  bucket_snapshot_free(&pipeline_heap, &watch.base);
  if (bucket_snapshot(&pipeline_heap, 0, &watch.base) == 0)
    qsort(watch.base.counts, watch.base.n, sizeof *watch.base.counts,
          by_bucket);
}

static void leak_tick(void) {
  int64_t now = inuse_bytes();
  if (watch.last >= 0 && now > watch.last) {
    watch.rises++;
  } else {
    watch.rises = 0;
    rebase();
  }
  watch.last = now;
  heapprof_stats_t st;
  uint64_t live = 0;
  if (cfg.leak_live > 0 && stats_read(&st) == 0)
    live = st.mallocs - st.frees;
  watch.high = live > cfg.leak_live && cfg.leak_live > 0 ? watch.high + 1 : 0;
  char why[160];
  int growth = watch.rises >= cfg.leak_rises;
  if (growth)
    snprintf(why, sizeof why, "in-use grew for %d looks %llds apart, to %.1f MB",
             watch.rises, (long long)cfg.leak_period, (double)now / 1e6);
  else if (watch.high >= cfg.leak_rises)
    snprintf(why, sizeof why, "mallocs - frees stayed above %llu for %d looks "
             "%llds apart (now %llu)", (unsigned long long)cfg.leak_live,
             watch.high, (long long)cfg.leak_period, (unsigned long long)live);
  else
    return;
  char path[CONFIG_PATH_MAX] = "";
  pipeline_dump(HEAPPROF_HEAP, path, sizeof path);
  report_leak(why, growth, path);
  watch.rises = watch.high = 0;
  rebase();
}

/* ---- the thread ---- */

static void on_signal(int sig) {
  (void)sig;
  wake(&pending_signals);
}

/* The absolute CLOCK_MONOTONIC time `ms` from now. */
static struct timespec after_ms(int64_t ms) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  t.tv_sec += ms / 1000;
  t.tv_nsec += (ms % 1000) * 1000000;
  if (t.tv_nsec >= 1000000000)
    t.tv_sec++, t.tv_nsec -= 1000000000;
  return t;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds until `next` (ms on the monotonic clock), 0 if past,
 * -1 if `period` is off; capped at an hour. */
static int64_t until(int64_t period, int64_t next) {
  if (period <= 0)
    return -1;
  int64_t left = next - now_ms();
  return left < 0 ? 0 : left > 3600000 ? 3600000 : left;
}

/* Waits for a post or `timeout_ms` (-1: no timeout). */
static void wait_wake(int64_t timeout_ms) {
  if (timeout_ms < 0) {
    while (sem_wait(&wake_sem) != 0 && errno == EINTR)
      ;
  } else {
    struct timespec at = after_ms(timeout_ms);
    while (sem_clockwait(&wake_sem, CLOCK_MONOTONIC, &at) != 0 &&
           errno == EINTR)
      ;
  }
  while (sem_trywait(&wake_sem) == 0) /* one round answers every post */
    ;
}

static void *dump_thread(void *arg) {
  (void)arg;
  int64_t period = cfg.interval * 1000, next = now_ms() + period;
  int64_t watch_period = cfg.leak_period * 1000;
  int64_t watch_next = now_ms() + watch_period;
  for (;;) {
    int64_t timeout = until(period, next), w = until(watch_period, watch_next);
    if (w >= 0 && (timeout < 0 || w < timeout))
      timeout = w;
    wait_wake(timeout);
    if (atomic_load(&quit))
      return NULL;
    /* Every step of growth gets its profile; signals that arrive while
     * one is being answered are answered by the same profile. */
    int growth_steps = atomic_exchange(&pending_growth, 0);
    int signals = atomic_exchange(&pending_signals, 0);
    for (int i = 0; i < growth_steps + (signals > 0); i++)
      pipeline_dump(HEAPPROF_HEAP, NULL, 0);
    if (period > 0 && now_ms() >= next) {
      pipeline_dump(HEAPPROF_HEAP, NULL, 0);
      next += period;
      if (next < now_ms()) /* a slow dump: no burst to catch up */
        next = now_ms() + period;
    }
    if (watch_period > 0 && now_ms() >= watch_next) {
      leak_tick();
      watch_next = now_ms() + watch_period;
    }
  }
  return NULL;
}

static int start_thread(void) {
  /* One post: the first round answers what was asked before the thread
   * was there. */
  if (sem_init(&wake_sem, 0, 1) != 0)
    return -1;
  atomic_store_explicit(&thread_up, 1, memory_order_release);
  atomic_store(&quit, 0);
  if (spawn_thread("heapprof", dump_thread, NULL, &dump_thread_id) != 0) {
    atomic_store(&thread_up, 0);
    return -1;
  }
  return 0;
}

/* The program must not see heapprof's handler: a program asking what its
 * dump signal does sees SIG_DFL, as it would without heapprof (CPython
 * reads every handler at start-up, reports one it did not install as
 * None, and then cannot put it back: `old = signal(SIGUSR2, h); ...;
 * signal(SIGUSR2, old)` raised). Installing anything replaces heapprof's
 * handler: the program always wins. */
static void on_signal(int sig);
typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
static sigaction_fn next_sigaction;

static sigaction_fn real_sigaction(void) {
  if (next_sigaction == NULL)
    next_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
  return next_sigaction;
}

static sighandler_t (*next_signal)(int, sighandler_t);

void triggers_resolve(void) {
  real_sigaction();
  next_signal = (sighandler_t(*)(int, sighandler_t))dlsym(RTLD_NEXT, "signal");
}

static int is_ours(const struct sigaction *sa) {
  return !(sa->sa_flags & SA_SIGINFO) && sa->sa_handler == on_signal;
}

HEAPPROF_EXPORT int sigaction(int sig, const struct sigaction *act,
                              struct sigaction *old) {
  int rc = real_sigaction()(sig, act, old);
  if (rc == 0 && old != NULL && is_ours(old)) {
    memset(old, 0, sizeof *old);
    old->sa_handler = SIG_DFL;
  }
  return rc;
}

HEAPPROF_EXPORT sighandler_t signal(int sig, sighandler_t h) {
  if (next_signal == NULL)
    next_signal = (sighandler_t(*)(int, sighandler_t))dlsym(RTLD_NEXT, "signal");
  sighandler_t old = next_signal(sig, h);
  return old == on_signal ? SIG_DFL : old;
}

/* Installs the dump signal unless the program already handles it. */
static void install_signal(int sig) {
  struct sigaction old, sa;
  if (sig == 0 || real_sigaction()(sig, NULL, &old) != 0)
    return;
  if ((old.sa_flags & SA_SIGINFO) ? old.sa_sigaction != NULL
                                  : old.sa_handler != SIG_DFL)
    return;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  real_sigaction()(sig, &sa, NULL);
}

/* The thread is started by the first sample, not at start-up: a process
 * with a second thread is no longer single-threaded, and some programs
 * rely on being so (unshare(CLONE_NEWUSER) refuses a threaded process, so
 * `unshare -U`, bwrap and container runtimes would fail under heapprof).
 * Before the first sample there is nothing to profile; a signal that
 * arrives then is answered by the thread's first round. */
void triggers_start(const hp_config_t *c) {
  cfg = *c;
  inuse_start(c->growth, c->peak, c->leak_period > 0, on_growth);
  if (c->signal == 0 && c->interval == 0 && c->growth == 0 &&
      c->leak_period == 0)
    return;
  atomic_store(&triggers_start_pending, 1);
  install_signal(c->signal);
}

_Atomic int triggers_start_pending;

void triggers_start_thread(void) {
  if (atomic_exchange(&triggers_start_pending, 0) && start_thread() != 0)
    config_warn("heapprof: cannot start the dump thread: %s; signal, "
                "interval and growth profiles are off", strerrordesc_np(errno));
}

int triggers_stop_thread(void) {
  if (!atomic_exchange(&thread_up, 0))
    return 0;
  atomic_store(&quit, 1);
  sem_post(&wake_sem);
  spawn_join(&dump_thread_id); /* after the dump in progress, if any */
  sem_destroy(&wake_sem);
  atomic_store(&triggers_start_pending, 1); /* again at the next sample */
  return 1;
}

void triggers_detach(void) {
  triggers_stop_thread();
  atomic_store(&triggers_start_pending, 0);
  inuse_start(0, 0, 0, on_growth); /* no growth, peak or leak watch */
  struct sigaction old, dfl;
  if (cfg.signal == 0 || real_sigaction()(cfg.signal, NULL, &old) != 0 ||
      (old.sa_flags & SA_SIGINFO) || old.sa_handler != on_signal)
    return; /* not heapprof's now: the program's own */
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  real_sigaction()(cfg.signal, &dfl, NULL);
}

/* The parent's dump thread did not come along: the child starts a thread
 * of its own at its first sample, like the parent did. Until then posts go
 * nowhere; what they asked for is answered by its first round. */
void triggers_fork_child(void) {
  if (atomic_exchange(&thread_up, 0))
    atomic_store(&triggers_start_pending, 1);
}
