/*
 * test_labels — the label API (heapprof_label_push and the rest) inside a
 * real process, each profile read back by the real `go tool pprof -raw`.
 * One mode per CTest entry:
 *
 *   exact      HEAPPROF_RATE=1: four tenants' blocks, freed by a fifth
 *              thread with labels of its own, are exact per tenant; an
 *              unlabelled site has no label; realloc on another labelled
 *              thread moves the block to that thread's set.
 *   unbiased   the default rate, seeds 1..5 (one child process each): each
 *              tenant's estimate lies within 6 sigma of the truth.
 *   nested     push, replace, pop, get and list through the public API;
 *              the caller's strings are freed right after each push.
 *   outlive    labels of a thread that exits without popping stay with its
 *              blocks; a new thread starts with none; save/restore tokens.
 *   limits     every EINVAL case, ELIMIT at 17 labels and depth 65, the
 *              error texts; push and pop never call malloc.
 *   sets       ELIMIT at the 4097th distinct set, then 100,000 new values:
 *              no crash, ELIMIT each time, bounded memory.
 *   refused    pushes refused at the 16-label limit spend none of the
 *              label budget that later sets need.
 *   fork       the child keeps the forking thread's labels; a thread that
 *              makes new labels (taking the label lock) while main forks
 *              200 times never leaves a child deadlocked.
 *   ebusy      a push from a fork prepare handler that runs after
 *              heapprof's: HEAPPROF_EBUSY for a new pair, 0 for a seen one.
 *   contract   errno, descriptors, the signal mask, cancellation and
 *              stdout/stderr are the program's through every label call.
 *
 * The same source is built linked with -lheapprof and, not linked, run
 * under LD_PRELOAD: the API is declared weak so that the loader binds it
 * to whichever copy of heapprof is there.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heapprof.h"
#include "testlib.h"

#pragma weak heapprof_label_push
#pragma weak heapprof_label_pop
#pragma weak heapprof_label_get
#pragma weak heapprof_label_list
#pragma weak heapprof_label_save
#pragma weak heapprof_label_restore
#pragma weak heapprof_strerror
#pragma weak heapprof_write_profile
#pragma weak heapprof_read_stats
#pragma weak heapprof_get_rate

#define NOINLINE __attribute__((noipa))

extern char **environ;

/* Volatile: the compiler deletes unused malloc/free pairs otherwise. */
static void *volatile sink;

/* ---- helpers ---- */

static void need_heapprof(void) {
  CHECK(heapprof_label_push != NULL && heapprof_write_profile != NULL,
        "heapprof is neither linked nor preloaded");
}

static void push_ok(const char *key, const char *value) {
  int rc = heapprof_label_push(key, value);
  CHECK(rc == 0, "push %s=%s: %d (%s)", key, value, rc, heapprof_strerror(rc));
}

static void pop_ok(void) {
  int rc = heapprof_label_pop();
  CHECK(rc == 0, "pop: %d (%s)", rc, heapprof_strerror(rc));
}

/* The calling thread's labels as "k=v,k=v" (sorted, as list gives them). */
static const char *labels_now(void) {
  static __thread char buf[4096];
  heapprof_label_t l[HEAPPROF_LABELS_MAX];
  int n = heapprof_label_list(l, HEAPPROF_LABELS_MAX);
  CHECK(n >= 0 && n <= HEAPPROF_LABELS_MAX, "list returned %d", n);
  size_t len = 0;
  buf[0] = '\0';
  for (int i = 0; i < n; i++)
    len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s=%s",
                            i ? "," : "", l[i].key, l[i].value);
  return buf;
}

static void expect_labels(const char *want, const char *when) {
  const char *got = labels_now();
  CHECK(strcmp(got, want) == 0, "%s: labels {%s}, want {%s}", when, got, want);
}

/* Writes the heap profile as `name` in the test's directory and reads it
 * back through `go tool pprof -raw`. */
static void snapshot(const char *name, tl_profile_t *p) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s.pb.gz", tl_tmpdir(), name);
  int rc = heapprof_write_profile(path, HEAPPROF_HEAP);
  CHECK(rc == 0, "writing %s: %d", path, rc);
  tl_read_profile(path, p);
}

/* Checks the four values of the samples at `func` under key=value. */
static void expect_site(const tl_profile_t *p, const char *func,
                        const char *key, const char *value, int64_t ao,
                        int64_t as, int64_t io, int64_t is) {
  int64_t v[4];
  size_t n = tl_site_label(p, func, key, value, v);
  printf("  %-22s %s=%-8s samples %zu  alloc %lld/%lld  inuse %lld/%lld\n",
         func ? func : "(any)", key, value ? value : "(none)", n,
         (long long)v[0], (long long)v[1], (long long)v[2], (long long)v[3]);
  CHECK(v[0] == ao && v[1] == as && v[2] == io && v[3] == is,
        "%s %s=%s: alloc %lld/%lld inuse %lld/%lld, want %lld/%lld %lld/%lld"
        "\n%s",
        func ? func : "(any)", key, value ? value : "(none)", (long long)v[0],
        (long long)v[1], (long long)v[2], (long long)v[3], (long long)ao,
        (long long)as, (long long)io, (long long)is, p->raw);
}

/* Every sample at `func` has exactly the labels "k=v,…" (sorted by key). */
static void expect_site_labels(const tl_profile_t *p, const char *func,
                               const char *want) {
  size_t n = 0;
  for (size_t i = 0; i < p->nsamples; i++) {
    const tl_sample_t *s = &p->samples[i];
    if (s->nlocs == 0 || strcmp(s->funcs[0], func) != 0)
      continue;
    char got[1024];
    size_t len = 0;
    got[0] = '\0';
    for (size_t j = 0; j < s->nlabels; j++)
      len += (size_t)snprintf(got + len, sizeof got - len, "%s%s=%s",
                              j ? "," : "", s->labels[2 * j],
                              s->labels[2 * j + 1]);
    CHECK(strcmp(got, want) == 0, "a sample at %s has labels {%s}, want {%s}",
          func, got, want);
    n++;
  }
  CHECK(n > 0, "no sample at %s:\n%s", func, p->raw);
}

/* A hang fails the test with the stage it hung in, instead of stalling. */
static const char *volatile stage = "start";

static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "HANG: the test did not finish in time, at: ";
  write(2, msg, sizeof msg - 1);
  write(2, stage, strlen(stage));
  write(2, "\n", 1);
  _exit(2);
}

static void deadline(unsigned seconds) {
  signal(SIGALRM, on_alarm);
  alarm(seconds);
}

/* The environment with HEAPPROF_SEED=seed instead of any other seed. */
static char **env_with_seed(unsigned seed) {
  char s[32];
  snprintf(s, sizeof s, "HEAPPROF_SEED=%u", seed);
  return tl_env((const char *const[]){"HEAPPROF_SEED=", NULL}, s);
}

/* ---- exact: rate 1, cross-thread frees ---- */

#define TENANTS 4
#define BLOCK 1000
#define FREED 40 /* of each tenant's blocks, by the fifth thread */

