/*
 * attach_target — the process bench/attach_cost.py attaches heapprof to
 * (issue 15), reporting from its own side how long its threads made no
 * progress: what gdb's stops and the injected call cost the program.
 *
 *   attach_target busy THREADS   THREADS threads (the main thread is the
 *                                first) doing alloc_bench's mix of
 *                                malloc/free pairs, 16 B – 4 KiB over
 *                                10,000 live blocks each, without end;
 *   attach_target idle           the main thread in pause(), one ticker
 *                                thread waking every millisecond.
 *
 * A busy thread reads CLOCK_MONOTONIC (vDSO: no system call) every 64
 * pairs; a reading more than GAP_NS after the previous one is recorded as
 * a gap (start, length): time in which it made no progress, for whatever
 * reason — preempted by a neighbour on this 2-core machine, stopped by
 * gdb, or running the injected call itself. To tell a stop from the rest,
 * it also takes, at most once a millisecond, its own CPU time
 * (CLOCK_THREAD_CPUTIME_ID) and run delay (the time it waited for a CPU
 * while runnable: /proc/thread-self/schedstat's second field); whatever
 * of an interval was neither is time it was not runnable at all, which
 * for a thread that never blocks is a ptrace stop (a page fault that
 * waits for I/O would count too: there is no I/O here). Intervals with
 * more than HELD_NS of it are recorded as "held". No busy thread ever blocks in a system call, so
 * the attach cannot take one as an idle safe point: it must stop the
 * process, break at an allocator entry and call from there, the path of
 * a program whose every thread is allocating. The idle ticker sleeps 1 ms
 * between readings (so its gaps are ~1.06 ms at rest, and it is itself a
 * thread the attach may call from: idle_ok in cli/attach_gdb.py).
 *
 * It prints "ready" once every thread runs; on SIGTERM each thread stops,
 * and it prints one line per gap, "gap THREAD START_NS LENGTH_NS", one per
 * held interval, "held THREAD FROM_NS TO_NS HELD_NS", then "pairs N" (all
 * threads) and exits. The driver matches the gaps with the
 * CLOCK_MONOTONIC times at which it ran `heapprof attach` and `detach`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GAP_NS 500000 /* 0.5 ms: a reading every 64 pairs is ~10 us apart */
#define HELD_NS 100000
#define SAMPLE_NS 1000000
#define MAX_GAPS 100000
#define MAX_THREADS 16
#define LIVE 10000

typedef struct gap {
  uint64_t start_ns, length_ns;
} gap_t;

typedef struct held {
  uint64_t from_ns, to_ns, held_ns;
} held_t;

typedef struct worker {
  pthread_t tid;
  int index;
  uint64_t pairs;
  size_t ngaps, nheld, lost; /* recorded, and past MAX_GAPS */
  gap_t *gaps;
  held_t *held;
  int schedstat;                   /* its /proc/thread-self/schedstat */
  uint64_t at_ns, cpu_ns, delay_ns; /* the last sample */
} worker_t;

static atomic_int stopping;
static atomic_int running;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void note_gap(worker_t *w, uint64_t last, uint64_t now) {
  if (now - last <= GAP_NS)
    return;
  if (w->ngaps == MAX_GAPS) {
    w->lost++;
    return;
  }
  w->gaps[w->ngaps++] = (gap_t){last, now - last};
}

