/*
 * control — start-up, the dump thread, signals, exit, fork and the API.
 *
 * Dumps never run in a signal handler: the handler posts a semaphore and
 * the dump thread (dumper.c), which has every signal blocked, does the
 * work.
 * dump_lock allows one dump at a time and is the only lock the dump path
 * holds for long; it is never taken on the allocation path, and bucket
 * counters are copied out without locks, so allocating threads are not
 * held up by a dump. Symbolizing, encoding, compressing and writing all
 * happen with no other profiler lock held.
 *
 * Every thread that runs a dump marks itself busy, so the memory the dump
 * uses (libdw, protobuf-c, zlib) is forwarded unsampled.
 */
#define _GNU_SOURCE
#include "control.h"

#include <dlfcn.h>
#include <sys/syscall.h>
#include <sched.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HEAPPROF_BUILDING 1
#include "heapprof.h"

#include "../profile/buckets.h"
#include "../profile/pprof.h"
#include "../profile/sink.h"
#include "../profile/symbols.h"
#include "../profile/writer.h"
#include "arena.h"
#include "config.h"
#include "dumper.h"
#include "fdtable.h"
#include "http.h"
#include "sampled.h"
#include "stack.h"
#include "stats.h"
#include "thread.h"

_Atomic int64_t control_rate;
_Atomic uint32_t control_epoch;
int control_depth = 64;
uint64_t control_seed;

static hp_config_t cfg;
static _Atomic uint64_t drops;
static _Atomic uint64_t dump_seq;
static pthread_mutex_t dump_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t forks;
_Atomic int control_body_abort;
static _Atomic int exiting; /* the exit profile is being written */

/* Takes dump_lock; once the process is exiting, waits 5 s at most: a dump
 * stuck in another thread (a pipe nobody reads) must not keep a process
 * that called exit from ending. 0 or -1. */
static int lock_dumps(void) {
  if (!atomic_load(&exiting))
    return pthread_mutex_lock(&dump_lock);
  struct timespec at;
  clock_gettime(CLOCK_REALTIME, &at);
  at.tv_sec += 5;
  return pthread_mutex_timedlock(&dump_lock, &at) == 0 ? 0 : -1;
}
static int stopped; /* under dump_lock: the process is exiting */
static _Atomic int ever_on; /* sampling was on at some point */

void control_count_drop(void) {
  atomic_fetch_add_explicit(&drops, 1, memory_order_relaxed);
}

uint64_t control_drops(void) {
  return atomic_load_explicit(&drops, memory_order_relaxed);
}

/* ---- making a profile ---- */

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The counts a profile of `kind` shows: the buckets now, or the copy kept
 * at the high-water mark. */
static int counts_for(heapprof_kind_t kind, bucket_count_t **counts,
                      size_t *n) {
  int64_t peak_bytes;
  if (kind == HEAPPROF_PEAK)
    return dumper_peak(counts, n, &peak_bytes) == 0 ? 0 : HEAPPROF_EOFF;
  *n = bucket_snapshot(counts);
  return *n == (size_t)-1 ? HEAPPROF_ENOMEM : 0;
}

/* Streams the gzipped profile of `counts` (less `base`, over
 * `duration_ns`, for a delta profile) into `out`. 0, HEAPPROF_ENOMEM, or
 * HEAPPROF_EIO with errno set (the sink failed). */
static int encode_delta(const bucket_count_t *counts, size_t n,
                        heapprof_kind_t kind, const bucket_count_t *base,
                        size_t nbase, int64_t duration_ns,
                        const pprof_sink_t *out) {
  char version[64], dropped[96];
  snprintf(version, sizeof version, "heapprof %s%s", HEAPPROF_VERSION_STRING,
           kind == HEAPPROF_PEAK ? " peak in-use profile" : "");
  uint64_t lost = control_drops() + bucket_dropped();
  snprintf(dropped, sizeof dropped,
           "heapprof dropped %llu samples (profiler memory cap reached)",
           (unsigned long long)lost);
  const char *comments[] = {version, dropped};
  pprof_options_t opt = {
      .rate = atomic_load(&control_rate),
      .allocs_view = kind == HEAPPROF_ALLOCS,
      .time_nanos = now_ns(),
      .comments = comments,
      .ncomments = lost > 0 ? 2 : 1,
      .base = base,
      .nbase = nbase,
      .duration_nanos = duration_ns,
  };
  if (duration_ns > 0)
    opt.time_nanos -= duration_ns; /* a delta is dated by its start */
  symbols_t *syms = symbols_open();
  int rc = pprof_write_gzip(counts, n, syms, &opt, out);
  int err = errno;
  if (syms != NULL)
    symbols_close(syms);
  errno = err;
  return rc == 0 ? 0 : err == ENOMEM ? HEAPPROF_ENOMEM : HEAPPROF_EIO;
}