static void *blocks[TENANTS][100 + TENANTS];

NOINLINE void tenant_site(void **out, int n) {
  for (int i = 0; i < n; i++)
    out[i] = malloc(BLOCK);
}

NOINLINE void after_pop_site(void) { sink = malloc(BLOCK); }

NOINLINE void control_site(void **out, int n) {
  for (int i = 0; i < n; i++)
    out[i] = malloc(BLOCK);
}

static void *tenant_thread(void *arg) {
  int i = (int)(intptr_t)arg;
  char value[16];
  snprintf(value, sizeof value, "t%d", i);
  push_ok("tenant", value);
  tenant_site(blocks[i], 100 + i);
  pop_ok();
  after_pop_site();
  return NULL;
}

static void *other_thread(void *arg) {
  (void)arg;
  push_ok("tenant", "other");
  for (int i = 0; i < TENANTS; i++)
    for (int j = 0; j < FREED; j++)
      free(blocks[i][j]);
  pop_ok();
  return NULL;
}

/* realloc: a block is a new sample of the thread that reallocates it,
 * however it is reallocated: the allocator's realloc of the raw block
 * keeping its address (a shrink) or moving it (a growth to an mmap'd
 * size), or heapprof moving it itself (a block aligned beyond heapprof's
 * header has its header elsewhere: a new sampled block, a copy, a free). */
#define REALLOCS 3
static void *realloc_from[REALLOCS], *realloc_to[REALLOCS];
static const char *const realloc_what[REALLOCS] = {
    "malloc 4000 B -> 2000 B", "malloc 1000 B -> 1 MiB",
    "posix_memalign(64) 3000 B -> 6000 B"};
#define REALLOC_FROM_BYTES (4000 + 1000 + 3000)
#define REALLOC_TO_BYTES (2000 + (1 << 20) + 6000)

NOINLINE void realloc_origin(void) {
  realloc_from[0] = malloc(4000);
  realloc_from[1] = malloc(1000);
  CHECK(posix_memalign(&realloc_from[2], 64, 3000) == 0, "posix_memalign");
}

NOINLINE void realloc_site(void) {
  realloc_to[0] = realloc(realloc_from[0], 2000);
  realloc_to[1] = realloc(realloc_from[1], 1 << 20);
  realloc_to[2] = realloc(realloc_from[2], 6000);
}

static void *realloc_owner(void *arg) {
  (void)arg;
  push_ok("tenant", "ra");
  realloc_origin();
  pop_ok();
  return NULL;
}

static void *realloc_mover(void *arg) {
  (void)arg;
  push_ok("tenant", "rb");
  realloc_site();
  pop_ok();
  return NULL;
}

static void run_thread(void *(*fn)(void *), void *arg) {
  pthread_t t;
  CHECK(pthread_create(&t, NULL, fn, arg) == 0, "pthread_create");
  CHECK(pthread_join(t, NULL) == 0, "pthread_join");
}

static int mode_exact(void) {
  pthread_t t[TENANTS];
  for (int i = 0; i < TENANTS; i++)
    CHECK(pthread_create(&t[i], NULL, tenant_thread, (void *)(intptr_t)i) == 0,
          "pthread_create");
  for (int i = 0; i < TENANTS; i++)
    pthread_join(t[i], NULL);
  run_thread(other_thread, NULL);
  void *control[7];
  control_site(control, 7);
  run_thread(realloc_owner, NULL);
  uintptr_t from[REALLOCS];
  for (int i = 0; i < REALLOCS; i++)
    from[i] = (uintptr_t)realloc_from[i];
  run_thread(realloc_mover, NULL);
  for (int i = 0; i < REALLOCS; i++)
    printf("realloc %s on another thread: %s\n", realloc_what[i],
           (uintptr_t)realloc_to[i] == from[i] ? "in place" : "moved");

  tl_profile_t p;
  snapshot("exact", &p);
  printf("per tenant at tenant_site (alloc objects/bytes, in-use "
         "objects/bytes):\n");
  for (int i = 0; i < TENANTS; i++) {
    char value[16];
    snprintf(value, sizeof value, "t%d", i);
    int64_t n = 100 + i, live = n - FREED;
    expect_site(&p, "tenant_site", "tenant", value, n, n * BLOCK, live,
                live * BLOCK);
    /* …and nowhere else: the thread's pop took effect. */
    expect_site(&p, NULL, "tenant", value, n, n * BLOCK, live, live * BLOCK);
  }
  for (size_t i = 0; i < p.nsamples; i++)
    CHECK(p.samples[i].nlocs == 0 ||
              strcmp(p.samples[i].funcs[0], "tenant_site") != 0 ||
              p.samples[i].nlabels == 1,
          "a sample at tenant_site has %zu labels, want only its tenant",
          p.samples[i].nlabels);
  int64_t v[4];
  CHECK(tl_site_label(&p, NULL, "tenant", "other", v) == 0,
        "the freeing thread's label has samples (alloc %lld, inuse %lld): "
        "frees were charged to the thread that freed",
        (long long)v[1], (long long)v[3]);
  expect_site(&p, "after_pop_site", "tenant", NULL, TENANTS, TENANTS * BLOCK,
              TENANTS, TENANTS * BLOCK);
  expect_site_labels(&p, "after_pop_site", "");
  expect_site(&p, "control_site", "tenant", NULL, 7, 7 * BLOCK, 7, 7 * BLOCK);
  expect_site_labels(&p, "control_site", "");
  /* The old blocks are freed in their owner's set; both new ones belong
   * to the thread that reallocated, whether the block moved or not. */
  expect_site(&p, "realloc_origin", "tenant", "ra", REALLOCS,
              REALLOC_FROM_BYTES, 0, 0);
  expect_site(&p, "realloc_site", "tenant", "rb", REALLOCS, REALLOC_TO_BYTES,
              REALLOCS, REALLOC_TO_BYTES);
  expect_site(&p, "realloc_site", "tenant", NULL, 0, 0, 0, 0);
  tl_free_profile(&p);
  for (int i = 0; i < TENANTS; i++)
    for (int j = FREED; j < 100 + i; j++)
      free(blocks[i][j]);
  printf("ok: per-tenant counts exact with cross-thread frees\n");
  return 0;
}

/* ---- unbiased: the default rate ---- */

/*
 * Two tenants on two threads at once, known amounts, part of each freed by
 * the unlabelled main thread:
 *   big    16384 blocks of 4 KiB (64 MiB), a quarter freed: 48 MiB in use
 *   small  32768 blocks of 1 KiB (32 MiB), half freed:      16 MiB in use
 * At the default rate R = 512 KiB a block of S bytes is sampled with
 * p = 1 - e^(-S/R) (4 KiB: 0.00778; 1 KiB: 0.00195), independently of the
 * others, and stands for S/p bytes; k ~ Binomial(N, p) samples of N blocks
 * give sd(estimate) = (S/p)·sqrt(N·p·(1-p)): expected counts 127.5 and 95.6
 * (big's alloc, in-use), 63.9 and 32.0 (small's), 8.8% to 17.7% of the
 * truth. Each run's four estimates (alloc_space, inuse_space per tenant),
 * and their means over the 5 runs (sd / sqrt(5)), must lie within 6 sd.
 * The exact binomial tails beyond 6 sd are 1.3e-8 to 9.0e-8 per check
 * (the small tenant's in-use the widest): under 1e-6 for the 24 checks
 * together (union bound). The seeds are fixed, but each thread's stream
 * is numbered by the order in which threads first allocate, which the
 * scheduler picks: runs differ, each with that false-failure rate. A
 * third of labelled samples lost is 7.8 sd off in the means.
 */
