/*
 * pipeline — snapshot → symbolize → encode → sink, for every profile.
 *
 * Lock: dump_lock allows one profile at a time. It guards the symbolizer
 * (not thread-safe, kept between profiles) and the temp files of a profile
 * being written. It is taken only on the dump path — never by an
 * allocating thread, never by fork's handlers — and no other heapprof
 * lock is held while it is taken; inside it, the snapshot reads bucket
 * counters without locks and the peak's epoch under peak_lock (inuse.c)
 * for a few instructions. So an allocating thread is never held up by a
 * profile, and fork never waits for one.
 *
 * The symbolizer keeps no descriptor between calls (symbolizer.h), so the
 * profile may be made on any thread: the program's (the API, the exit
 * profile), the dump thread's or the HTTP thread's, each with its own
 * descriptor table.
 */
#define _GNU_SOURCE
#include "pipeline.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc_next.h"
#include "buckets.h"
#include "buildid.h"
#include "config.h"
#include "control.h"
#include "inuse.h"
#include "pprof.h"
#include "spawn.h"
#include "stack.h"
#include "symbolizer.h"
#include "thread.h"
#include "writer.h"

/* ---- memory ---- */

/* The next allocator's own functions: what profile/ allocates (snapshots,
 * the encoder's tables, zlib, HTTP bodies) never passes through the
 * exported malloc, so it is never sampled, counted or seen as the
 * program's. */
static void *heap_realloc(void *ctx, void *p, size_t old_size,
                          size_t new_size) {
  (void)ctx, (void)old_size;
  if (new_size == 0) {
    alloc_next.free(p);
    return NULL;
  }
  return alloc_next.realloc(p, new_size);
}

const prof_alloc_t pipeline_heap = {heap_realloc, NULL};

/* ---- state ---- */

static pthread_mutex_t dump_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int started;  /* pipeline_start ran */
static _Atomic int exiting;  /* the exit profile is being written */
static int stopped;          /* after the exit profile; dump_lock held */
static _Atomic int in_dump;  /* dump_lock is held by a profile */
static _Atomic uint64_t dump_seq;
static char out_template[CONFIG_PATH_MAX];
static int verbose;
static symbolizer_t *symbolizer; /* dump_lock */
/* How long a dlclose waits for a profile being made before it lets its
 * library go unkept (pipeline_unloading). */
#define UNLOAD_WAIT_S 1
static demangle_style_t demangle_style; /* HEAPPROF_DEMANGLE */
/* The bucket counts the last delta_heap answer was made from, and when
 * (monotonic ns); before the first there are none, and its window opens
 * when profiling started. dump_lock. */
static bucket_snapshot_t delta_prev;
static int64_t delta_prev_ns, started_ns;

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void pipeline_start(const hp_config_t *cfg) {
  snprintf(out_template, sizeof out_template, "%s", cfg->out);
  verbose = cfg->verbose;
  demangle_style = (demangle_style_t)cfg->demangle;
  started_ns = mono_ns();
  atomic_store(&started, 1);
}

/* ---- the lock, and the profiler's own work around it ---- */

typedef struct dump {
  hp_own_work_t own;
  int saved_errno;
} dump_t;

/* Takes dump_lock as the profiler's own work, waiting at most `wait_s`
 * seconds (0: not at all; -1: as long as it takes). Once the process is
 * exiting, waits 5 s at most: a profile stuck in another thread (a pipe
 * nobody reads) must not keep a process that called exit from ending.
 * 0, or -1 with errno EBUSY (not started, stopped, stuck or busy). */
static int dump_begin_within(dump_t *d, int wait_s) {
  d->own = hp_own_begin(&hp_self);
  d->saved_errno = errno;
  int locked = 0;
  if (atomic_load(&exiting) && (wait_s < 0 || wait_s > 5))
    wait_s = 5;
  if (wait_s < 0) {
    locked = pthread_mutex_lock(&dump_lock) == 0;
  } else if (wait_s == 0) {
    locked = pthread_mutex_trylock(&dump_lock) == 0;
  } else {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += wait_s;
    locked = pthread_mutex_timedlock(&dump_lock, &until) == 0;
  }
  if (locked && atomic_load(&started) && !stopped) {
    atomic_store(&in_dump, 1);
    return 0;
  }
  if (locked)
    pthread_mutex_unlock(&dump_lock);
  hp_own_end(&hp_self, d->own);
  errno = EBUSY;
  return -1;
}