/* encode_delta into a new malloc'd HTTP body. */
static int encode_body(const bucket_count_t *counts, size_t n,
                       heapprof_kind_t kind, const bucket_count_t *base,
                       size_t nbase, int64_t duration_ns, uint8_t **body,
                       size_t *len) {
  pprof_membuf_t m = {0};
  pprof_sink_t sink = pprof_sink_mem(&m);
  int rc = encode_delta(counts, n, kind, base, nbase, duration_ns, &sink);
  if (rc != 0) {
    free(m.data);
    return rc;
  }
  *body = m.data;
  *len = m.len;
  return 0;
}

/* Writes a profile to `path`, or to `fd` when path is NULL, as the
 * profiler's own work (hp_own_begin). */
/* "dir/app.1.pb.gz" → "dir/app.1.peak.pb.gz" (or "….peak" appended). */
static int add_suffix(char *path, size_t cap, const char *suffix) {
  static const char ext[] = ".pb.gz";
  size_t len = strlen(path), slen = strlen(suffix), elen = sizeof ext - 1;
  if (len + slen + 1 > cap)
    return -1;
  char *at = len >= elen && strcmp(path + len - elen, ext) == 0
                 ? path + len - elen : path + len;
  memmove(at + slen, at, strlen(at) + 1);
  memcpy(at, suffix, slen);
  return 0;
}

/* Writes the gzipped profile of `kind` to `fd`. dump_lock held. */
static int emit_locked(heapprof_kind_t kind, int fd) {
  bucket_count_t *counts = NULL;
  size_t n = 0;
  pprof_sink_t sink = pprof_sink_fd(fd);
  int rc = counts_for(kind, &counts, &n);
  if (rc == 0)
    rc = encode_delta(counts, n, kind, NULL, 0, 0, &sink);
  int err = errno;
  free(counts);
  errno = err;
  return rc;
}

/* Whether a HEAPPROF_OUT template numbers its profiles (holds %n). */
static int numbered(const char *tmpl) {
  for (const char *c = tmpl; *c != '\0'; c++)
    if (*c == '%' && *++c == 'n')
      return 1;
  return 0;
}

/* Names the next profile from HEAPPROF_OUT into path[cap]. */
static int next_name(heapprof_kind_t kind, char *path, size_t cap) {
  uint64_t seq = atomic_fetch_add(&dump_seq, 1) + 1;
  if (writer_expand(cfg.out, getpid(), seq, time(NULL), path, cap) != 0 ||
      (kind == HEAPPROF_PEAK && add_suffix(path, cap, ".peak") != 0)) {
    errno = ENAMETOOLONG;
    return -1;
  }
  return 0;
}

/* Writes a profile file at `path`, complete or not at all. With `next`
 * (HEAPPROF_OUT's numbered names) an existing file is never replaced: the
 * name moves on to the next number, so an exec'd image of the same pid, or
 * an earlier process with the same pid, keeps its profiles. dump_lock
 * held. 0, HEAPPROF_EIO (errno set) or another HEAPPROF_E* code. */
static int file_locked(heapprof_kind_t kind, char *path, size_t cap,
                       int next) {
  writer_file_t f;
  if (writer_begin(path, &f) != 0)
    return HEAPPROF_EIO;
  int rc = emit_locked(kind, f.fd);
  if (rc == 0 && writer_finish(&f) != 0)
    rc = HEAPPROF_EIO;
  for (int tries = 0; rc == 0 && writer_place(&f, path, !next) != 0; tries++)
    if (!next || errno != EEXIST || tries == 10000 ||
        next_name(kind, path, cap) != 0)
      rc = HEAPPROF_EIO;
  if (rc != 0)
    writer_discard(&f);
  return rc;
}

/* Writes a profile to `fd`, or to the file `path` (a buffer of `cap`
 * bytes, which takes the name written when `next`), as the profiler's own
 * work (hp_own_begin). */
static int write_profile(char *path, size_t cap, int next, int fd,
                         heapprof_kind_t kind) {
  if (atomic_load(&control_epoch) == 0)
    return HEAPPROF_EBUSY;
  hp_thread_t *t = &hp_self;
  hp_own_work_t own = hp_own_begin(t);
  int saved = errno;
  if (lock_dumps() != 0) { /* exiting, and a dump is stuck: give up */
    hp_own_end(t, own);
    errno = saved;
    return HEAPPROF_EBUSY;
  }
  int rc = stopped ? HEAPPROF_EBUSY
           : path != NULL ? file_locked(kind, path, cap, next)
                          : emit_locked(kind, fd);
  if (rc == HEAPPROF_EIO)
    saved = errno;
  pthread_mutex_unlock(&dump_lock);
  hp_own_end(t, own);
  errno = saved;
  return rc;
}

