/*
 * att_mt — the multithreaded program the attach tests attach to
 * (tests/integration/attach/). Four worker threads allocate without end
 * through malloc, calloc, realloc, new[], operator new and both deletes
 * (sized and not), each block filled with a pattern of its own over every
 * byte the program may use (malloc_usable_size's, for the malloc family),
 * and check the pattern, the usable size and, after a realloc, the bytes
 * it must keep, whenever a block is reallocated or freed. A failed check
 * prints one line on stderr and ends the process with status 1. The main
 * thread talks to the test: it prints "ready" once the workers are busy,
 * then reads commands, one a line, on stdin.
 *
 * usage: att_mt MODE
 *   exact   Before "ready" each worker makes PRE blocks at pre_malloc,
 *           pre_calloc, pre_realloc and pre_new (contents and usable sizes
 *           recorded), then churns. "go" (sent once the attach is done):
 *           each worker stops churning, checks every pre-attach block's
 *           usable size and contents, frees or deletes some, reallocates
 *           some (post_realloc: to twice their size, the old usable bytes
 *           checked), keeps the rest, and makes N_KNOWN blocks at each of
 *           known_malloc (S_MALLOC bytes), known_calloc (S_CALLOC),
 *           known_new (new char[S_NEW]) and known_memalign
 *           (posix_memalign(64, S_MEMALIGN)), all kept; then main prints
 *           "done". "end": every block is checked and freed, "ok", exit 0.
 *   cycles  The workers churn until stdin ends; "got" prints one line
 *           naming the module each of the program's own GOT slots of
 *           malloc, free, calloc, realloc, operator new and operator delete
 *           points into (read where the program takes their addresses, so
 *           through the GOT the attach patches). At EOF: "ok", exit 0.
 *   fds     Before "ready" main lists /proc/self/fd and finds the lowest
 *           free descriptor. "go": 2000 times, open("/dev/null") must
 *           return that number, and every 20th time /proc/self/fd must
 *           list exactly what it listed before, while the workers churn at
 *           various stack depths and main allocates too; then "checked".
 *           "end": "ok", exit 0.
 *
 * The site functions are extern "C" and noipa, so that they are frames of
 * their own under their own names in a profile.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <new>
#include <string>

#define SITE extern "C" __attribute__((noipa))

enum { WORKERS = 4, PRE = 1000, N_KNOWN = 100, RING = 64 };
enum { S_MALLOC = 1000, S_CALLOC = 2000, S_NEW = 3000, S_MEMALIGN = 4096 };

/* The test computes the same figures: keep them in step with
 * tests/integration/attach/test_att_mt.c. */
static size_t pre_size(int t, int i) { return 32 + (size_t)((t * 7919u + i * 131u) % 2000u); }
static int pre_kind(int i) { return i % 4; }            /* 0 malloc 1 calloc 2 realloc 3 new[] */
static int pre_fate(int i) { return i % 3; }            /* 0 freed 1 reallocated 2 kept */

static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("att_mt: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  _exit(1);
}

static uint8_t pattern(uint32_t seed, size_t j) {
  return (uint8_t)(seed * 131u + j * 7u + (j >> 8));
}

static void fill(void *p, size_t n, uint32_t seed) {
  uint8_t *b = (uint8_t *)p;
  for (size_t j = 0; j < n; j++)
    b[j] = pattern(seed, j);
}

static void check(const void *p, size_t n, uint32_t seed, const char *what) {
  const uint8_t *b = (const uint8_t *)p;
  for (size_t j = 0; j < n; j++)
    if (b[j] != pattern(seed, j))
      fail("%s %p: byte %zu of %zu is %u, want %u", what, p, j, n, b[j], pattern(seed, j));
}

/* ---- blocks ---- */

enum kind { K_MALLOC, K_CALLOC, K_REALLOC, K_NEWARR, K_NEW, K_NEW_SIZED, K_MEMALIGN };

struct block {
  void *p;
  size_t size;    /* asked for */
  size_t usable;  /* malloc_usable_size when made (malloc family), else size */
  uint32_t seed;
  int kind;
};

static int malloc_family(int kind) { return kind != K_NEWARR && kind != K_NEW && kind != K_NEW_SIZED; }

/* Fills a new block over every byte the program may use. */
static void own(block *b) {
  b->usable = malloc_family(b->kind) ? malloc_usable_size(b->p) : b->size;
  if (b->usable < b->size)
    fail("malloc_usable_size(%p) = %zu < %zu asked", b->p, b->usable, b->size);
  fill(b->p, b->usable, b->seed);
}