#define BIG_N 16384
#define BIG_S 4096
#define SMALL_N 32768
#define SMALL_S 1024
#define SEEDS 5
#define SIGMAS 6

static void *big_blocks[BIG_N], *small_blocks[SMALL_N];
static pthread_barrier_t pushed;

NOINLINE void big_site(void) {
  for (int i = 0; i < BIG_N; i++)
    big_blocks[i] = malloc(BIG_S);
}

NOINLINE void small_site(void) {
  for (int i = 0; i < SMALL_N; i++)
    small_blocks[i] = malloc(SMALL_S);
}

/* Both threads push before either allocates: labels that were one
 * process-wide value instead of each thread's would put every block in
 * the last pusher's set. */
static void *big_thread(void *arg) {
  (void)arg;
  push_ok("tenant", "big");
  pthread_barrier_wait(&pushed);
  big_site();
  return NULL;
}

static void *small_thread(void *arg) {
  (void)arg;
  push_ok("tenant", "small");
  pthread_barrier_wait(&pushed);
  small_site();
  return NULL;
}

static int mode_unbiased_child(const char *path) {
  pthread_barrier_init(&pushed, NULL, 2);
  pthread_t a, b;
  CHECK(pthread_create(&a, NULL, big_thread, NULL) == 0 &&
            pthread_create(&b, NULL, small_thread, NULL) == 0,
        "pthread_create");
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  for (int i = 0; i < BIG_N / 4; i++)
    free(big_blocks[i]);
  for (int i = 0; i < SMALL_N / 2; i++)
    free(small_blocks[i]);
  int rc = heapprof_write_profile(path, HEAPPROF_HEAP);
  CHECK(rc == 0, "writing %s: %d", path, rc);
  return 0;
}

typedef struct truth {
  const char *tenant, *site;
  int64_t size, n, live;
} truth_t;

static void within(const char *what, double est, double truth, double sd) {
  double dev = fabs(est - truth);
  printf("  %-32s estimate %11.0f  truth %11.0f  off %6.2f%%  %5.2f sd\n", what,
         est, truth, 100.0 * (est - truth) / truth, dev / sd);
  CHECK(dev <= SIGMAS * sd, "%s: estimate %.0f vs truth %.0f is %.1f sd off",
        what, est, truth, dev / sd);
}

static int mode_unbiased(char *self) {
  const truth_t t[2] = {
      {"big", "big_site", BIG_S, BIG_N, BIG_N - BIG_N / 4},
      {"small", "small_site", SMALL_S, SMALL_N, SMALL_N - SMALL_N / 2}};
  double sum[2][2] = {{0}};
  double p[2], sd[2][2];
  for (int seed = 1; seed <= SEEDS; seed++) {
    char path[600];
    snprintf(path, sizeof path, "%s/unbiased.%d.pb.gz", tl_tmpdir(), seed);
    char *argv[] = {self, "unbiased-child", path, NULL};
    char *out, *err;
    int rc = tl_run_env(argv, env_with_seed((unsigned)seed), &out, &err);
    CHECK(rc == 0, "the child with HEAPPROF_SEED=%d exited %d:\n%s%s", seed,
          rc, out, err);
    tl_profile_t prof;
    tl_read_profile(path, &prof);
    CHECK(prof.period == 524288, "period %lld, want the default 524288",
          (long long)prof.period);
    printf("HEAPPROF_SEED=%d\n", seed);
    for (int i = 0; i < 2; i++) {
      p[i] = 1.0 - exp(-(double)t[i].size / (double)prof.period);
      int64_t v[4];
      tl_site_label(&prof, NULL, "tenant", t[i].tenant, v);
      /* Both sets only where their thread allocated, whatever the seed. */
      int64_t w[4];
      CHECK(tl_site_label(&prof, t[i].site, "tenant", t[i].tenant, w) ==
                    tl_site_label(&prof, NULL, "tenant", t[i].tenant, v) &&
                tl_site_label(&prof, t[i].site, "tenant", NULL, w) == 0,
            "%s's blocks are not all under tenant=%s:\n%s", t[i].site,
            t[i].tenant, prof.raw);
      for (int k = 0; k < 2; k++) {
        int64_t n = k == 0 ? t[i].n : t[i].live;
        sd[i][k] = (double)t[i].size / p[i] *
                   sqrt((double)n * p[i] * (1 - p[i]));
        char what[64];
        snprintf(what, sizeof what, "tenant=%s %s", t[i].tenant,
                 k == 0 ? "alloc_space" : "inuse_space");
        within(what, (double)v[k == 0 ? 1 : 3], (double)(n * t[i].size),
               sd[i][k]);
        sum[i][k] += (double)v[k == 0 ? 1 : 3];
      }
    }
    tl_free_profile(&prof);
    free(out);
    free(err);
  }
  printf("the mean of %d runs\n", SEEDS);
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < 2; k++) {
      char what[64];
      snprintf(what, sizeof what, "tenant=%s %s", t[i].tenant,
               k == 0 ? "alloc_space" : "inuse_space");
      within(what, sum[i][k] / SEEDS,
             (double)((k == 0 ? t[i].n : t[i].live) * t[i].size),
             sd[i][k] / sqrt(SEEDS));
    }
  printf("ok: each tenant's estimate within %d sd over %d seeds\n", SIGMAS,
         SEEDS);
  return 0;
}

/* ---- nested: push, replace, pop, get, list ---- */

/* A push whose strings the caller overwrites and frees at once. */
static void push_transient(const char *key, const char *value) {
  char *k = strdup(key), *v = strdup(value);
  int rc = heapprof_label_push(k, v);
  memset(k, '#', strlen(k));
  memset(v, '#', strlen(v));
  free(k);
  free(v);
  CHECK(rc == 0, "push %s=%s: %d (%s)", key, value, rc, heapprof_strerror(rc));
}

static void expect_get(const char *key, const char *want) {
  const char *v = (const char *)0x1;
  int rc = heapprof_label_get(key, &v);
  if (want == NULL) {
    CHECK(rc == HEAPPROF_ENOENT, "get %s: %d, want HEAPPROF_ENOENT", key, rc);
    CHECK(v == (const char *)0x1, "get %s wrote *value on ENOENT", key);
  } else {
    CHECK(rc == 0 && strcmp(v, want) == 0, "get %s: %d %s, want %s", key, rc,
          rc == 0 ? v : "", want);
  }
}

