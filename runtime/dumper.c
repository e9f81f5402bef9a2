/*
 * dumper — the dump thread and its triggers.
 *
 * Nothing that writes a profile runs in a signal handler or on an
 * allocating thread: the handler, and an allocating thread whose sample
 * crossed the growth threshold, write one byte to the wake pipe; the dump
 * thread, with every signal blocked, polls the pipe with the interval as
 * its timeout and writes the profile.
 *
 * The in-use estimate moves by size / (1 − e^(−size/rate)) per sampled
 * allocation or free — the weight the profile gives that object — so it
 * equals the profile's inuse_space total. One threshold, the lower of the
 * next growth dump and the next peak step, is compared on each move.
 *
 * Peak: when the estimate passes the previous high-water mark by a step
 * (1/32 of it, at least 1 MiB), the allocating thread that got there copies
 * the bucket counts at once — the profile as it stands at that moment —
 * and keeps them under peak_lock. Copies are O(buckets) and happen at most
 * a few hundred times in a process's life (the mark grows 3% per copy);
 * the fast path never sees any of this.
 */
#define _GNU_SOURCE
#include "dumper.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../profile/pprof.h"
#include "config.h"
#include "control.h"
#include "thread.h"

#define PEAK_MIN_STEP ((int64_t)1 << 20)
#define NO_THRESHOLD INT64_MAX

static hp_config_t const *cfg;
static int wake_fds[2] = {-1, -1};
static _Atomic int64_t inuse;     /* the estimate, bytes */
static _Atomic int64_t threshold; /* wake or copy when inuse passes this */
static _Atomic int64_t growth_base;

static pthread_mutex_t peak_lock = PTHREAD_MUTEX_INITIALIZER;
/* Protected by peak_lock: */
static bucket_count_t *peak_counts;
static size_t peak_n;
static int64_t peak_bytes;

static void wake(char why) {
  int saved = errno;
  if (wake_fds[1] >= 0) {
    ssize_t ignored = write(wake_fds[1], &why, 1);
    (void)ignored;
  }
  errno = saved;
}

static int64_t peak_next_locked(void) {
  int64_t step = peak_bytes / 32;
  return peak_bytes + (step > PEAK_MIN_STEP ? step : PEAK_MIN_STEP);
}

/* The lowest level at which the estimate needs attention. */
static void rearm(void) {
  int64_t t = NO_THRESHOLD;
  if (cfg != NULL && cfg->growth > 0)
    t = atomic_load(&growth_base) + cfg->growth;
  if (cfg != NULL && cfg->peak) {
    pthread_mutex_lock(&peak_lock);
    int64_t p = peak_next_locked();
    pthread_mutex_unlock(&peak_lock);
    if (p < t)
      t = p;
  }
  atomic_store(&threshold, t);
}

/* Copies the counts as the new high-water mark if `now` still beats it. */
static void keep_peak(int64_t now) {
  bucket_count_t *counts;
  size_t n = bucket_snapshot(&counts);
  if (n == (size_t)-1)
    return;
  pthread_mutex_lock(&peak_lock);
  if (now > peak_bytes) {
    bucket_count_t *old = peak_counts;
    peak_counts = counts, peak_n = n, peak_bytes = now;
    counts = old;
  }
  pthread_mutex_unlock(&peak_lock);
  free(counts);
}

/* Called when the estimate passed the threshold. */
static void crossed(int64_t now) {
  hp_thread_t *t = &hp_self;
  t->busy++;
  pthread_mutex_lock(&peak_lock);
  int over_peak = cfg->peak && now >= peak_next_locked();
  pthread_mutex_unlock(&peak_lock);
  if (over_peak)
    keep_peak(now);
  if (cfg->growth > 0 && now >= atomic_load(&growth_base) + cfg->growth) {
    atomic_store(&growth_base, now); /* one wake per step of growth */
    wake('g');
  }
  rearm();
  t->busy--;
}

void dumper_note(uint64_t size, int sign) {
  int64_t objects, bytes;
  pprof_unsample(1, size, atomic_load_explicit(&control_rate, memory_order_relaxed),
                 &objects, &bytes);
  int64_t now = atomic_fetch_add_explicit(&inuse, sign * bytes,
                                          memory_order_relaxed) + sign * bytes;
  if (sign > 0 && now >= atomic_load_explicit(&threshold, memory_order_relaxed))
    crossed(now);
}

int64_t dumper_inuse(void) { return atomic_load(&inuse); }