/* Checks a block: usable size unchanged, every byte as filled. */
static void verify(const block *b, const char *what) {
  if (malloc_family(b->kind)) {
    size_t now = malloc_usable_size(b->p);
    if (now != b->usable)
      fail("%s %p: malloc_usable_size %zu, was %zu", what, b->p, now, b->usable);
  }
  check(b->p, b->usable, b->seed, what);
}

static void release(block *b) {
  switch (b->kind) {
  case K_NEWARR: delete[] (char *)b->p; break;
  case K_NEW: ::operator delete(b->p); break;
  case K_NEW_SIZED: ::operator delete(b->p, b->size); break;
  default: free(b->p);
  }
  b->p = NULL;
}

/* ---- churn: what the workers do while the test attaches ---- */

SITE void churn_make(block *b, uint64_t r, uint32_t seed) {
  b->size = 16 + (size_t)(r % 4000);
  b->seed = seed;
  b->kind = (int)((r >> 16) % 7);
  switch (b->kind) {
  case K_MALLOC: b->p = malloc(b->size); break;
  case K_CALLOC:
    b->p = calloc(1, b->size);
    if (b->p != NULL)
      for (size_t j = 0; j < b->size; j++)
        if (((uint8_t *)b->p)[j] != 0)
          fail("calloc(%zu) byte %zu not zero", b->size, j);
    break;
  case K_REALLOC: {
    size_t first = b->size / 2 + 1;
    b->p = malloc(first);
    if (b->p == NULL)
      break;
    size_t u = malloc_usable_size(b->p);
    fill(b->p, u, seed);
    b->p = realloc(b->p, b->size);
    if (b->p != NULL)
      check(b->p, u < b->size ? u : b->size, seed, "churn realloc");
    break;
  }
  case K_NEWARR: b->p = new char[b->size]; break;
  case K_NEW:
  case K_NEW_SIZED: b->p = ::operator new(b->size); break;
  default:
    b->kind = K_MEMALIGN;
    if (posix_memalign(&b->p, 64, b->size) != 0)
      b->p = NULL;
    else if ((uintptr_t)b->p % 64 != 0)
      fail("posix_memalign gave %p", b->p);
  }
  if (b->p == NULL)
    fail("allocation of %zu failed", b->size);
  own(b);
}

SITE void churn_step(block *ring, uint64_t *rng, uint32_t *seed) {
  uint64_t x = *rng;
  x ^= x << 13, x ^= x >> 7, x ^= x << 17;
  *rng = x;
  block *b = &ring[x % RING];
  if (b->p == NULL) {
    churn_make(b, x >> 8, (*seed)++);
  } else if ((x >> 40) % 4 == 0 && malloc_family(b->kind) && b->kind != K_MEMALIGN) {
    verify(b, "churn block before realloc");
    size_t old = b->usable, n = 16 + (size_t)((x >> 20) % 6000);
    void *q = realloc(b->p, n);
    if (q == NULL)
      fail("realloc to %zu failed", n);
    b->p = q, b->size = n;
    check(q, old < n ? old : n, b->seed, "churn block after realloc");
    b->kind = K_REALLOC;
    own(b);
  } else {
    verify(b, "churn block");
    release(b);
  }
}

/* Churns at a stack depth of `depth` more frames (the fds mode's unwinds
 * meet frames of every depth). */
SITE void churn_deep(int depth, block *ring, uint64_t *rng, uint32_t *seed) {
  if (depth > 0)
    churn_deep(depth - 1, ring, rng, seed);
  else
    churn_step(ring, rng, seed);
  __asm__ volatile("" ::: "memory"); /* no tail call: a frame per level */
}

static void ring_free(block *ring) {
  for (int i = 0; i < RING; i++)
    if (ring[i].p != NULL) {
      verify(&ring[i], "churn block at the end");
      release(&ring[i]);
    }
}

/* ---- exact: pre-attach and known sites ---- */

SITE void *pre_malloc(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}
SITE void *pre_calloc(size_t n) {
  void *p = calloc(1, n);
  __asm__ volatile("" ::: "memory");
  return p;
}
SITE void *pre_realloc(size_t n) {
  void *p = realloc(malloc(n / 2 + 1), n);
  __asm__ volatile("" ::: "memory");
  return p;
}
SITE void *pre_new(size_t n) {
  void *p = new char[n];
  __asm__ volatile("" ::: "memory");
  return p;
}
SITE void *post_realloc(void *p, size_t n) {
  void *q = realloc(p, n);
  __asm__ volatile("" ::: "memory");
  return q;
}
SITE void *known_malloc(void) {
  void *p = malloc(S_MALLOC);
  __asm__ volatile("" ::: "memory");
  return p;
}
SITE void *known_calloc(void) {
  void *p = calloc(1, S_CALLOC);
  __asm__ volatile("" ::: "memory");
  return p;
}
SITE void *known_new(void) {
  void *p = new char[S_NEW];
  __asm__ volatile("" ::: "memory");
  return p;
}
SITE void *known_memalign(void) {
  void *p = NULL;
  if (posix_memalign(&p, 64, S_MEMALIGN) != 0)
    p = NULL;
  __asm__ volatile("" ::: "memory");
  return p;
}

