/*
 * control — heapprof's life in the process: start-up (the constructor
 * reads the configuration and hands each module its part), the sampling
 * settings the allocation path reads, fork, the moments the program must
 * be single-threaded (unshare, setns), and exit (the exit profile).
 *
 * Lock order, outermost first, as fork's prepare handler takes them:
 *   attach_lock (attach.c) → got_lock (got.c) → peak_lock (inuse.c) → reg_lock (stats.c) → insert_lock (buckets.c)
 *   → the label tables' lock (labels.c) → the arena's lock (arena.c)
 * Each is held for a few instructions and never across a call into
 * another module that takes one of them in reverse. dump_lock
 * (pipeline.c) is outside this order: it is taken with none of them held,
 * and fork does not take it (see pipeline_fork_child).
 */
#define _GNU_SOURCE
#include "control.h"

#include <dlfcn.h>
#include <link.h>
#include <string.h>
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "heapprof.h"

#include "arena.h"
#include "attach.h"
#include "buckets.h"
#include "config.h"
#include "fdtable.h"
#include "got.h"
#include "http.h"
#include "inuse.h"
#include "labels.h"
#include "pipeline.h"
#include "sampler.h"
#include "spawn.h"
#include "stack.h"
#include "stats.h"
#include "thread.h"
#include "triggers.h"
#include "unload.h"

_Atomic int64_t control_rate;
_Atomic uint32_t control_epoch;
int control_depth = 64;
uint64_t control_seed;

static hp_config_t cfg;
static _Atomic uint64_t drops;
static uint64_t forks;
static _Atomic int ever_on; /* sampling was on at some point */

void control_count_drop(void) {
  atomic_fetch_add_explicit(&drops, 1, memory_order_relaxed);
}

uint64_t control_drops(void) {
  return atomic_load_explicit(&drops, memory_order_relaxed);
}

int control_set_rate(long rate) {
  if (rate < 0) {
    errno = EINVAL;
    return -1;
  }
  if (rate > 0 && atomic_load(&control_rate) == 0)
    stack_init();
  if (rate > 0)
    atomic_store(&ever_on, 1);
  atomic_store(&control_rate, rate);
  uint32_t e = atomic_load(&control_epoch);
  if (e != 0) {
    while (!atomic_compare_exchange_weak(&control_epoch, &e,
                                         e + 1 == 0 ? 1 : e + 1))
      ;
    hp_countdown_set(&hp_self, 0); /* this thread redraws at its next allocation */
  }
  return 0;
}

/* ---- fork ---- */

/* The locks of the order above; not dump_lock (pipeline.c). */
static void fork_prepare(void) {
  /* The program's own prepare handlers that run after this one (those it
   * registered first) may allocate: they must not sample, which would take
   * the locks held from here on. */
  hp_self.busy++;
  stack_fork_prepare(); /* first: no lock of ours is held while it waits */
  attach_fork_prepare();
  got_fork_prepare();
  inuse_fork_prepare();
  stats_fork_prepare();
  bucket_fork_prepare();
  labels_fork_prepare();
  arena_fork_prepare();
  forks++;
}

static void fork_parent(void) {
  arena_fork_parent();
  labels_fork_parent();
  bucket_fork_parent();
  stats_fork_parent();
  inuse_fork_parent();
  got_fork_parent();
  attach_fork_parent();
  stack_fork_parent();
  hp_self.busy--;
}

static void fork_child(void) {
  stack_fork_child();
  attach_fork_child();
  got_fork_child();
  arena_fork_child();
  labels_fork_child();
  bucket_fork_child();
  stats_fork_child();
  inuse_fork_child();
  triggers_fork_child();
  http_fork_child();
  pipeline_fork_child();
  hp_self.busy--;
  /* A different stream from the parent's, reproducible under a fixed seed. */
  sampler_seed(&hp_self.rng, sampler_mix(control_seed, ~forks));
}

/* ---- moments the program must be single-threaded ---- */

/* unshare(CLONE_NEWUSER) and setns into a user or mount namespace fail
 * with EINVAL in a process with more than one thread (so do CLONE_VM,
 * CLONE_SIGHAND and CLONE_THREAD). A program that is single-threaded
 * must not fail them because of heapprof's threads: heapprof ends its
 * threads for the call and starts them again afterwards (the dump thread
 * at the next sample, the HTTP server at once, on the same address). */
typedef int (*ns_call_t)(int, int);

static ns_call_t next_unshare, next_setns;

static int ns_call(const char *name, int a, int b, int solo) {
  ns_call_t *next = name[0] == 'u' ? &next_unshare : &next_setns;
  if (*next == NULL)
    *next = (ns_call_t)dlsym(RTLD_NEXT, name);
  if (*next == NULL) {
    errno = ENOSYS;
    return -1;
  }
  if (!solo)
    return (*next)(a, b);
  int stopped_http = http_stop();
  triggers_stop_thread();
  int rc = (*next)(a, b);
  int saved = errno;
  if (stopped_http)
    http_restart();
  errno = saved;
  return rc;
}