static int dump_begin(dump_t *d) { return dump_begin_within(d, -1); }

/* Ends what dump_begin began; rc is the profile's result. errno is the
 * failure's when rc is -1, else as it was before dump_begin. */
static int dump_end(dump_t *d, int rc) {
  int err = errno;
  atomic_store(&in_dump, 0);
  pthread_mutex_unlock(&dump_lock);
  hp_own_end(&hp_self, d->own);
  errno = rc != 0 ? err : d->saved_errno;
  return rc;
}

/* ---- the stages ---- */

static int valid_kind(heapprof_kind_t kind) {
  return kind == HEAPPROF_HEAP || kind == HEAPPROF_ALLOCS ||
         kind == HEAPPROF_PEAK;
}

/* The counts a profile of `kind` shows: the buckets now, or as they stood
 * at the high-water mark. dump_lock held. */
static int snapshot(heapprof_kind_t kind, bucket_snapshot_t *out) {
  uint32_t epoch = 0;
  if (kind == HEAPPROF_PEAK && (epoch = inuse_peak_epoch(NULL)) == 0) {
    errno = ENODATA;
    return -1;
  }
  return bucket_snapshot(&pipeline_heap, epoch, out);
}

/* The process's symbol table, brought up to date; NULL when there is
 * none (no memory): the profile then carries addresses only. A failed
 * refresh keeps the view it had. dump_lock held. */
static const prof_symtab_t *symbolize(prof_symtab_t *st) {
  if (symbolizer == NULL &&
      (symbolizer = symbolizer_new(demangle_style)) == NULL)
    return NULL;
  int saved = errno;
  stack_loader_enter(); /* dl_iterate_phdr: see stack.h */
  symbolizer_refresh(symbolizer);
  stack_loader_leave();
  errno = saved;
  *st = symbolizer_symtab(symbolizer);
  return st;
}

/* ---- a library about to be unloaded ---- */

/*
 * Answering a library's sampled addresses means reading the map and its
 * ELF and debug files: descriptors. On a program's thread they would be
 * taken from the program's table, where another thread's open() could get
 * a different number meanwhile. So a dlclose hands that work to a thread
 * of heapprof's own (spawn.h: its own descriptor table) and waits for it.
 * Only freeing the symbolizer's images of the library's files, which
 * opens nothing, is done on the program's thread, when there is nothing
 * to answer or the work cannot be handed over.
 */

/* The sampled addresses (inside call instructions) in [low, high), from
 * every bucket, `max` at most; *n of them, in memory from pipeline_heap
 * (NULL when none or out of memory). */
static uint64_t *addrs_in(const bucket_snapshot_t *snap, uint64_t low,
                          uint64_t high, size_t max, size_t *n, size_t *cap) {
  uint64_t *v = NULL;
  *n = *cap = 0;
  for (size_t i = 0; i < snap->n && *n < max; i++) {
    const bucket_t *b = snap->counts[i].bucket;
    for (uint32_t f = 0; f < b->nframes && *n < max; f++) {
      uint64_t addr = (uint64_t)b->pcs[f] - 1;
      if (addr < low || addr >= high)
        continue;
      if (*n == *cap) {
        size_t grown = *cap ? 2 * *cap : 256;
        uint64_t *w = heap_realloc(NULL, v, *cap * sizeof *v,
                                   grown * sizeof *v);
        if (w == NULL)
          return v; /* what fits is kept */
        v = w;
        *cap = grown;
      }
      v[(*n)++] = addr;
    }
  }
  return v;
}