NOINLINE void nested_ab(void) { sink = malloc(111); }
NOINLINE void nested_replaced(void) { sink = malloc(222); }
NOINLINE void nested_popped(void) { sink = malloc(333); }
NOINLINE void nested_none(void) { sink = malloc(444); }

static int mode_nested(void) {
  expect_labels("", "at start");
  expect_get("a", NULL);
  CHECK(heapprof_label_pop() == HEAPPROF_ENOENT, "pop with nothing pushed");
  CHECK(heapprof_label_list(NULL, 0) == 0, "list(NULL, 0) with no labels");
  CHECK(heapprof_label_save() == 0, "save with no labels is not 0");

  push_transient("b", "2");
  push_transient("a", "1");
  expect_labels("a=1,b=2", "after b=2, a=1");
  expect_get("a", "1");
  expect_get("b", "2");
  expect_get("c", NULL);
  const char *kept;
  CHECK(heapprof_label_get("a", &kept) == 0, "get a");
  nested_ab();

  push_transient("a", "3"); /* replaces a until the pop */
  expect_labels("a=3,b=2", "after a=3");
  expect_get("a", "3");
  nested_replaced();

  /* list: the count of all, and only `cap` entries written. */
  heapprof_label_t l[3];
  memset(l, 0, sizeof l);
  l[1].key = "untouched";
  CHECK(heapprof_label_list(l, 1) == 2, "list(cap 1) must count both labels");
  CHECK(strcmp(l[0].key, "a") == 0 && strcmp(l[0].value, "3") == 0,
        "list(cap 1): first %s=%s, want a=3", l[0].key, l[0].value);
  CHECK(l[1].key != NULL && strcmp(l[1].key, "untouched") == 0,
        "list(cap 1) wrote past its cap");
  CHECK(heapprof_label_list(NULL, 0) == 2, "list(NULL, 0) must count");
  CHECK(heapprof_label_list(NULL, 1) == HEAPPROF_EINVAL,
        "list(NULL, 1) must be HEAPPROF_EINVAL");
  CHECK(heapprof_label_get(NULL, &kept) == HEAPPROF_EINVAL &&
            heapprof_label_get("a", NULL) == HEAPPROF_EINVAL,
        "get with NULL arguments must be HEAPPROF_EINVAL");

  pop_ok();
  expect_labels("a=1,b=2", "after popping a=3");
  nested_popped();
  CHECK(strcmp(kept, "1") == 0, "a value from get changed after pops: %s",
        kept);

  pop_ok();
  expect_labels("b=2", "after popping a=1");
  pop_ok();
  expect_labels("", "after popping b=2");
  CHECK(heapprof_label_pop() == HEAPPROF_ENOENT,
        "pop with nothing left must be HEAPPROF_ENOENT");
  expect_labels("", "after a pop that failed");
  nested_none();

  /* Pushing the same pairs in the other order reaches the same set. */
  push_transient("a", "1");
  push_transient("b", "2");
  expect_labels("a=1,b=2", "after a=1, b=2");
  pop_ok();
  pop_ok();

  /* The profile: each allocation under the labels of its moment. */
  tl_profile_t p;
  snapshot("nested", &p);
  expect_site_labels(&p, "nested_ab", "a=1,b=2");
  expect_site_labels(&p, "nested_replaced", "a=3,b=2");
  expect_site_labels(&p, "nested_popped", "a=1,b=2");
  expect_site_labels(&p, "nested_none", "");
  tl_free_profile(&p);
  printf("ok: nested push, replace, pop, get and list\n");
  return 0;
}

/* ---- outlive: labels of a thread that is gone ---- */

#define BATCH_N 50
#define BATCH_S 2000
#define BATCH_FREED 20

static void *batch_blocks[BATCH_N];
static heapprof_label_token_t batch_token;

NOINLINE void batch_site(void) {
  for (int i = 0; i < BATCH_N; i++)
    batch_blocks[i] = malloc(BATCH_S);
}

NOINLINE void fresh_thread_site(void) { sink = malloc(1234); }
NOINLINE void restored_site(void) {
  for (int i = 0; i < 5; i++)
    sink = malloc(3000);
}
NOINLINE void cleared_site(void) { sink = malloc(4321); }

/* Pushes job=batch, allocates, saves its labels and exits without a pop. */
static void *batch_thread(void *arg) {
  (void)arg;
  push_ok("job", "batch");
  batch_site();
  batch_token = heapprof_label_save();
  return NULL;
}

static char fresh_labels[256];
static int fresh_get_rc;

static void *fresh_thread(void *arg) {
  (void)arg;
  snprintf(fresh_labels, sizeof fresh_labels, "%s", labels_now());
  const char *v;
  fresh_get_rc = heapprof_label_get("job", &v);
  fresh_thread_site();
  return NULL;
}

static int mode_outlive(void) {
  run_thread(batch_thread, NULL);
  CHECK(batch_token != 0, "save on a labelled thread gave 0");
  expect_labels("", "main, after the labelled thread exited");
  for (int i = 0; i < BATCH_FREED; i++)
    free(batch_blocks[i]);

  /* A new thread (glibc may give it the dead one's stack and TLS). */
  run_thread(fresh_thread, NULL);
  CHECK(fresh_labels[0] == '\0' && fresh_get_rc == HEAPPROF_ENOENT,
        "a new thread started with labels {%s} (get job: %d)", fresh_labels,
        fresh_get_rc);

  /* restore with a bogus token changes nothing. */
  push_ok("x", "1");
  heapprof_label_token_t before = heapprof_label_save(), prev = 777;
  const heapprof_label_token_t bogus[] = {HEAPPROF_LABEL_PATHS_MAX,
                                          HEAPPROF_LABEL_PATHS_MAX + 1,
                                          batch_token + 1000, UINT32_MAX};
  for (size_t i = 0; i < sizeof bogus / sizeof *bogus; i++) {
    int rc = heapprof_label_restore(bogus[i], &prev);
    CHECK(rc == HEAPPROF_EINVAL, "restore(%u): %d, want HEAPPROF_EINVAL",
          (unsigned)bogus[i], rc);
    CHECK(prev == 777, "restore(%u) failed but wrote *prev",
          (unsigned)bogus[i]);
    expect_labels("x=1", "after restoring a bogus token");
    CHECK(heapprof_label_save() == before, "a failed restore moved the labels");
  }

  /* The dead thread's token on main: main's allocations are job=batch. */
  int rc = heapprof_label_restore(batch_token, &prev);
  CHECK(rc == 0, "restore(the dead thread's token): %d", rc);
  CHECK(prev == before, "restore's *prev %u, want the labels it replaced %u",
        (unsigned)prev, (unsigned)before);
  expect_labels("job=batch", "after restoring the dead thread's token");
  restored_site();
  CHECK(heapprof_label_restore(prev, NULL) == 0, "restore(prev)");
  expect_labels("x=1", "after restoring prev");

  /* restore(0) clears; pops then go back through nothing. */
  CHECK(heapprof_label_restore(0, NULL) == 0, "restore(0)");
  expect_labels("", "after restore(0)");
  CHECK(heapprof_label_pop() == HEAPPROF_ENOENT, "pop after restore(0)");
  cleared_site();

  /* After a restore, pops go through the saving thread's pushes. */
  CHECK(heapprof_label_restore(batch_token, NULL) == 0, "restore again");
  pop_ok();
  expect_labels("", "after popping the restored job=batch");
  CHECK(heapprof_label_pop() == HEAPPROF_ENOENT, "a second pop");

  tl_profile_t p;
  snapshot("outlive", &p);
  expect_site(&p, "batch_site", "job", "batch", BATCH_N, BATCH_N * BATCH_S,
              BATCH_N - BATCH_FREED, (BATCH_N - BATCH_FREED) * BATCH_S);
  expect_site(&p, "batch_site", "job", NULL, 0, 0, 0, 0);
  expect_site_labels(&p, "fresh_thread_site", "");
  expect_site(&p, "restored_site", "job", "batch", 5, 5 * 3000, 5, 5 * 3000);
  expect_site_labels(&p, "restored_site", "job=batch");
  expect_site_labels(&p, "cleared_site", "");
  tl_free_profile(&p);
  printf("ok: labels outlive their thread; tokens carry them\n");
  return 0;
}