/* Now's CPU time and run delay of the calling thread, 0 if unreadable. */
static int sched_sample(worker_t *w, uint64_t *cpu_ns, uint64_t *delay_ns) {
  char buf[128];
  struct timespec ts;
  unsigned long long run, delay;
  ssize_t n = pread(w->schedstat, buf, sizeof buf - 1, 0);
  if (n <= 0 || clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
    return -1;
  buf[n] = '\0';
  if (sscanf(buf, "%llu %llu", &run, &delay) != 2)
    return -1;
  *cpu_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  *delay_ns = delay;
  return 0;
}

/* Once a millisecond: how much of the time since the last sample the
 * thread neither ran nor waited for a CPU. */
static void note_held(worker_t *w, uint64_t now) {
  uint64_t cpu, delay;
  if (now - w->at_ns < SAMPLE_NS || sched_sample(w, &cpu, &delay) != 0)
    return;
  uint64_t wall = now - w->at_ns, busy = (cpu - w->cpu_ns) + (delay - w->delay_ns);
  if (wall > busy + HELD_NS) {
    if (w->nheld == MAX_GAPS)
      w->lost++;
    else
      w->held[w->nheld++] = (held_t){w->at_ns, now, wall - busy};
  }
  w->at_ns = now;
  w->cpu_ns = cpu;
  w->delay_ns = delay;
}

static uint64_t next(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static void *busy(void *arg) {
  worker_t *w = arg;
  void **slots = calloc(LIVE, sizeof *slots);
  uint64_t s = 0x9e3779b97f4a7c15ULL * (uint64_t)(w->index + 1);
  w->schedstat = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
  uint64_t last = now_ns();
  w->at_ns = last;
  if (w->schedstat < 0 || sched_sample(w, &w->cpu_ns, &w->delay_ns) != 0) {
    fprintf(stderr, "attach_target: cannot read /proc/thread-self/schedstat\n");
    exit(1);
  }
  atomic_fetch_add(&running, 1);
  while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
    for (int i = 0; i < 64; i++) {
      uint64_t r = next(&s);
      size_t k = (size_t)(r >> 20) % LIVE;
      free(slots[k]);
      slots[k] = malloc((size_t)16 << (r % 9) | (r >> 8) % 16);
    }
    w->pairs += 64;
    uint64_t now = now_ns();
    note_gap(w, last, now);
    note_held(w, now);
    last = now;
  }
  for (size_t k = 0; k < LIVE; k++)
    free(slots[k]);
  free(slots);
  return NULL;
}

static void *ticker(void *arg) {
  worker_t *w = arg;
  struct timespec ms = {0, 1000000};
  atomic_fetch_add(&running, 1);
  uint64_t last = now_ns();
  while (!atomic_load(&stopping)) {
    clock_nanosleep(CLOCK_MONOTONIC, 0, &ms, NULL);
    uint64_t now = now_ns();
    note_gap(w, last, now);
    last = now;
  }
  return NULL;
}

static void on_term(int sig) {
  (void)sig;
  atomic_store(&stopping, 1);
}

int main(int argc, char **argv) {
  int idle = argc == 2 && strcmp(argv[1], "idle") == 0;
  int n = argc == 3 && strcmp(argv[1], "busy") == 0 ? atoi(argv[2]) : 0;
  if (!idle && (n < 1 || n > MAX_THREADS)) {
    fprintf(stderr, "usage: attach_target busy THREADS(1-%d) | idle\n", MAX_THREADS);
    return 2;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term; /* no SA_RESTART: pause() returns */
  sigaction(SIGTERM, &sa, NULL);
  static worker_t w[MAX_THREADS];
  int threads = idle ? 1 : n;
  for (int i = 0; i < threads; i++) {
    w[i].index = i;
    w[i].gaps = calloc(MAX_GAPS, sizeof *w[i].gaps);
    w[i].held = calloc(MAX_GAPS, sizeof *w[i].held);
    if (w[i].gaps == NULL || w[i].held == NULL)
      return 1;
  }
  /* In busy mode the main thread is worker 0, so that no thread blocks. */
  for (int i = idle ? 0 : 1; i < threads; i++)
    pthread_create(&w[i].tid, NULL, idle ? ticker : busy, &w[i]);
  if (idle) {
    while (atomic_load(&running) < threads)
      sched_yield();
    printf("ready\n");
    fflush(stdout);
    while (!atomic_load(&stopping))
      pause();
  } else {
    /* "ready" from worker 0's first round would need a write in the loop:
     * say it once the others run, then become worker 0. */
    while (atomic_load(&running) < threads - 1)
      sched_yield();
    printf("ready\n");
    fflush(stdout);
    busy(&w[0]);
  }
  uint64_t pairs = 0;
  for (int i = idle ? 0 : 1; i < threads; i++)
    pthread_join(w[i].tid, NULL);
  for (int i = 0; i < threads; i++) {
    for (size_t g = 0; g < w[i].ngaps; g++)
      printf("gap %d %llu %llu\n", i, (unsigned long long)w[i].gaps[g].start_ns,
             (unsigned long long)w[i].gaps[g].length_ns);
    for (size_t h = 0; h < w[i].nheld; h++)
      printf("held %d %llu %llu %llu\n", i, (unsigned long long)w[i].held[h].from_ns,
             (unsigned long long)w[i].held[h].to_ns, (unsigned long long)w[i].held[h].held_ns);
    if (w[i].lost)
      printf("lost %d %zu\n", i, w[i].lost);
    pairs += w[i].pairs;
  }
  printf("pairs %llu\n", (unsigned long long)pairs);
  return 0;
}