#define SOLO_FLAGS (CLONE_NEWUSER | CLONE_VM | CLONE_SIGHAND | CLONE_THREAD)

HEAPPROF_EXPORT int unshare(int flags) {
  return ns_call("unshare", flags, 0, (flags & SOLO_FLAGS) != 0);
}

/* nstype 0 lets the descriptor decide: treated like a user namespace. */
HEAPPROF_EXPORT int setns(int fd, int nstype) {
  return ns_call("setns", fd, nstype,
                 nstype == 0 || (nstype & (CLONE_NEWUSER | CLONE_NEWNS)));
}

/* ---- start and exit ---- */

static uint64_t random_seed(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return sampler_mix((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30),
                     (uint64_t)getpid());
}

/* Once per process, before the first start: everything heapprof exports
 * besides the malloc family forwards to the next definition; find each
 * now, not inside a program's call. */
static void resolve(void) {
  spawn_resolve();
  next_unshare = (ns_call_t)dlsym(RTLD_NEXT, "unshare");
  next_setns = (ns_call_t)dlsym(RTLD_NEXT, "setns");
  unload_resolve();
  stack_resolve();
  triggers_resolve();
  bucket_set_memory(arena_alloc);
  labels_set_memory(arena_alloc);
  stats_init();
  pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* Sampling and the triggers as `c` says, from now on. */
static void begin(const hp_config_t *c) {
  cfg = *c;
  control_depth = cfg.depth;
  control_seed = cfg.seed_set ? cfg.seed : random_seed();
  arena_set_cap(cfg.max_mem);
  if (cfg.rate > 0)
    stack_init();
  pipeline_start(&cfg);
  if (cfg.rate > 0)
    triggers_start(&cfg);
  if (cfg.rate > 0 && cfg.http[0] != '\0')
    http_start(cfg.http, cfg.http_remote, cfg.verbose);
  atomic_store(&ever_on, cfg.rate > 0);
  control_set_rate(cfg.rate); /* after a detach: a new epoch, all redraw */
  uint32_t none = 0; /* the first start: sampling may begin */
  atomic_compare_exchange_strong_explicit(&control_epoch, &none, 1,
                                          memory_order_release,
                                          memory_order_relaxed);
  if (cfg.verbose)
    config_warn("heapprof: rate %lld, profiles to %s", (long long)cfg.rate,
                cfg.out);
}

/* dl_iterate_phdr walks objects in load order: whether heapprof (the
 * object holding `data`) comes before the C library. */
static int before_libc(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  uintptr_t self = (uintptr_t)data;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t at = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD && self - at < ph->p_memsz)
      return 1; /* heapprof first */
  }
  return strstr(info->dlpi_name, "/libc.so.") != NULL ? 2 : 0;
}

/* Whether heapprof was dlopen'ed into a process that runs without it
 * (`heapprof attach`), rather than preloaded or linked: it was then loaded
 * after the C library, so the program's malloc is not heapprof's. (The
 * loader's own answers cannot tell: dlsym(RTLD_DEFAULT) from inside
 * heapprof searches heapprof's scope too, and a non-PIE program that
 * takes malloc's address binds it to a stub of its own.) Nothing starts
 * until attached. */
static int loaded_late(void) {
  return dl_iterate_phdr(before_libc, (void *)&control_rate) == 2;
}

static enum { PRELOADED, LATE, ATTACHED, DETACHED } how;

__attribute__((constructor)) static void control_start(void) {
  hp_self.busy++;
  if (loaded_late()) {
    how = LATE; /* no handler, thread, file or environment read: attach */
  } else {
    resolve();
    config_read(&cfg);
    begin(&cfg);
  }
  hp_self.busy--;
}

int control_attach(const hp_config_t *c) {
  if (how != LATE && how != DETACHED) {
    errno = EBUSY;
    return -1;
  }
  if (how == LATE)
    resolve();
  begin(c);
  how = ATTACHED;
  /* The dump thread now, not at the first sample as preloaded: a process
   * already running may allocate nothing for a long while (an idle
   * server), and `heapprof dump` must still be answered. */
  triggers_start_thread();
  return 0;
}

int control_detach(void) {
  if (how != ATTACHED) {
    errno = EBUSY;
    return -1;
  }
  control_set_rate(0);
  http_stop();
  triggers_detach();
  how = DETACHED;
  return 0;
}

__attribute__((destructor)) static void control_stop(void) {
  /* HEAPPROF_RATE=0 is a pure pass-through: no file unless the program
   * turned sampling on itself; a detached process writes none either. */
  if (atomic_load(&control_epoch) == 0 || !ever_on || how == DETACHED)
    return;
  pipeline_exiting();
  if (cfg.out_set)
    pipeline_dump(HEAPPROF_HEAP, NULL, 0);
  if (cfg.peak && inuse_peak_epoch(NULL) != 0) /* a mark was reached */
    pipeline_dump(HEAPPROF_PEAK, NULL, 0);
  pipeline_stop();
}