/* Writes the next profile named by HEAPPROF_OUT; says why on failure. */
static int dump_next(heapprof_kind_t kind, char *path_out, size_t path_len) {
  char path[CONFIG_PATH_MAX];
  if (next_name(kind, path, sizeof path) != 0) {
    config_warn("heapprof: cannot name a profile from HEAPPROF_OUT=\"%.64s...\": "
                "the name would be longer than %d bytes", cfg.out,
                (int)sizeof path - 1);
    return HEAPPROF_EINVAL;
  }
  int rc = write_profile(path, sizeof path, numbered(cfg.out), -1, kind);
  if (rc == HEAPPROF_EBUSY)
    ; /* not started, or exiting: nothing to say */
  else if (rc == HEAPPROF_EIO)
    config_warn("heapprof: cannot write profile %s: %s", path,
                writer_strerror(errno));
  else if (rc != 0)
    config_warn("heapprof: cannot write profile %s: %s", path,
                heapprof_strerror(rc));
  else if (cfg.verbose)
    config_warn("heapprof: wrote %s", path);
  if (path_out != NULL && path_len > 0) {
    strncpy(path_out, path, path_len - 1);
    path_out[path_len - 1] = '\0';
  }
  return rc;
}

static int text_body(heapprof_kind_t kind, uint8_t **body, size_t *len) {
  bucket_count_t *counts;
  size_t n;
  int rc = counts_for(kind, &counts, &n);
  if (rc != 0)
    return rc;
  symbols_t *syms = symbols_open();
  pprof_membuf_t m = {0};
  pprof_sink_t sink = pprof_sink_mem(&m);
  rc = pprof_write_text(counts, n, syms, atomic_load(&control_rate), &sink);
  if (syms != NULL)
    symbols_close(syms);
  free(counts);
  if (rc != 0) {
    free(m.data);
    return HEAPPROF_ENOMEM;
  }
  *body = m.data;
  *len = m.len;
  return 0;
}

/* A delta profile: the buckets now, less the buckets `seconds` ago. The
 * wait happens before dump_lock is taken. */