void dumper_recount(void) {
  bucket_count_t *counts;
  size_t n = bucket_snapshot(&counts);
  if (n == (size_t)-1)
    return;
  int64_t rate = atomic_load(&control_rate), total = 0;
  for (size_t i = 0; i < n; i++) {
    int64_t objects, bytes;
    pprof_unsample(counts[i].allocs - counts[i].frees, counts[i].bucket->size,
                   rate, &objects, &bytes);
    total += bytes;
  }
  free(counts);
  atomic_store(&inuse, total);
}

int dumper_peak(bucket_count_t **out, size_t *n, int64_t *bytes) {
  int rc = -1;
  pthread_mutex_lock(&peak_lock);
  if (peak_counts != NULL && (*out = malloc(peak_n * sizeof **out + 1))) {
    memcpy(*out, peak_counts, peak_n * sizeof **out);
    *n = peak_n;
    *bytes = peak_bytes;
    rc = 0;
  }
  pthread_mutex_unlock(&peak_lock);
  return rc;
}

/* ---- the thread ---- */

static void on_signal(int sig) {
  (void)sig;
  wake('s');
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *dump_thread(void *arg) {
  (void)arg;
  hp_self.busy = 1; /* never sampled */
  int64_t period = cfg->interval * 1000, next = now_ms() + period;
  char buf[64];
  for (;;) {
    int timeout = -1;
    if (period > 0) {
      int64_t left = next - now_ms();
      timeout = left < 0 ? 0 : left > 3600000 ? 3600000 : (int)left;
    }
    struct pollfd p = {wake_fds[0], POLLIN, 0};
    int r = poll(&p, 1, timeout);
    if (r < 0 && errno != EINTR)
      return NULL;
    if (r > 0) {
      ssize_t got = read(wake_fds[0], buf, sizeof buf);
      if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN))
        return NULL;
      /* Every step of growth gets its profile; signals that arrive while
       * one is being answered are answered by the same profile. */
      int growth_steps = 0, signals = 0;
      for (ssize_t i = 0; i < got; i++)
        buf[i] == 'g' ? growth_steps++ : signals++;
      for (int i = 0; i < growth_steps + (signals > 0); i++)
        control_dump(0 /* HEAPPROF_HEAP */);
    }
    if (period > 0 && now_ms() >= next) {
      control_dump(0 /* HEAPPROF_HEAP */);
      next += period;
      if (next < now_ms()) /* a slow dump: no burst to catch up */
        next = now_ms() + period;
    }
  }
}

static int start_thread(void) {
  if (pipe2(wake_fds, O_CLOEXEC | O_NONBLOCK) != 0)
    return -1;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t t;
  int rc = pthread_create(&t, NULL, dump_thread, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    close(wake_fds[0]), close(wake_fds[1]);
    wake_fds[0] = wake_fds[1] = -1;
    errno = rc;
    return -1;
  }
  pthread_detach(t);
  pthread_setname_np(t, "heapprof");
  return 0;
}

/* Installs the dump signal unless the program already handles it. */
static void install_signal(int sig) {
  struct sigaction old, sa;
  if (sig == 0 || sigaction(sig, NULL, &old) != 0)
    return;
  if ((old.sa_flags & SA_SIGINFO) ? old.sa_sigaction != NULL
                                  : old.sa_handler != SIG_DFL)
    return;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

int dumper_start(const hp_config_t *c) {
  cfg = c;
  rearm();
  if (c->signal == 0 && c->interval == 0 && c->growth == 0)
    return 0;
  if (start_thread() != 0)
    return -1;
  install_signal(c->signal);
  return 0;
}

_Atomic int dumper_restart_pending;

void dumper_restart(void) {
  if (atomic_exchange(&dumper_restart_pending, 0) && start_thread() != 0)
    config_warn("heapprof: cannot start the dump thread in child %d: %s",
                (int)getpid(), strerror(errno));
}

void dumper_fork_prepare(void) { pthread_mutex_lock(&peak_lock); }
void dumper_fork_parent(void) { pthread_mutex_unlock(&peak_lock); }

/* The parent's dump thread did not come along: the child closes the
 * parent's wake pipe and starts a thread of its own at its first
 * allocation, which the zeroed countdown sends to the slow path. */
void dumper_fork_child(void) {
  pthread_mutex_init(&peak_lock, NULL);
  if (wake_fds[0] >= 0) {
    close(wake_fds[0]), close(wake_fds[1]);
    wake_fds[0] = wake_fds[1] = -1;
    atomic_store(&dumper_restart_pending, 1);
    hp_self.bytes_left = 0;
  }
}