/* Whether some bucket holds an address in [low, high). */
static int sampled_in(uint64_t low, uint64_t high) {
  bucket_snapshot_t snap;
  if (bucket_total() == 0 || bucket_snapshot(&pipeline_heap, 0, &snap) != 0)
    return 0;
  size_t n, cap;
  uint64_t *one = addrs_in(&snap, low, high, 1, &n, &cap);
  heap_realloc(NULL, one, cap * sizeof *one, 0);
  bucket_snapshot_free(&pipeline_heap, &snap);
  return n > 0;
}

/* Frees the symbolizer's images of [low, high)'s files; opens nothing. */
static void release_images(uint64_t low, uint64_t high, int wait_s) {
  dump_t d;
  if (dump_begin_within(&d, wait_s) != 0)
    return;
  if (symbolizer != NULL)
    symbolizer_release(symbolizer, low, high);
  dump_end(&d, 0);
}

/* Keeps the answers for the sampled addresses of the library at load bias
 * `bias`, and frees the images of its files, unless the dlclose that asked
 * stopped waiting (`*abandoned`): the library may be gone by then, and
 * another loaded at the same bias. On a heapprof thread. */
static void keep_library(uint64_t bias, const _Atomic int *abandoned) {
  dump_t d;
  if (dump_begin_within(&d, UNLOAD_WAIT_S) != 0)
    return;
  if (atomic_load(abandoned)) {
    dump_end(&d, 0);
    return;
  }
  prof_symtab_t st;
  uint64_t low, high, serial = bucket_total();
  bucket_snapshot_t snap;
  if (symbolize(&st) != NULL &&
      symbolizer_module_at_bias(symbolizer, bias, &low, &high) == 0) {
    if (bucket_snapshot(&pipeline_heap, 0, &snap) == 0) {
      size_t n, cap;
      uint64_t *addrs = addrs_in(&snap, low, high, SIZE_MAX, &n, &cap);
      if (n > 0)
        symbolizer_retire(symbolizer, low, high, addrs, n, serial);
      heap_realloc(NULL, addrs, cap * sizeof *addrs, 0);
      bucket_snapshot_free(&pipeline_heap, &snap);
    }
    symbolizer_release(symbolizer, low, high);
  }
  dump_end(&d, 0);
}

/* A keep_library handed to a heapprof thread: the last of the two holders
 * (the dlclose waiting, the thread working) frees it. */
typedef struct unload_job {
  uint64_t bias;
  sem_t done;
  _Atomic int holders;
  _Atomic int abandoned; /* the dlclose stopped waiting */
} unload_job_t;

static void job_drop(unload_job_t *job) {
  if (atomic_fetch_sub(&job->holders, 1) == 1) {
    sem_destroy(&job->done);
    alloc_next.free(job);
  }
}

static void *unload_worker(void *arg) {
  unload_job_t *job = arg;
  keep_library(job->bias, &job->abandoned);
  sem_post(&job->done);
  job_drop(job);
  return NULL;
}

/* Runs keep_library(bias) on a heapprof thread and waits for it, and for
 * the thread to be gone, 3 s at most (it waits 1 s at most for a profile
 * being written); -1 if no thread could be started. */
static int hand_over(uint64_t bias) {
  unload_job_t *job = alloc_next.malloc(sizeof *job);
  if (job == NULL || sem_init(&job->done, 0, 0) != 0) {
    alloc_next.free(job);
    return -1;
  }
  job->bias = bias;
  atomic_store(&job->holders, 2);
  atomic_store(&job->abandoned, 0);
  spawned_t worker;
  if (spawn_thread("heapprof-unload", unload_worker, job, &worker) != 0) {
    sem_destroy(&job->done);
    alloc_next.free(job);
    return -1;
  }
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += UNLOAD_WAIT_S + 2;
  int rc;
  while ((rc = sem_clockwait(&job->done, CLOCK_MONOTONIC, &until)) != 0 &&
         errno == EINTR)
    ;
  if (rc != 0)
    atomic_store(&job->abandoned, 1);
  job_drop(job);
  /* A program single-threaded but for this moment must be so again when
   * its dlclose returns (unshare(CLONE_NEWUSER) refuses a threaded
   * process): the worker is waited for until the kernel lets it go. One
   * that is still working (abandoned) ends on its own. */
  if (rc == 0)
    spawn_join(&worker);
  else
    pthread_detach(worker.handle);
  return 0;
}