static int delta_body(heapprof_kind_t kind, int seconds, uint8_t **body,
                      size_t *len) {
  bucket_count_t *before, *after;
  size_t nb = bucket_snapshot(&before), na;
  if (nb == (size_t)-1)
    return HEAPPROF_ENOMEM;
  struct timespec t0, t1, slice = {0, 100000000};
  clock_gettime(CLOCK_MONOTONIC, &t0);
  /* In tenths of a second, so that the program's unshare need not wait
   * out a long window (control_body_abort). */
  for (int64_t left = (int64_t)seconds * 10; left > 0; left--) {
    if (atomic_load(&control_body_abort)) {
      free(before);
      return HEAPPROF_EBUSY;
    }
    nanosleep(&slice, NULL);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  int64_t ns = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000 +
               (t1.tv_nsec - t0.tv_nsec);
  pthread_mutex_lock(&dump_lock);
  int rc = (na = bucket_snapshot(&after)) == (size_t)-1 ? HEAPPROF_ENOMEM : 0;
  if (rc == 0) {
    rc = encode_body(after, na, kind, before, nb, ns, body, len);
    free(after);
  }
  pthread_mutex_unlock(&dump_lock);
  free(before);
  return rc;
}

int control_body(int kind, int text, int seconds, uint8_t **body,
                 size_t *len) {
  hp_thread_t *t = &hp_self;
  hp_own_work_t own = hp_own_begin(t);
  int rc;
  if (seconds > 0) {
    rc = delta_body((heapprof_kind_t)kind, seconds, body, len);
  } else if (text) {
    pthread_mutex_lock(&dump_lock);
    rc = text_body((heapprof_kind_t)kind, body, len);
    pthread_mutex_unlock(&dump_lock);
  } else {
    bucket_count_t *counts = NULL;
    size_t n = 0;
    pthread_mutex_lock(&dump_lock);
    rc = counts_for((heapprof_kind_t)kind, &counts, &n);
    if (rc == 0)
      rc = encode_body(counts, n, (heapprof_kind_t)kind, NULL, 0, 0, body, len);
    pthread_mutex_unlock(&dump_lock);
    free(counts);
  }
  hp_own_end(t, own);
  return rc;
}

int control_dump_path(int kind, char *path, size_t cap) {
  return dump_next((heapprof_kind_t)kind, path, cap);
}

int control_dump(int kind) { return dump_next((heapprof_kind_t)kind, NULL, 0); }

/* ---- heapprof's own threads ---- */

/* glibc counts a process's threads in __nptl_nthreads and calls exit(0)
 * when the last one ends without calling exit (pthread_exit in main and
 * the others return; a child forked from a worker thread whose function
 * returns). heapprof's threads never end, so each is taken out of that
 * count: the process ends when the program's last thread does, on that
 * thread, as it would without heapprof. The program thread that created
 * the heapprof thread does the uncounting, right after pthread_create
 * counted it: the creator is alive, so the count cannot reach 0 there.
 * Where the symbol is missing (not glibc), nothing is uncounted. */
static unsigned int *nptl_nthreads; /* found at start-up */

static void nthreads_add(int delta) {
  if (nptl_nthreads != NULL)
    __atomic_add_fetch(nptl_nthreads, (unsigned)delta, __ATOMIC_SEQ_CST);
}

typedef struct spawned {
  void *(*fn)(void *);
  char name[16];
  control_thread_t *joinable;
} spawned_t;

/* Every heapprof thread starts here: never sampled, uncounted, with a
 * descriptor table of its own (fdtable.c). */
static void *trampoline(void *arg) {
  hp_self.busy = 1;
  spawned_t s = *(spawned_t *)arg;
  free(arg);
  pthread_setname_np(pthread_self(), s.name);
  if (s.joinable != NULL)
    atomic_store(&s.joinable->tid, gettid());
  fdtable_private();
  void *r = s.fn(NULL);
  nthreads_add(1); /* glibc takes an ending thread out of the count */
  return r;
}

int control_spawn(const char *name, void *(*fn)(void *),
                  control_thread_t *joinable) {
  spawned_t *s = malloc(sizeof *s);
  if (s == NULL)
    return ENOMEM;
  s->fn = fn;
  s->joinable = joinable;
  if (joinable != NULL)
    atomic_store(&joinable->tid, 0);
  snprintf(s->name, sizeof s->name, "%s", name);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t t;
  int rc = pthread_create(&t, NULL, trampoline, s);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc == 0) {
    nthreads_add(-1);
    if (joinable != NULL)
      joinable->handle = t;
    else
      pthread_detach(t);
  } else {
    free(s);
  }
  return rc;
}

void control_join(control_thread_t *t) {
  pthread_join(t->handle, NULL);
  /* pthread_join returns when the thread's id word is cleared, a moment
   * before the kernel releases the thread; until then the process still
   * counts as threaded. A signal 0 finds it until it is gone. */
  pid_t tid = atomic_load(&t->tid);
  for (int tries = 0; tid > 0 && tries < 200 &&
                      syscall(SYS_tgkill, getpid(), tid, 0) == 0; tries++) {
    struct timespec pause = {0, 1000000};
    nanosleep(&pause, NULL);
  }
}

/* ---- fork ---- */

/* dump_lock is not among the locks taken: a dump holds it for as long as
 * symbolizing, encoding and writing take, and fork must never wait for
 * that. The child does not need it: the dump in progress belongs to a
 * thread that did not come along, and the child starts unlocked. */
static void fork_prepare(void) {
  /* The program's own prepare handlers that run after this one (those it
   * registered first) may allocate: they must not sample, which would take
   * the locks held from here on. */
  hp_self.busy++;
  dumper_fork_prepare();
  stats_fork_prepare();
  bucket_fork_prepare();
  arena_fork_prepare();
  forks++;
}

static void fork_parent(void) {
  arena_fork_parent();
  bucket_fork_parent();
  stats_fork_parent();
  dumper_fork_parent();
  hp_self.busy--;
}

static void fork_child(void) {
  arena_fork_child();
  bucket_fork_child();
  stats_fork_child();
  dumper_fork_child();
  http_fork_child();
  hp_self.busy--;
  pthread_mutex_init(&dump_lock, NULL);
  /* A different stream from the parent's, reproducible under a fixed seed. */
  sampler_seed(&hp_self.rng, sampler_mix(control_seed, ~forks));
  atomic_store(&dump_seq, 0);
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
  dumper_stop_thread();
  int rc = (*next)(a, b);
  int saved = errno;
  if (stopped_http)
    http_restart();
  errno = saved;
  return rc;
}

#define SOLO_FLAGS (CLONE_NEWUSER | CLONE_VM | CLONE_SIGHAND | CLONE_THREAD)