/* ---- limits ---- */

/* A push that must fail with `want` and leave the labels as they were. */
static void push_fails(const char *key, const char *value, int want,
                       const char *why) {
  char before[4096];
  snprintf(before, sizeof before, "%s", labels_now());
  heapprof_label_token_t token = heapprof_label_save();
  int rc = heapprof_label_push(key, value);
  CHECK(rc == want, "push (%s): %d (%s), want %d (%s)", why, rc,
        heapprof_strerror(rc), want, heapprof_strerror(want));
  CHECK(heapprof_label_save() == token, "push (%s) failed but moved the labels",
        why);
  expect_labels(before, why);
}

static int mode_limits(void) {
  char key63[64], key64[65], value255[256], value256[257];
  memset(key63, 'k', 63), key63[63] = '\0';
  memset(key64, 'k', 64), key64[64] = '\0';
  memset(value255, 'v', 255), value255[255] = '\0';
  memset(value256, 'v', 256), value256[256] = '\0';

  push_ok("base", "1");
  const struct { const char *key, *value, *why; } bad[] = {
      {NULL, "v", "key NULL"},
      {"k", NULL, "value NULL"},
      {"", "v", "empty key"},
      {key64, "v", "64-byte key"},
      {"a-b", "v", "key with '-'"},
      {"a.b", "v", "key with '.'"},
      {"1a", "v", "key starting with a digit"},
      {"bytes", "v", "key 'bytes'"},
      {"__x", "v", "key starting with '__'"},
      {"k", "", "empty value"},
      {"k", value256, "256-byte value"},
      {"k", "a\nb", "value with a newline"},
      {"k", "a\tb", "value with a tab"},
      {"k", "a\x7f", "value with DEL"},
      {"k", "\xc2\x85", "value with a C1 control (U+0085)"},
      {"k", "\xff", "value with a byte that is never UTF-8"},
      {"k", "\xc0\x80", "value with an overlong NUL"},
      {"k", "\xed\xa0\x80", "value with a surrogate"},
      {"k", "\xe6\x97", "value with a cut sequence"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    push_fails(bad[i].key, bad[i].value, HEAPPROF_EINVAL, bad[i].why);
  /* The edges that are allowed. */
  const struct { const char *key, *value; } good[] = {
      {key63, "v"}, {"k", value255}, {"_x", "v"}, {"bytes2", "v"},
      {"k", "caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80"}, {"K_9", "a b ]["}};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    push_ok(good[i].key, good[i].value);
    pop_ok();
  }
  expect_labels("base=1", "after the allowed edges");

  /* 16 labels in force; a 17th key fails; replacing one of the 16 works. */
  char key[16];
  for (int i = 1; i < HEAPPROF_LABELS_MAX; i++) {
    snprintf(key, sizeof key, "k%02d", i);
    push_ok(key, "v");
  }
  CHECK(heapprof_label_list(NULL, 0) == HEAPPROF_LABELS_MAX, "16 labels");
  push_fails("k99", "v", HEAPPROF_ELIMIT, "a 17th label");
  push_ok("k01", "replaced");
  pop_ok();
  for (int i = 1; i < HEAPPROF_LABELS_MAX; i++)
    pop_ok();
  expect_labels("base=1", "after popping the 16");

  /* 64 pushes outstanding; a 65th fails. */
  char value[16];
  for (int i = 2; i <= HEAPPROF_LABEL_DEPTH_MAX; i++) {
    snprintf(value, sizeof value, "d%d", i);
    push_ok("depth", value);
  }
  push_fails("depth", "d65", HEAPPROF_ELIMIT, "a 65th push");
  push_fails("depth", "d64", HEAPPROF_ELIMIT,
             "a 65th push of the value in force");
  expect_get("depth", "d64");
  for (int i = 2; i <= HEAPPROF_LABEL_DEPTH_MAX; i++)
    pop_ok();
  expect_labels("base=1", "after popping the 63");
  pop_ok();
  CHECK(heapprof_label_pop() == HEAPPROF_ENOENT, "pop past the bottom");

  /* The texts. */
  const char *unknown = heapprof_strerror(-1000);
  for (int err = HEAPPROF_ELIMIT; err >= HEAPPROF_ENOENT; err--) {
    const char *s = heapprof_strerror(err);
    printf("heapprof_strerror(%d) = \"%s\"\n", err, s);
    CHECK(s != NULL && s[0] != '\0' && strcmp(s, unknown) != 0,
          "heapprof_strerror(%d) says only \"%s\"", err, s ? s : "(null)");
  }
  CHECK(strcmp(heapprof_strerror(HEAPPROF_ELIMIT),
               heapprof_strerror(HEAPPROF_ENOENT)) != 0,
        "ELIMIT and ENOENT share a text");

  /* push and pop never malloc: the program's malloc count stays. */
  heapprof_stats_t s0, s1, s2;
  CHECK(heapprof_read_stats(&s0) == 0 && heapprof_read_stats(&s1) == 0,
        "heapprof_read_stats");
  CHECK(s1.mallocs == s0.mallocs, "heapprof_read_stats itself allocated");
  for (int i = 0; i < 1000; i++) {
    snprintf(value, sizeof value, "m%d", i % 500); /* new, then seen */
    if (heapprof_label_push("m", value) != 0 ||
        heapprof_label_push("n", value) != 0 ||
        heapprof_label_pop() != 0 || heapprof_label_pop() != 0)
      break;
  }
  CHECK(heapprof_read_stats(&s2) == 0, "heapprof_read_stats");
  expect_labels("", "after the push/pop loop");
  printf("mallocs before %llu, after 2000 pushes and pops %llu\n",
         (unsigned long long)s1.mallocs, (unsigned long long)s2.mallocs);
  CHECK(s2.mallocs == s1.mallocs, "push/pop called malloc %llu times",
        (unsigned long long)(s2.mallocs - s1.mallocs));
  printf("ok: each limit gives its error, changing nothing\n");
  return 0;
}

/* ---- sets: the distinct-set cap and a label of unbounded values ---- */

/* Resident bytes of this process. */
static long rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, resident = 0;
  CHECK(f != NULL && fscanf(f, "%ld %ld", &size, &resident) == 2,
        "reading /proc/self/statm");
  fclose(f);
  return resident * sysconf(_SC_PAGESIZE);
}