void pipeline_unloading(void *handle, int nested) {
  uint64_t bias, low, high;
  struct link_map *lm = NULL;
  if (!atomic_load(&started) || atomic_load(&exiting))
    return;
  int saved = errno;
  hp_own_work_t own = hp_own_begin(&hp_self);
  /* dlinfo and dl_iterate_phdr: see stack.h for the gate around them. */
  stack_loader_enter();
  int known = dlinfo(handle, RTLD_DI_LINKMAP, &lm) == 0 && lm != NULL &&
              (bias = lm->l_addr) != 0 && buildid_code_of(bias, &low, &high);
  stack_loader_leave();
  /* Nested in another dlclose, the loader's lock is held here: a thread
   * reading the map would wait on it while we waited on the thread. */
  if (known && (nested || !sampled_in(low, high) || hand_over(bias) != 0))
    release_images(low, high, nested ? 0 : UNLOAD_WAIT_S);
  hp_own_end(&hp_self, own);
  errno = saved;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Streams the gzipped profile of `now` (less `base` over `duration_ns`,
 * for a delta: of every value, or with `inuse_absolute` of alloc_* only)
 * into `out`. A profile is dated when it is made: a delta by the end of
 * its window, as Go dates one. dump_lock held. */
static int encode(heapprof_kind_t kind, const bucket_snapshot_t *now,
                  const bucket_snapshot_t *base, int64_t duration_ns,
                  int inuse_absolute, const pprof_sink_t *out) {
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
      .duration_nanos = duration_ns,
      .comments = comments,
      .ncomments = lost > 0 ? 2 : 1,
      .base = base != NULL ? base->counts : NULL,
      .nbase = base != NULL ? base->n : 0,
      .inuse_absolute = inuse_absolute,
      .alloc = &pipeline_heap,
  };
  prof_symtab_t st;
  return pprof_write_gzip(now->counts, now->n, symbolize(&st), &opt, out);
}

/* A sink in front of the caller's that notes whether the file or
 * descriptor under it failed: a write may fail with any errno, so the
 * errno alone cannot tell its failure from the pipeline's own. */
typedef struct watched {
  const pprof_sink_t *to;
  int failed;
} watched_t;

static int watched_write(void *ctx, const void *buf, size_t len) {
  watched_t *w = ctx;
  int rc = w->to->write(w->to->ctx, buf, len);
  if (rc != 0)
    w->failed = 1;
  return rc;
}

/* The profile of `kind`, gzipped, into `out`: 0, -1 (the pipeline's own
 * failure) or PIPELINE_EIO (the sink's). dump_lock held. */
static int emit(heapprof_kind_t kind, const pprof_sink_t *out) {
  bucket_snapshot_t snap;
  if (snapshot(kind, &snap) != 0)
    return -1;
  watched_t w = {out, 0};
  pprof_sink_t sink = {watched_write, &w};
  int rc = encode(kind, &snap, NULL, 0, 0, &sink);
  int err = errno;
  bucket_snapshot_free(&pipeline_heap, &snap);
  errno = err;
  return rc != 0 && w.failed ? PIPELINE_EIO : rc;
}

/* ---- sinks: descriptors and files ---- */

int pipeline_write_fd(heapprof_kind_t kind, int fd) {
  if (fd < 0 || !valid_kind(kind)) {
    errno = EINVAL;
    return -1;
  }
  dump_t d;
  if (dump_begin(&d) != 0)
    return -1;
  pprof_sink_t sink = writer_sink_fd(fd);
  return dump_end(&d, emit(kind, &sink));
}

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
  if (writer_expand(out_template, getpid(), seq, time(NULL), path, cap) != 0 ||
      (kind == HEAPPROF_PEAK && add_suffix(path, cap, ".peak") != 0)) {
    errno = ENAMETOOLONG;
    return -1;
  }
  return 0;
}