__attribute__((visibility("default"))) int unshare(int flags) {
  return ns_call("unshare", flags, 0, (flags & SOLO_FLAGS) != 0);
}

/* nstype 0 lets the descriptor decide: treated like a user namespace. */
__attribute__((visibility("default"))) int setns(int fd, int nstype) {
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

__attribute__((constructor)) static void control_start(void) {
  hp_self.busy++;
  nptl_nthreads = dlvsym(RTLD_DEFAULT, "__nptl_nthreads", "GLIBC_PRIVATE");
  /* Everything heapprof exports besides the malloc family forwards to the
   * next definition; find each now, not inside a program's call. */
  next_unshare = (ns_call_t)dlsym(RTLD_NEXT, "unshare");
  next_setns = (ns_call_t)dlsym(RTLD_NEXT, "setns");
  stack_resolve();
  dumper_resolve();
  config_read(&cfg);
  control_depth = cfg.depth;
  control_seed = cfg.seed_set ? cfg.seed : random_seed();
  arena_set_cap(cfg.max_mem);
  stats_init();
  if (cfg.rate > 0)
    stack_init();
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  if (cfg.rate > 0)
    dumper_start(&cfg);
  if (cfg.rate > 0 && cfg.http[0] != '\0')
    http_start(cfg.http, cfg.http_remote, cfg.verbose);
  atomic_store(&control_rate, cfg.rate);
  atomic_store(&ever_on, cfg.rate > 0);
  atomic_store_explicit(&control_epoch, 1, memory_order_release);
  if (cfg.verbose)
    config_warn("heapprof: rate %lld, profiles to %s", (long long)cfg.rate,
                cfg.out);
  hp_self.busy--;
}

__attribute__((destructor)) static void control_stop(void) {
  /* HEAPPROF_RATE=0 is a pure pass-through: no file unless the program
   * turned sampling on itself. */
  if (atomic_load(&control_epoch) == 0 || !ever_on)
    return;
  atomic_store(&exiting, 1);
  bucket_count_t *peak;
  size_t npeak;
  int64_t peak_bytes;
  if (cfg.out_set)
    dump_next(HEAPPROF_HEAP, NULL, 0);
  if (cfg.peak && dumper_peak(&peak, &npeak, &peak_bytes) == 0) {
    free(peak); /* a mark was reached: there is a peak profile to write */
    dump_next(HEAPPROF_PEAK, NULL, 0);
  }
  /* No dump starts after this one: the process is about to end, and a dump
   * cut off by the end of the process would leave its temp file behind.
   * Waiting for dump_lock lets one in progress finish first. */
  if (lock_dumps() == 0) {
    stopped = 1;
    pthread_mutex_unlock(&dump_lock);
  }
}

/* ---- the public API ---- */

HEAPPROF_EXTERN int heapprof_set_rate(long rate) {
  if (rate < 0)
    return HEAPPROF_EINVAL;
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

HEAPPROF_EXTERN long heapprof_get_rate(void) {
  return (long)atomic_load(&control_rate);
}

static int valid_kind(heapprof_kind_t kind) {
  return kind == HEAPPROF_HEAP || kind == HEAPPROF_ALLOCS ||
         kind == HEAPPROF_PEAK;
}

HEAPPROF_EXTERN int heapprof_write_profile(const char *path,
                                           heapprof_kind_t kind) {
  char name[CONFIG_PATH_MAX];
  if (path == NULL || *path == '\0' || !valid_kind(kind))
    return HEAPPROF_EINVAL;
  if (strlen(path) >= sizeof name) {
    errno = ENAMETOOLONG;
    return HEAPPROF_EIO;
  }
  strcpy(name, path);
  return write_profile(name, sizeof name, 0, -1, kind);
}

HEAPPROF_EXTERN int heapprof_write_profile_fd(int fd, heapprof_kind_t kind) {
  if (fd < 0 || !valid_kind(kind))
    return HEAPPROF_EINVAL;
  return write_profile(NULL, 0, 0, fd, kind);
}

HEAPPROF_EXTERN int heapprof_dump(char *path_out, size_t path_len) {
  return dump_next(HEAPPROF_HEAP, path_out, path_len);
}

HEAPPROF_EXTERN const char *heapprof_strerror(int err) {
  switch (err) {
  case 0: return "success";
  case HEAPPROF_EINVAL: return "invalid argument";
  case HEAPPROF_ENOMEM: return "out of memory for the profile";
  case HEAPPROF_EIO: return "cannot write the profile";
  case HEAPPROF_EBUSY: return "the profiler is not started in this process";
  case HEAPPROF_EOFF: return "profiling (or peak tracking) is off";
  default: return "unknown heapprof error";
  }
}