/* Values of ~200 bytes: 100,000 of them kept would be 20 MB. */
static const char *long_value(char *buf, size_t len, long i) {
  snprintf(buf, len, "%0190ld", i);
  return buf;
}

#define RSS_BOUND (8L << 20) /* the caps allow ~3.5 MiB: 1 MiB of strings,
                                4096 sets and nodes, their pools */

static int mode_sets(void) {
  long rss0 = rss_bytes();
  push_ok("base", "1"); /* the first set */
  char v[256];
  long i = 0;
  int rc = 0;
  for (; i < 2 * HEAPPROF_LABEL_SETS_MAX; i++) {
    rc = heapprof_label_push("s", long_value(v, sizeof v, i));
    if (rc != 0)
      break;
    pop_ok();
  }
  printf("distinct sets made before the first failure: %ld (+1 base)\n", i);
  CHECK(rc == HEAPPROF_ELIMIT, "push of set %ld: %d, want HEAPPROF_ELIMIT",
        i + 2, rc);
  CHECK(i + 1 == HEAPPROF_LABEL_SETS_MAX,
        "the set cap hit at set %ld, want at %d", i + 2,
        HEAPPROF_LABEL_SETS_MAX + 1);
  expect_labels("base=1", "after the set cap");
  push_ok("s", long_value(v, sizeof v, 0)); /* an existing set still works */
  pop_ok();

  /* 100,000 values never seen: each refused, nothing kept. */
  long rss1 = rss_bytes(), worked = 0, other = 0;
  for (long j = 0; j < 100000; j++) {
    rc = heapprof_label_push("s", long_value(v, sizeof v, 1000000 + j));
    if (rc == 0) {
      worked++;
      pop_ok();
    } else if (rc != HEAPPROF_ELIMIT) {
      other++;
    }
  }
  long rss2 = rss_bytes();
  printf("100000 new values after the cap: %ld worked, %ld other errors; "
         "RSS %+.2f MiB since start (%+.2f MiB in the loop)\n",
         worked, other, (double)(rss2 - rss0) / (1 << 20),
         (double)(rss2 - rss1) / (1 << 20));
  CHECK(worked == 0 && other == 0,
        "after the cap: %ld pushes worked and %ld failed otherwise", worked,
        other);
  CHECK(rss2 - rss0 < RSS_BOUND, "RSS grew %.1f MiB, bound %.0f MiB",
        (double)(rss2 - rss0) / (1 << 20), (double)RSS_BOUND / (1 << 20));
  expect_labels("base=1", "after 100000 refused pushes");
  pop_ok();
  printf("ok: ELIMIT at set %d, memory bounded\n", HEAPPROF_LABEL_SETS_MAX + 1);
  return 0;
}

/* ---- refused: a push refused at a limit spends nothing ---- */

/*
 * A push refused with HEAPPROF_ELIMIT changes nothing (heapprof.h), the
 * process's label budgets included: a thread that keeps trying a 17th
 * label with new values (6000 of 200 bytes: more than the 1 MiB of label
 * strings) must leave room for the sets that other code makes later,
 * with only ~20 of the 4096 sets made.
 */
static int mode_refused(void) {
  char key[16], value[256];
  for (int i = 0; i < HEAPPROF_LABELS_MAX; i++) {
    snprintf(key, sizeof key, "k%02d", i);
    push_ok(key, "v");
  }
  int refused = 0;
  for (int i = 0; i < 6000; i++) {
    snprintf(value, sizeof value, "%0200d", i);
    refused += heapprof_label_push("k99", value) == HEAPPROF_ELIMIT;
  }
  CHECK(refused == 6000, "only %d of 6000 17th labels refused", refused);
  for (int i = 0; i < HEAPPROF_LABELS_MAX; i++)
    pop_ok();
  int made = 0, rc = 0;
  for (; made < 100; made++) {
    snprintf(value, sizeof value, "later-%d", made);
    if ((rc = heapprof_label_push("later", value)) != 0)
      break;
    pop_ok();
  }
  printf("after 6000 refused 17th labels: %d of 100 new sets made\n", made);
  CHECK(made == 100,
        "push of new set %d after 6000 refused pushes: %d (%s): the refused "
        "pushes spent the label budget",
        made + 1, rc, heapprof_strerror(rc));
  printf("ok: refused pushes spend no budget\n");
  return 0;
}

/* ---- fork ---- */

#define FORKS 200

NOINLINE void child_site(void) {
  for (int i = 0; i < 10; i++)
    sink = malloc(3000);
}

NOINLINE void child_popped_site(void) { sink = malloc(3100); }

/* A forked child's hang detector: SIGALRM's default action ends it, which
 * its parent reports as a hang. */
static void child_deadline(void) {
  signal(SIGALRM, SIG_DFL);
  alarm(20);
}

/* The child's checks; its exit status names the one that failed. */
static int forked_child(const char *path) {
  child_deadline();
  const char *v;
  if (heapprof_label_get("tenant", &v) != 0 || strcmp(v, "p") != 0)
    return 3;
  child_site();
  if (heapprof_label_pop() != 0)
    return 4;
  if (heapprof_label_pop() != HEAPPROF_ENOENT)
    return 5;
  child_popped_site();
  if (heapprof_label_push("child", "new") != 0) /* the lock works here */
    return 6;
  heapprof_label_pop();
  return heapprof_write_profile(path, HEAPPROF_HEAP) == 0 ? 0 : 7;
}

static atomic_int stop_churn;
static atomic_long churn_pushes;

/* New values without end: every push misses and takes the label lock
 * (also once the caps are reached: the miss is settled under it). */
static void *churn_thread(void *arg) {
  (void)arg;
  char value[32];
  for (long i = 0; !atomic_load(&stop_churn); i++) {
    snprintf(value, sizeof value, "c%ld", i);
    if (heapprof_label_push("churn", value) == 0)
      heapprof_label_pop();
    atomic_fetch_add(&churn_pushes, 1);
  }
  return NULL;
}

static const char *describe(int status) {
  static char buf[64];
  if (WIFEXITED(status))
    snprintf(buf, sizeof buf, "exit %d", WEXITSTATUS(status));
  else
    snprintf(buf, sizeof buf, "signal %d%s", WTERMSIG(status),
             WTERMSIG(status) == SIGALRM ? " (its 20 s alarm: hung)" : "");
  return buf;
}