/* Writes the profile file at `path`, complete or not at all. With `next`
 * (numbered names) an existing file is never replaced: the name moves on
 * to the next number, so an exec'd image of the same pid, or an earlier
 * process with the same pid, keeps its profiles. dump_lock held. */
static int emit_file(heapprof_kind_t kind, char *path, size_t cap, int next) {
  writer_file_t f;
  if (writer_begin(path, &f) != 0)
    return PIPELINE_EIO;
  pprof_sink_t sink = writer_sink_fd(f.fd);
  int rc = emit(kind, &sink);
  if (rc == 0 && writer_finish(&f) != 0)
    rc = PIPELINE_EIO;
  for (int tries = 0; rc == 0 && writer_place(&f, path, !next) != 0; tries++)
    if (!next || errno != EEXIST || tries == 10000 ||
        next_name(kind, path, cap) != 0)
      rc = PIPELINE_EIO;
  if (rc != 0)
    writer_discard(&f); /* keeps errno */
  return rc;
}

int pipeline_write_file(heapprof_kind_t kind, const char *path) {
  char name[CONFIG_PATH_MAX];
  if (path == NULL || *path == '\0' || !valid_kind(kind)) {
    errno = EINVAL;
    return -1;
  }
  if (strlen(path) >= sizeof name) {
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(name, path);
  dump_t d;
  if (dump_begin(&d) != 0)
    return -1;
  return dump_end(&d, emit_file(kind, name, sizeof name, 0));
}

int pipeline_dump(heapprof_kind_t kind, char *path_out, size_t cap) {
  char path[CONFIG_PATH_MAX];
  int rc = -1;
  dump_t d;
  if (next_name(kind, path, sizeof path) != 0) {
    path[0] = '\0';
    config_warn("heapprof: cannot name a profile from HEAPPROF_OUT=\"%.64s...\": "
                "the name would be longer than %d bytes", out_template,
                (int)sizeof path - 1);
    errno = EINVAL; /* the template, not a file, is at fault */
  } else if (dump_begin(&d) == 0) {
    rc = dump_end(&d, emit_file(kind, path, sizeof path, numbered(out_template)));
    int err = errno;
    if (rc != 0)
      config_warn("heapprof: cannot write profile %s: %s", path,
                  rc == PIPELINE_EIO ? writer_strerror(err)
                  : err == ENODATA   ? "profiling (or peak tracking) is off"
                  : err == ENOMEM    ? "out of memory for the profile"
                                     : "the profiler is not started or is exiting");
    else if (verbose)
      config_warn("heapprof: wrote %s", path);
    errno = err;
  } /* else not started, or exiting: nothing to say */
  if (path_out != NULL && cap > 0) {
    strncpy(path_out, path, cap - 1);
    path_out[cap - 1] = '\0';
  }
  return rc;
}

/* ---- sinks: HTTP bodies ---- */

int pipeline_window_open(pipeline_window_t *w) {
  hp_own_work_t own = hp_own_begin(&hp_self);
  int rc = bucket_snapshot(&pipeline_heap, 0, &w->before);
  int err = errno;
  hp_own_end(&hp_self, own);
  w->opened_ns = mono_ns();
  errno = err;
  return rc;
}

void pipeline_window_drop(pipeline_window_t *w) {
  hp_own_work_t own = hp_own_begin(&hp_self);
  bucket_snapshot_free(&pipeline_heap, &w->before);
  hp_own_end(&hp_self, own);
}

/* The gzipped profile of the buckets now less `base` (NULL: none), over
 * the window since `since_ns` (monotonic), into `body`. The snapshot of
 * now goes to `*keep` when the profile was made and `keep` is not NULL
 * (delta_heap's next base), else it is freed. dump_lock held. */
static int emit_delta(heapprof_kind_t kind, const bucket_snapshot_t *base,
                      int64_t since_ns, int inuse_absolute,
                      pprof_membuf_t *body, bucket_snapshot_t *keep) {
  bucket_snapshot_t now;
  pprof_sink_t sink = pprof_sink_mem(body);
  if (bucket_snapshot(&pipeline_heap, 0, &now) != 0)
    return -1;
  int rc = encode(kind, &now, base, mono_ns() - since_ns, inuse_absolute,
                  &sink);
  int err = errno;
  if (rc == 0 && keep != NULL)
    *keep = now;
  else
    bucket_snapshot_free(&pipeline_heap, &now);
  errno = err;
  return rc;
}

int pipeline_window_close(pipeline_window_t *w, heapprof_kind_t kind,
                          pprof_membuf_t *body) {
  dump_t d;
  int rc = -1;
  if (kind != HEAPPROF_HEAP && kind != HEAPPROF_ALLOCS)
    errno = EINVAL;
  else if (dump_begin(&d) == 0)
    rc = dump_end(&d, emit_delta(kind, &w->before, w->opened_ns, 0, body, NULL));
  int err = errno;
  pipeline_window_drop(w);
  errno = err;
  return rc;
}

int pipeline_delta_heap(pprof_membuf_t *body, int advance) {
  dump_t d;
  if (dump_begin(&d) != 0)
    return -1;
  /* Only an answer made (and taken: not a HEAD) moves the base on: a
   * failed one leaves the next to cover its window too. */
  bucket_snapshot_t next = {0};
  int64_t at = mono_ns();
  int first = delta_prev.counts == NULL;
  int rc = emit_delta(HEAPPROF_HEAP, first ? NULL : &delta_prev,
                      first ? started_ns : delta_prev_ns, 1, body,
                      advance ? &next : NULL);
  if (rc == 0 && advance) {
    bucket_snapshot_free(&pipeline_heap, &delta_prev);
    delta_prev = next;
    delta_prev_ns = at;
  }
  return dump_end(&d, rc);
}

/* Go's debug=1 text of `kind`. dump_lock held. */
static int emit_text(heapprof_kind_t kind, const pprof_sink_t *out) {
  bucket_snapshot_t snap;
  if (snapshot(kind, &snap) != 0)
    return -1;
  prof_symtab_t st;
  int rc = pprof_write_text(snap.counts, snap.n, symbolize(&st),
                            atomic_load(&control_rate), out);
  int err = errno;
  bucket_snapshot_free(&pipeline_heap, &snap);
  errno = err;
  return rc;
}

int pipeline_body(heapprof_kind_t kind, int text, pprof_membuf_t *body) {
  if (!valid_kind(kind)) {
    errno = EINVAL;
    return -1;
  }
  pprof_sink_t sink = pprof_sink_mem(body);
  dump_t d;
  if (dump_begin(&d) != 0)
    return -1;
  return dump_end(&d, text ? emit_text(kind, &sink) : emit(kind, &sink));
}

/* ---- names for others ---- */

int pipeline_symbolize(void (*fn)(const prof_symtab_t *syms, void *ctx),
                       void *ctx) {
  dump_t d;
  if (dump_begin(&d) != 0)
    return -1;
  prof_symtab_t st;
  const prof_symtab_t *syms = symbolize(&st);
  if (syms == NULL) {
    errno = ENOMEM;
    return dump_end(&d, -1);
  }
  fn(syms, ctx);
  return dump_end(&d, 0);
}

/* ---- exit and fork ---- */

void pipeline_exiting(void) { atomic_store(&exiting, 1); }

void pipeline_stop(void) {
  dump_t d;
  if (dump_begin(&d) == 0) {
    stopped = 1;
    dump_end(&d, 0);
  }
}

/* dump_lock is not among the locks fork's handlers take: a profile holds
 * it for as long as symbolizing, encoding and writing take, and fork must
 * never wait for that. The profile in progress belongs to a thread that
 * did not come along; its symbolizer may be half-refreshed, so the child
 * leaves it (unfreed: its state cannot be trusted) and makes a new one. */
void pipeline_fork_child(void) {
  pthread_mutex_init(&dump_lock, NULL);
  if (atomic_exchange(&in_dump, 0))
    symbolizer = NULL;
  atomic_store(&dump_seq, 0);
}