/* ---- the phases ---- */

enum phase { CHURN, GO, END, STOP };
static std::atomic<int> phase{CHURN};
static std::atomic<int> busy{0}, finished{0};
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static const char *mode;

static void announce(std::atomic<int> *counter) {
  pthread_mutex_lock(&lock);
  counter->fetch_add(1);
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&lock);
}

static void wait_count(std::atomic<int> *counter, int n) {
  pthread_mutex_lock(&lock);
  while (counter->load() < n)
    pthread_cond_wait(&changed, &lock);
  pthread_mutex_unlock(&lock);
}

static void wait_phase(int p) {
  pthread_mutex_lock(&lock);
  while (phase.load() < p)
    pthread_cond_wait(&changed, &lock);
  pthread_mutex_unlock(&lock);
}

static void set_phase(int p) {
  pthread_mutex_lock(&lock);
  phase.store(p);
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&lock);
}

static void churn_until(int t, block *ring, int until) {
  uint64_t rng = 0x9e3779b97f4a7c15ull * (uint64_t)(t + 1);
  uint32_t seed = (uint32_t)t << 24;
  announce(&busy);
  while (phase.load(std::memory_order_relaxed) < until)
    churn_deep(strcmp(mode, "fds") == 0 ? (int)(rng % 24) : 0, ring, &rng, &seed);
  ring_free(ring);
}

static block pre_blocks[WORKERS][PRE];
static block known_blocks[WORKERS][4][N_KNOWN];

static void exact_worker(int t) {
  block *pre = pre_blocks[t];
  block ring[RING] = {};
  for (int i = 0; i < PRE; i++) {
    block *b = &pre[i];
    b->size = pre_size(t, i);
    b->seed = (uint32_t)(t * 100000 + i);
    b->kind = pre_kind(i) == 3 ? K_NEWARR : pre_kind(i);
    b->p = b->kind == K_MALLOC    ? pre_malloc(b->size)
           : b->kind == K_CALLOC  ? pre_calloc(b->size)
           : b->kind == K_REALLOC ? pre_realloc(b->size)
                                  : pre_new(b->size);
    if (b->p == NULL)
      fail("pre-attach allocation failed");
    own(b);
  }
  churn_until(t, ring, GO);
  /* Attached now: the blocks from before. */
  for (int i = 0; i < PRE; i++) {
    block *b = &pre[i];
    verify(b, "pre-attach block after the attach");
    if (b->kind == K_NEWARR || pre_fate(i) == 0) {
      release(b);
    } else if (pre_fate(i) == 1) {
      size_t old = b->usable;
      void *q = post_realloc(b->p, 2 * b->size);
      if (q == NULL)
        fail("realloc of a pre-attach block failed");
      check(q, old, b->seed, "pre-attach block after realloc (its old usable bytes)");
      b->p = q, b->size *= 2, b->kind = K_REALLOC;
      own(b);
    }
  }
  block (*known)[N_KNOWN] = known_blocks[t];
  for (int i = 0; i < N_KNOWN; i++) {
    known[0][i] = {known_malloc(), S_MALLOC, 0, (uint32_t)(t * 1000 + i), K_MALLOC};
    known[1][i] = {known_calloc(), S_CALLOC, 0, (uint32_t)(t * 1000 + i + 1), K_CALLOC};
    known[2][i] = {known_new(), S_NEW, 0, (uint32_t)(t * 1000 + i + 2), K_NEWARR};
    known[3][i] = {known_memalign(), S_MEMALIGN, 0, (uint32_t)(t * 1000 + i + 3), K_MEMALIGN};
    for (int s = 0; s < 4; s++) {
      if (known[s][i].p == NULL)
        fail("known allocation failed");
      own(&known[s][i]);
    }
  }
  announce(&finished);
  wait_phase(END);
  for (int i = 0; i < PRE; i++)
    if (pre[i].p != NULL) {
      verify(&pre[i], "kept block at the end");
      release(&pre[i]);
    }
  for (int s = 0; s < 4; s++)
    for (int i = 0; i < N_KNOWN; i++) {
      verify(&known[s][i], "known block at the end");
      release(&known[s][i]);
    }
}

static void *worker(void *arg) {
  int t = (int)(intptr_t)arg;
  if (strcmp(mode, "exact") == 0) {
    exact_worker(t);
  } else {
    block ring[RING] = {};
    churn_until(t, ring, STOP);
  }
  return NULL;
}