static int mode_fork(void) {
  deadline(240);
  char path[600];
  snprintf(path, sizeof path, "%s/child.pb.gz", tl_tmpdir());
  stage = "the first fork";
  push_ok("tenant", "p");
  fflush(NULL);
  pid_t pid = fork();
  CHECK(pid >= 0, "fork");
  if (pid == 0)
    _exit(forked_child(path));
  int status;
  CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "child: %s (3: no tenant=p, 4: pop failed, 5: second pop not "
        "ENOENT, 6: new push failed, 7: no profile)", describe(status));
  expect_labels("tenant=p", "the parent after the fork");
  pop_ok();
  tl_profile_t p;
  tl_read_profile(path, &p);
  expect_site(&p, "child_site", "tenant", "p", 10, 30000, 10, 30000);
  expect_site(&p, "child_site", "tenant", NULL, 0, 0, 0, 0);
  expect_site_labels(&p, "child_popped_site", "");
  tl_free_profile(&p);

  /* Forks while another thread keeps taking the label lock. */
  pthread_t t;
  CHECK(pthread_create(&t, NULL, churn_thread, NULL) == 0, "pthread_create");
  while (atomic_load(&churn_pushes) < 1000)
    sched_yield();
  int limited = 0;
  for (int f = 0; f < FORKS; f++) {
    stage = "fork while a thread pushes new labels";
    fflush(NULL);
    pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
      child_deadline();
      char value[32];
      snprintf(value, sizeof value, "f%d", f);
      int rc = heapprof_label_push("forked", value); /* a miss: the lock */
      _exit(rc == 0 ? 0 : rc == HEAPPROF_ELIMIT ? 10 : 11);
    }
    stage = "waiting for a child that pushes a new label";
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
    CHECK(WIFEXITED(status) &&
              (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 10),
          "child %d: %s (exit 11: a push neither 0 nor ELIMIT; SIGALRM: "
          "it hung)", f, describe(status));
    limited += WEXITSTATUS(status) == 10;
  }
  atomic_store(&stop_churn, 1);
  pthread_join(t, NULL);
  printf("%d forks during %ld pushes of new values; %d children's pushes "
         "met a cap (HEAPPROF_ELIMIT), the rest worked\n",
         FORKS, atomic_load(&churn_pushes), limited);
  printf("ok: the child keeps its labels; no child deadlocks\n");
  return 0;
}

/* ---- ebusy: a push from inside heapprof's fork ---- */

/*
 * Prepare handlers run in the reverse order of registration. heapprof
 * registers its own in its constructor, which the loader runs before the
 * program's constructors and main whether heapprof is linked or preloaded;
 * its prepare handler takes the label lock (and marks the thread busy)
 * until fork returns. A handler registered from the executable's
 * .preinit_array — which runs before every library's constructor — is
 * registered before heapprof's, so its prepare runs after heapprof's,
 * inside it: a push of a new pair there would wait for the lock its own
 * thread holds, and must say HEAPPROF_EBUSY instead; a pair seen before
 * needs no lock and works. A handler registered in main runs before
 * heapprof's, where a new pair works.
 */
static int ebusy_armed;
static long rate_at_preinit = -1;
static char order[64];
static int early_new, early_errno, early_seen, early_pop, early_get;
static int late_new, late_pop;

static void early_prepare(void) {
  if (!ebusy_armed)
    return;
  strcat(order, "early ");
  const char *v;
  errno = 4242;
  early_new = heapprof_label_push("early", "new");
  early_errno = errno;
  early_get = heapprof_label_get("early", &v);
  early_seen = heapprof_label_push("phase", "seen");
  early_pop = heapprof_label_pop();
}

static void late_prepare(void) {
  if (!ebusy_armed)
    return;
  strcat(order, "late ");
  late_new = heapprof_label_push("late", "new");
  late_pop = heapprof_label_pop();
}

static void register_early(int argc, char **argv, char **envp) {
  (void)argc, (void)argv, (void)envp;
  if (heapprof_get_rate != NULL)
    rate_at_preinit = heapprof_get_rate();
  pthread_atfork(early_prepare, NULL, NULL);
}

__attribute__((section(".preinit_array"), used)) static void (*preinit)(
    int, char **, char **) = register_early;

static int mode_ebusy(void) {
  deadline(30);
  long rate = heapprof_get_rate();
  printf("rate when .preinit_array ran: %ld; in main: %ld\n", rate_at_preinit,
         rate);
  CHECK(rate_at_preinit == 0 && rate > 0,
        "heapprof's constructor had run before .preinit_array (rate %ld "
        "there, %ld in main): the handler is not registered before heapprof's",
        rate_at_preinit, rate);
  CHECK(pthread_atfork(late_prepare, NULL, NULL) == 0, "pthread_atfork");
  push_ok("phase", "seen"); /* now a pair seen before */
  pop_ok();
  ebusy_armed = 1;
  stage = "fork, whose prepare handler pushes under heapprof's label lock";
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    child_deadline();
    int rc = heapprof_label_push("child", "new");
    _exit(rc == 0 ? 0 : 3);
  }
  ebusy_armed = 0;
  CHECK(pid > 0, "fork");
  int status;
  CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
            WEXITSTATUS(status) == 0,
        "the child's push of a new pair failed or hung: %s",
        describe(status));
  printf("prepare handlers ran: %s(heapprof's between them)\n", order);
  printf("late (before heapprof's): new pair %d, pop %d\n", late_new, late_pop);
  printf("early (after heapprof's): new pair %d (%s), seen pair %d, pop %d\n",
         early_new, heapprof_strerror(early_new), early_seen, early_pop);
  CHECK(strcmp(order, "late early ") == 0, "handler order: %s", order);
  CHECK(late_new == 0 && late_pop == 0,
        "a new pair before heapprof's prepare: push %d pop %d", late_new,
        late_pop);
  CHECK(early_new == HEAPPROF_EBUSY,
        "a new pair inside heapprof's prepare: %d, want HEAPPROF_EBUSY",
        early_new);
  CHECK(early_errno == 4242, "the EBUSY push changed errno to %d",
        early_errno);
  CHECK(early_get == HEAPPROF_ENOENT, "the EBUSY push left its label");
  CHECK(early_seen == 0 && early_pop == 0,
        "a seen pair inside heapprof's prepare: push %d pop %d", early_seen,
        early_pop);
  expect_labels("", "after the fork");
  printf("ok: HEAPPROF_EBUSY instead of a deadlock\n");
  return 0;
}

/* ---- contract: what the program may rely on through label calls ---- */

#define ERRNO_MARK 7777
#define NFDS 256

typedef struct host {
  sigset_t mask;
  unsigned char open[NFDS];
  int lowest;
} host_t;

static void host_read(host_t *h) {
  CHECK(pthread_sigmask(SIG_SETMASK, NULL, &h->mask) == 0, "pthread_sigmask");
  h->lowest = -1;
  for (int fd = 0; fd < NFDS; fd++) {
    h->open[fd] = fcntl(fd, F_GETFD) != -1;
    if (!h->open[fd] && h->lowest < 0)
      h->lowest = fd;
  }
}

/* After each call: its result, errno, the mask and the descriptors. Only
 * a failure prints (a cancellation point), and then the test is over. */
