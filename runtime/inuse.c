/*
 * inuse — the estimate moves by size / (1 − e^(−size/rate)) per sampled
 * allocation or free — the weight the profile gives that object, at the
 * rate it was sampled at — so it equals the profile's inuse_space total.
 * It is kept only while growth, peak or leak watch is on: otherwise
 * nothing reads it, and a sample would pay an exp() and a write to a line
 * every thread shares. One threshold, the lower of the next growth step
 * and the next peak step, is compared on each move.
 *
 * Peak: when the estimate passes the previous high-water mark by a step
 * (1/32 of it, at least 1 MiB), the allocating thread that got there
 * starts a new keeping epoch (buckets.h): O(1), no copy. From then on
 * each bucket saves its counters on its first change, so the profile at
 * the mark is each bucket's kept counters, or its current ones where it
 * has not changed since. An allocating thread never copies the table.
 *
 * Lock: peak_lock guards the mark (peak_bytes, and peak_epoch's changes),
 * held for a few instructions; it is taken by the allocating thread that
 * crosses the threshold, so fork's handlers take it too (inuse_fork_*).
 * peak_epoch is also read without it by the sampling path.
 */
#include "inuse.h"

#include <pthread.h>
#include <stdatomic.h>

#include "pprof.h"

#define PEAK_MIN_STEP ((int64_t)1 << 20)
#define NO_THRESHOLD INT64_MAX

static int tracking;              /* a trigger reads the estimate */
static int keeping;               /* peak: samples call bucket_keep */
static int64_t growth_step;       /* 0: off */
static void (*growth_wake)(void);
static _Atomic int64_t inuse;     /* the estimate, bytes */
static _Atomic int64_t threshold = NO_THRESHOLD;
static _Atomic int64_t growth_base;

static pthread_mutex_t peak_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint32_t peak_epoch; /* 0: no mark yet, else even */
static int64_t peak_bytes;

static int64_t peak_next_locked(void) {
  int64_t step = peak_bytes / 32;
  return peak_bytes + (step > PEAK_MIN_STEP ? step : PEAK_MIN_STEP);
}

/* The lowest level at which the estimate needs attention. */
static void rearm(void) {
  int64_t t = NO_THRESHOLD;
  if (growth_step > 0)
    t = atomic_load(&growth_base) + growth_step;
  if (keeping) {
    pthread_mutex_lock(&peak_lock);
    int64_t p = peak_next_locked();
    pthread_mutex_unlock(&peak_lock);
    if (p < t)
      t = p;
  }
  atomic_store(&threshold, t);
}

void inuse_start(int64_t growth, int peak, int watch, void (*on_growth)(void)) {
  growth_step = growth;
  growth_wake = on_growth;
  keeping = peak;
  tracking = growth > 0 || peak || watch;
  rearm();
}

/* The estimate passed the threshold: a new mark starts a new keeping
 * epoch (O(1)); a growth step wakes the dump thread. */
static void crossed(int64_t now) {
  if (keeping) {
    pthread_mutex_lock(&peak_lock);
    if (now >= peak_next_locked()) {
      peak_bytes = now;
      uint32_t e = atomic_load_explicit(&peak_epoch, memory_order_relaxed) + 2;
      atomic_store_explicit(&peak_epoch, e == 0 ? 2 : e, memory_order_release);
    }
    pthread_mutex_unlock(&peak_lock);
  }
  if (growth_step > 0 && now >= atomic_load(&growth_base) + growth_step) {
    atomic_store(&growth_base, now); /* one profile per step of growth */
    if (growth_wake != NULL)
      growth_wake();
  }
  rearm();
}

void inuse_keep(bucket_t *b) {
  if (!keeping)
    return;
  uint32_t e = atomic_load_explicit(&peak_epoch, memory_order_acquire);
  if (e != 0)
    bucket_keep(b, e);
}

void inuse_note(uint64_t size, int64_t rate, int sign) {
  if (!tracking) /* the default: no exp() and no shared write per sample */
    return;
  int64_t objects, bytes;
  pprof_unsample(1, size, rate, &objects, &bytes);
  int64_t now = atomic_fetch_add_explicit(&inuse, sign * bytes,
                                          memory_order_relaxed) + sign * bytes;
  if (sign > 0 && now >= atomic_load_explicit(&threshold, memory_order_relaxed))
    crossed(now);
}

int64_t inuse_bytes(void) { return atomic_load(&inuse); }

uint32_t inuse_peak_epoch(int64_t *bytes) {
  pthread_mutex_lock(&peak_lock);
  uint32_t e = atomic_load(&peak_epoch);
  if (bytes != NULL)
    *bytes = peak_bytes;
  pthread_mutex_unlock(&peak_lock);
  return e;
}

void inuse_fork_prepare(void) { pthread_mutex_lock(&peak_lock); }
void inuse_fork_parent(void) { pthread_mutex_unlock(&peak_lock); }
void inuse_fork_child(void) { pthread_mutex_init(&peak_lock, NULL); }