/* ---- main's side ---- */

static std::string read_line(void) {
  std::string s;
  char c;
  ssize_t n;
  while ((n = read(0, &c, 1)) == 1 && c != '\n')
    s += c;
  if (n <= 0 && s.empty())
    return "<eof>";
  return s;
}

static void say(const char *s) {
  fputs(s, stdout);
  fputc('\n', stdout);
  fflush(stdout);
}

static void expect(const char *word) {
  std::string got = read_line();
  if (got != word)
    fail("expected '%s' on stdin, got '%s'", word, got.c_str());
}

static const char *module_of(void *addr) {
  Dl_info info;
  if (dladdr(addr, &info) == 0 || info.dli_fname == NULL)
    return "?";
  const char *slash = strrchr(info.dli_fname, '/');
  return slash != NULL ? slash + 1 : info.dli_fname;
}

/* Where the program's own GOT slots point: in a PIE an address taken of
 * an external function is loaded from its GOT slot, the slot attach
 * rewrites. */
static void print_got(void) {
  void *(*volatile m)(size_t) = &malloc;
  void (*volatile f)(void *) = &free;
  void *(*volatile c)(size_t, size_t) = &calloc;
  void *(*volatile r)(void *, size_t) = &realloc;
  void *(*volatile n)(size_t) = static_cast<void *(*)(size_t)>(&::operator new);
  void (*volatile d)(void *) = static_cast<void (*)(void *)>(&::operator delete);
  printf("got malloc=%s free=%s calloc=%s realloc=%s _Znwm=%s _ZdlPv=%s\n",
         module_of((void *)m), module_of((void *)f), module_of((void *)c),
         module_of((void *)r), module_of((void *)n), module_of((void *)d));
  fflush(stdout);
}

/* "N -> target" for every descriptor but the listing's own. */
static std::string fd_listing(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL)
    fail("opendir /proc/self/fd");
  int fds[256], n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d) && n < 256)
      fds[n++] = atoi(e->d_name);
  closedir(d);
  qsort(fds, (size_t)n, sizeof fds[0],
        [](const void *a, const void *b) { return *(const int *)a - *(const int *)b; });
  std::string s;
  for (int i = 0; i < n; i++) {
    char path[64], target[512];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fds[i]);
    ssize_t k = readlink(path, target, sizeof target - 1);
    target[k > 0 ? k : 0] = '\0';
    s += std::to_string(fds[i]) + " -> " + target + "\n";
  }
  return s;
}

SITE void fds_main_alloc(int i) {
  void *p = malloc(64 + (size_t)(i % 512));
  if (p == NULL)
    fail("malloc failed");
  memset(p, i, 64);
  free(p);
}

static void fds_check(void) {
  std::string before = fd_listing();
  int lowest = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (lowest < 0)
    fail("open /dev/null");
  close(lowest);
  say("ready");
  expect("go");
  for (int i = 0; i < 2000; i++) {
    fds_main_alloc(i);
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd != lowest)
      fail("open() returned %d, the lowest free descriptor is %d:\n%s", fd, lowest,
           fd_listing().c_str());
    close(fd);
    if (i % 20 == 0) {
      std::string now = fd_listing();
      if (now != before)
        fail("/proc/self/fd changed while attached:\nbefore:\n%snow:\n%s", before.c_str(),
             now.c_str());
    }
  }
  say("checked");
  expect("end");
}

int main(int argc, char **argv) {
  if (argc != 2 || (strcmp(argv[1], "exact") && strcmp(argv[1], "cycles") &&
                    strcmp(argv[1], "fds"))) {
    fputs("usage: att_mt exact|cycles|fds\n", stderr);
    return 2;
  }
  mode = argv[1];
  pthread_t th[WORKERS];
  for (int t = 0; t < WORKERS; t++)
    if (pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t) != 0)
      fail("pthread_create");
  wait_count(&busy, WORKERS);
  if (strcmp(mode, "exact") == 0) {
    say("ready");
    expect("go");
    set_phase(GO);
    wait_count(&finished, WORKERS);
    say("done");
    expect("end");
    set_phase(END);
  } else if (strcmp(mode, "cycles") == 0) {
    say("ready");
    for (std::string line; (line = read_line()) != "<eof>";) {
      if (line == "got")
        print_got();
      else
        fail("unknown command '%s'", line.c_str());
    }
    set_phase(STOP);
  } else {
    fds_check();
    set_phase(STOP);
  }
  for (int t = 0; t < WORKERS; t++)
    pthread_join(th[t], NULL);
  say("ok");
  return 0;
}