static void host_same(const host_t *h, const char *what, int rc, int want) {
  CHECK(rc == want, "%s: %d, want %d", what, rc, want);
  CHECK(errno == ERRNO_MARK, "%s (returning %d) changed errno to %d (%s)",
        what, rc, errno, strerror(errno));
  host_t now;
  host_read(&now);
  for (int sig = 1; sig < NSIG; sig++)
    CHECK(sigismember(&now.mask, sig) == sigismember(&h->mask, sig),
          "%s changed the signal mask at signal %d", what, sig);
  for (int fd = 0; fd < NFDS; fd++)
    CHECK(now.open[fd] == h->open[fd], "%s %s descriptor %d", what,
          now.open[fd] ? "opened" : "closed", fd);
  CHECK(now.lowest == h->lowest, "%s: the lowest free descriptor is %d, was %d",
        what, now.lowest, h->lowest);
  errno = ERRNO_MARK;
}

#define CALL(h, what, expr, want)                                              \
  do {                                                                         \
    errno = ERRNO_MARK;                                                        \
    int rc_ = (expr);                                                          \
    host_same(h, what, rc_, want);                                             \
  } while (0)

/* Every label call, succeeding and failing; `tag` makes this round's new
 * pairs new (and a few hundred of them long, so that the label pools are
 * refilled from heapprof's memory meanwhile). */
static void exercise(const host_t *h, const char *tag) {
  char value[256];
  const char *v;
  heapprof_label_t l[4];
  heapprof_label_token_t token, prev;
  CALL(h, "push (new)", heapprof_label_push("ck", tag), 0);
  CALL(h, "pop", heapprof_label_pop(), 0);
  CALL(h, "push (seen)", heapprof_label_push("ck", tag), 0);
  CALL(h, "push (bad key)", heapprof_label_push("bad-key", "v"),
       HEAPPROF_EINVAL);
  CALL(h, "push (empty value)", heapprof_label_push("ck", ""), HEAPPROF_EINVAL);
  CALL(h, "push (NULL key)", heapprof_label_push(NULL, "v"), HEAPPROF_EINVAL);
  CALL(h, "get", heapprof_label_get("ck", &v), 0);
  CALL(h, "get (missing)", heapprof_label_get("nope", &v), HEAPPROF_ENOENT);
  CALL(h, "get (NULL)", heapprof_label_get(NULL, &v), HEAPPROF_EINVAL);
  CALL(h, "list", heapprof_label_list(l, 4), 1);
  CALL(h, "list (NULL, 1)", heapprof_label_list(NULL, 1), HEAPPROF_EINVAL);
  CALL(h, "list (NULL, 0)", heapprof_label_list(NULL, 0), 1);
  errno = ERRNO_MARK;
  token = heapprof_label_save();
  host_same(h, "save", token != 0, 1);
  CALL(h, "restore (0)", heapprof_label_restore(0, &prev), 0);
  CALL(h, "restore (token)", heapprof_label_restore(token, NULL), 0);
  CALL(h, "restore (bogus)", heapprof_label_restore(UINT32_MAX - 1, &prev),
       HEAPPROF_EINVAL);
  for (int i = 2; i <= HEAPPROF_LABEL_DEPTH_MAX; i++) {
    snprintf(value, sizeof value, "%s-d%d", tag, i);
    CALL(h, "push (deep)", heapprof_label_push("deep", value), 0);
  }
  CALL(h, "push (65 deep)", heapprof_label_push("deep", "more"),
       HEAPPROF_ELIMIT);
  for (int i = 2; i <= HEAPPROF_LABEL_DEPTH_MAX; i++)
    CALL(h, "pop (deep)", heapprof_label_pop(), 0);
  for (int i = 0; i < 400; i++) {
    snprintf(value, sizeof value, "%s-%0200d", tag, i);
    CALL(h, "push (long new value)", heapprof_label_push("fill", value), 0);
    CALL(h, "pop", heapprof_label_pop(), 0);
  }
  CALL(h, "pop", heapprof_label_pop(), 0);
  CALL(h, "pop (nothing pushed)", heapprof_label_pop(), HEAPPROF_ENOENT);
}

static atomic_int cancel_reached;

/* With a cancellation pending, every call runs to its end: none of them
 * is a cancellation point. The first one after them is. */
static void *cancel_thread(void *arg) {
  (void)arg;
  host_t h;
  host_read(&h);
  pthread_cancel(pthread_self());
  exercise(&h, "cancel");
  atomic_store(&cancel_reached, 1);
  pthread_testcancel();
  return NULL;
}

static void quiet_run(void) {
  host_t h;
  host_read(&h);
  exercise(&h, "quiet");
}

static int mode_contract(char *self) {
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGWINCH);
  CHECK(pthread_sigmask(SIG_BLOCK, &block, NULL) == 0, "pthread_sigmask");
  host_t h;
  host_read(&h);
  exercise(&h, "main");
  printf("errno, signal mask and descriptors (lowest free %d) unchanged by "
         "every call\n", h.lowest);

  pthread_t t;
  void *res;
  CHECK(pthread_create(&t, NULL, cancel_thread, NULL) == 0, "pthread_create");
  CHECK(pthread_join(t, &res) == 0, "pthread_join");
  CHECK(atomic_load(&cancel_reached),
        "a pending cancellation acted inside a label call");
  CHECK(res == PTHREAD_CANCELED, "pthread_testcancel did not cancel: the "
                                 "test could not have seen a cancellation");
  printf("a pending cancellation waited for pthread_testcancel\n");

  char *argv[] = {self, "contract-quiet", NULL}, *out, *err;
  int rc = tl_run_env(argv, environ, &out, &err);
  CHECK(rc == 0, "the quiet run exited %d:\n%s%s", rc, out, err);
  CHECK(out[0] == '\0' && err[0] == '\0',
        "label calls wrote to stdout:\n%s\nor stderr:\n%s", out, err);
  printf("nothing on stdout or stderr\n");
  free(out);
  free(err);
  printf("ok: the label calls keep the host contract\n");
  return 0;
}

int main(int argc, char **argv) {
  need_heapprof();
  const char *mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "exact") == 0)
    return mode_exact();
  if (strcmp(mode, "unbiased") == 0)
    return mode_unbiased(argv[0]);
  if (strcmp(mode, "unbiased-child") == 0 && argc == 3)
    return mode_unbiased_child(argv[2]);
  if (strcmp(mode, "nested") == 0)
    return mode_nested();
  if (strcmp(mode, "outlive") == 0)
    return mode_outlive();
  if (strcmp(mode, "limits") == 0)
    return mode_limits();
  if (strcmp(mode, "sets") == 0)
    return mode_sets();
  if (strcmp(mode, "refused") == 0)
    return mode_refused();
  if (strcmp(mode, "fork") == 0)
    return mode_fork();
  if (strcmp(mode, "ebusy") == 0)
    return mode_ebusy();
  if (strcmp(mode, "contract") == 0)
    return mode_contract(argv[0]);
  if (strcmp(mode, "contract-quiet") == 0) {
    quiet_run();
    return 0;
  }
  CHECK(0, "usage: test_labels exact|unbiased|nested|outlive|limits|sets|"
           "refused|fork|ebusy|contract (not '%s')", mode);
}
