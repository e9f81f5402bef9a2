/*
 * scrape_cost — what being scraped every second costs a process: issue
 * 12's "cheap steady state". A target with 10,000 buckets serves
 * /debug/pprof/ (HEAPPROF_HTTP=127.0.0.1:0) while one thread allocates;
 * a scraper GETs /debug/pprof/allocs once a second over one keep-alive
 * connection (reconnecting whenever the server closes it). Measured:
 *
 *   - the CPU heapprof's threads (every thread whose name starts with
 *     "heapprof": the HTTP server and the dump thread) spent on each
 *     scrape, from /proc/PID/task/TID/schedstat (on-CPU nanoseconds)
 *     read at each one-second tick, just before the scrape: the scrape's
 *     cost is the difference to the next tick, so the work done after the
 *     response went out (freeing the body, closing) is counted too. The
 *     whole process's CPU is given for context.
 *   - VmRSS from /proc/PID/status at every tick; the drift is max − min
 *     over the ticks after the settling time (60 s).
 *   - the allocating thread's pairs (malloc+free) per second, and per
 *     second of its own CPU, in seconds scraped and not scraped. With
 *     --phase S the run alternates S seconds scraped and S seconds not,
 *     so both see the same neighbours on a shared machine; the ratio is
 *     the median over scraped seconds against the median over the others
 *     (after the settling time, while the live set fills), and the
 *     paired ratio compares each scraped phase with the mean of the
 *     unscraped phases on either side.
 *
 * One file, two roles. Run plainly it is the driver and the scraper, a
 * process heapprof never sees; it starts itself again as the target
 * (`--target`), with LD_PRELOAD of libheapprof.so. The target makes the
 * buckets at rate 1 (heapprof_set_rate, found with dlsym: the target is
 * not linked against heapprof), one per distinct size through 128
 * distinct call stacks, each block freed at once, then goes back to the
 * rate it started with (HEAPPROF_RATE or the default) and starts ONE
 * allocating thread — the machine this was written on has 2 cores, so
 * the HTTP thread has the other — that runs alloc_bench's mix (16 B –
 * 4 KiB log-uniform, through 8 site functions that end in a tail call,
 * so their samples share one stack: 144 buckets more) over 10,000 live
 * blocks (--live). alloc_bench's 100,000 put ~100 MB of the program's
 * own heap under the RSS, which moved by 13 MB in one early run: enough
 * to hide heapprof's share. The target counts its pairs in a memfd that
 * both processes map.
 *
 * usage: scrape_cost [--seconds N] [--phase S] [--settle S] [--buckets N]
 *                    [--live N] [--scrape 0|1] [--burn MS] [--path P]
 *                    [--lib SO] [--csv FILE]
 *   --seconds  length of the run (300)
 *   --phase    0: scrape every second (the default); S: alternate S
 *              seconds scraped and S not, starting scraped
 *   --settle   seconds left out of the RSS drift and the throughput (60)
 *   --buckets  buckets made before the run (10000)
 *   --live     blocks the allocating thread keeps (10000)
 *   --scrape   0: never scrape; with --phase, an A/A run that measures
 *              how far two unscraped halves differ by chance
 *   --burn     with --scrape 0 and --phase: in the "scraped" phases the
 *              driver spends this many ms of CPU a second on 4 MB of
 *              memory instead, a scrape's load without heapprof (control)
 *   --path     what to GET (/debug/pprof/allocs)
 *   --lib      the library to preload (default: HEAPPROF_LIB as built,
 *              else ../lib/libheapprof.so beside this executable)
 *   --csv      every tick: t, ops, CPU of heapprof's threads and of the
 *              process, RSS, whether and how long a scrape ran
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heapprof.h"

/* What the two processes share: the target writes, the driver reads. */
typedef struct shared {
  _Atomic long ops;        /* malloc+free pairs done by the allocating thread */
  _Atomic int ready;       /* 1: buckets made, thread running; -1: failed */
  _Atomic int worker_tid;
  long buckets;            /* heapprof's count once the buckets are made */
  long rate;               /* the rate the allocating thread runs at */
  long live;               /* blocks the allocating thread keeps */
  char why[128];           /* what failed, when ready is -1 */
} shared_t;

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* ==================== the target ==================== */

/* 128 distinct stacks: seven levels, each with two callers of the next,
 * chosen by one bit of `path`. The empty asm after each call keeps the
 * call from becoming a jump, so every level stays a frame. */
static __attribute__((noipa)) void leaf(unsigned path, size_t n) {
  (void)path;
  void *p = malloc(n);
  __asm__ volatile("" : : "r"(p) : "memory");
  free(p);
}
#define LEVEL(k, next)                                                         \
  static __attribute__((noipa)) void l##k##a(unsigned path, size_t n) {        \
    next(path, n);                                                             \
    __asm__ volatile("");                                                      \
  }                                                                            \
  static __attribute__((noipa)) void l##k##b(unsigned path, size_t n) {        \
    next(path, n);                                                             \
    __asm__ volatile("");                                                      \
  }                                                                            \
  static __attribute__((noipa)) void l##k(unsigned path, size_t n) {           \
    (path >> k & 1 ? l##k##b : l##k##a)(path, n);                              \
    __asm__ volatile("");                                                      \
  }
LEVEL(0, leaf)
LEVEL(1, l0)
LEVEL(2, l1)
LEVEL(3, l2)
LEVEL(4, l3)
LEVEL(5, l4)
LEVEL(6, l5)

/* alloc_bench's mix: sizes 16 B – 4 KiB, log-uniform, from 8 sites. */
#define SITE(k)                                                                \
  static __attribute__((noipa)) void *site##k(size_t n) { return malloc(n); }
SITE(0) SITE(1) SITE(2) SITE(3) SITE(4) SITE(5) SITE(6) SITE(7)
static void *(*const sites[8])(size_t) = {site0, site1, site2, site3,
                                          site4, site5, site6, site7};

static uint64_t next_rand(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static void *allocate(void *arg) {
  shared_t *sh = arg;
  long live = sh->live;
  atomic_store(&sh->worker_tid, gettid());
  void **slots = calloc((size_t)live, sizeof *slots);
  uint64_t s = 0x9e3779b97f4a7c15ULL;
  for (long i = 1;; i++) {
    uint64_t r = next_rand(&s);
    long k = (long)(r >> 20) % live;
    free(slots[k]);
    slots[k] = sites[i & 7]((size_t)16 << (r % 9) | (r >> 8) % 16);
    if ((i & 255) == 0)
      atomic_store_explicit(&sh->ops, i, memory_order_relaxed);
  }
  return NULL;
}

/* heapprof's API, looked up: the target is preloaded, not linked. */
typedef struct api {
  __typeof__(heapprof_set_rate) *set_rate;
  __typeof__(heapprof_get_rate) *get_rate;
  __typeof__(heapprof_read_stats) *read_stats;
} api_t;

static int fail(shared_t *sh, const char *why) {
  snprintf(sh->why, sizeof sh->why, "%s", why);
  atomic_store(&sh->ready, -1);
  return 1;
}

static int target(int fd, long buckets, long live) {
  shared_t *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (sh == MAP_FAILED)
    return 1;
  close(fd);
  api_t api = {dlsym(RTLD_DEFAULT, "heapprof_set_rate"),
               dlsym(RTLD_DEFAULT, "heapprof_get_rate"),
               dlsym(RTLD_DEFAULT, "heapprof_read_stats")};
  if (api.set_rate == NULL || api.get_rate == NULL || api.read_stats == NULL)
    return fail(sh, "heapprof is not loaded (LD_PRELOAD?)");
  long rate = api.get_rate();
  if (rate <= 0 || api.set_rate(1) != 0)
    return fail(sh, "profiling is off (HEAPPROF_RATE=0?)");
  for (long i = 0; i < buckets; i++) /* distinct sizes: one bucket each */
    l6((unsigned)i % 128, 16 + (size_t)i);
  api.set_rate(rate);
  heapprof_stats_t stats = {0};
  api.read_stats(&stats);
  sh->buckets = (long)stats.buckets;
  sh->rate = rate;
  sh->live = live;
  pthread_t t;
  if (pthread_create(&t, NULL, allocate, sh) != 0)
    return fail(sh, "pthread_create failed");
  while (atomic_load(&sh->worker_tid) == 0)
    usleep(1000);
  atomic_store(&sh->ready, 1);
  for (;;) /* until the driver ends it (or dies: PR_SET_PDEATHSIG) */
    pause();
}

/* ==================== the driver: /proc ==================== */

#define MAX_TASKS 256

/* On-CPU nanoseconds of the process's threads, accumulated per thread
 * across readings, so that a thread that ends (or starts) between two
 * readings never makes a difference negative. */
typedef struct cpu {
  int tid[MAX_TASKS];
  int64_t last[MAX_TASKS];
  int n;
  int64_t heapprof_ns, http_ns, all_ns; /* totals since the first reading */
} cpu_t;

static int read_small(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t n = read(fd, buf, cap - 1);
  close(fd);
  if (n < 0)
    return -1;
  buf[n] = '\0';
  return (int)n;
}

static int64_t task_ns(int pid, int tid, char *comm, size_t cap) {
  char path[96], buf[128];
  snprintf(path, sizeof path, "/proc/%d/task/%d/comm", pid, tid);
  if (read_small(path, comm, cap) < 0)
    return -1;
  comm[strcspn(comm, "\n")] = '\0';
  snprintf(path, sizeof path, "/proc/%d/task/%d/schedstat", pid, tid);
  if (read_small(path, buf, sizeof buf) < 0)
    return -1;
  return strtoll(buf, NULL, 10);
}

static int64_t *cpu_slot(cpu_t *c, int tid) {
  for (int i = 0; i < c->n; i++)
    if (c->tid[i] == tid)
      return &c->last[i];
  if (c->n == MAX_TASKS)
    return NULL;
  c->tid[c->n] = tid;
  c->last[c->n] = 0;
  return &c->last[c->n++];
}

static void cpu_read(cpu_t *c, int pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR *d = opendir(path);
  if (d == NULL)
    return;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    int tid = atoi(e->d_name);
    char comm[32];
    int64_t ns = tid > 0 ? task_ns(pid, tid, comm, sizeof comm) : -1;
    int64_t *last = ns >= 0 ? cpu_slot(c, tid) : NULL;
    if (last == NULL)
      continue;
    int64_t d_ns = ns - *last;
    *last = ns;
    c->all_ns += d_ns;
    if (strncmp(comm, "heapprof", 8) == 0)
      c->heapprof_ns += d_ns;
    if (strcmp(comm, "heapprof-http") == 0)
      c->http_ns += d_ns;
  }
  closedir(d);
}

static long rss_kb(int pid) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  if (read_small(path, buf, sizeof buf) < 0)
    return -1;
  char *at = strstr(buf, "VmRSS:");
  return at != NULL ? strtol(at + 6, NULL, 10) : -1;
}

static int64_t thread_ns(int pid, int tid) {
  char comm[32];
  return task_ns(pid, tid, comm, sizeof comm);
}

/* ==================== the driver: HTTP ==================== */

typedef struct conn {
  int fd; /* -1 when not connected */
  int port;
  int reconnects; /* connections opened after the first */
  int opened;
} conn_t;

typedef struct reply {
  int status;
  int closes;   /* the server said Connection: close, or closed */
  char *body;
  size_t len, cap;
  char head[4096];
  size_t head_len, have; /* bytes in head[], the head's length */
} reply_t;

static int conn_open(conn_t *c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0)
    return -1;
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->reconnects += c->opened++ > 0;
  return 0;
}

static void conn_close(conn_t *c) {
  if (c->fd >= 0)
    close(c->fd);
  c->fd = -1;
}

/* recv with a deadline: bytes, 0 at EOF, -1 on error or timeout. */
static ssize_t recv_by(int fd, void *buf, size_t cap, int64_t deadline) {
  for (;;) {
    int left_ms = (int)((deadline - now_ns()) / 1000000);
    struct pollfd p = {fd, POLLIN, 0};
    int ready = left_ms > 0 ? poll(&p, 1, left_ms) : 0;
    if (ready < 0 && errno == EINTR)
      continue;
    if (ready <= 0)
      return -1;
    ssize_t r = recv(fd, buf, cap, 0);
    if (r >= 0 || errno != EINTR)
      return r;
  }
}

static int body_append(reply_t *r, const void *p, size_t n) {
  if (r->len + n > r->cap) {
    size_t cap = r->cap ? r->cap : 1 << 20;
    while (cap < r->len + n)
      cap *= 2;
    char *b = realloc(r->body, cap);
    if (b == NULL)
      return -1;
    r->body = b, r->cap = cap;
  }
  memcpy(r->body + r->len, p, n);
  r->len += n;
  return 0;
}

/* Bytes already read past the head come first, then the socket. */
static ssize_t next_bytes(int fd, reply_t *r, char *buf, size_t cap,
                          int64_t deadline) {
  if (r->have > r->head_len) {
    size_t n = r->have - r->head_len < cap ? r->have - r->head_len : cap;
    memcpy(buf, r->head + r->head_len, n);
    r->head_len += n;
    return (ssize_t)n;
  }
  return recv_by(fd, buf, cap, deadline);
}

static int read_exact(int fd, reply_t *r, size_t n, int64_t deadline) {
  char buf[65536];
  while (n > 0) {
    ssize_t got = next_bytes(fd, r, buf, n < sizeof buf ? n : sizeof buf, deadline);
    if (got <= 0 || body_append(r, buf, (size_t)got) != 0)
      return -1;
    n -= (size_t)got;
  }
  return 0;
}

/* One line of a chunked body (the size line or a chunk's CRLF). */
static int read_line(int fd, reply_t *r, char *line, size_t cap, int64_t deadline) {
  size_t n = 0;
  for (;;) {
    char ch;
    if (next_bytes(fd, r, &ch, 1, deadline) != 1 || n + 1 >= cap)
      return -1;
    if (ch == '\n')
      break;
    line[n++] = ch;
  }
  line[n] = '\0';
  return 0;
}

static int read_chunked(int fd, reply_t *r, int64_t deadline) {
  for (;;) {
    char line[128];
    if (read_line(fd, r, line, sizeof line, deadline) != 0)
      return -1;
    size_t n = strtoul(line, NULL, 16);
    if (n == 0)
      return read_line(fd, r, line, sizeof line, deadline); /* no trailers */
    if (read_exact(fd, r, n, deadline) != 0 ||
        read_line(fd, r, line, sizeof line, deadline) != 0)
      return -1;
  }
}

static int read_to_eof(int fd, reply_t *r, int64_t deadline) {
  char buf[65536];
  for (ssize_t got; (got = next_bytes(fd, r, buf, sizeof buf, deadline)) != 0;)
    if (got < 0 || body_append(r, buf, (size_t)got) != 0)
      return -1;
  return 0;
}

static const char *header(const char *head, const char *name) {
  for (const char *at = strstr(head, "\r\n"); at != NULL; at = strstr(at + 2, "\r\n"))
    if (strncasecmp(at + 2, name, strlen(name)) == 0 && at[2 + strlen(name)] == ':')
      return at + 3 + strlen(name) + strspn(at + 3 + strlen(name), " \t");
  return NULL;
}

/* Reads one response; 0 or -1. */
static int read_reply(int fd, reply_t *r, int64_t deadline) {
  r->have = r->head_len = r->len = 0;
  char *end = NULL;
  while (end == NULL) {
    if (r->have + 1 >= sizeof r->head)
      return -1;
    ssize_t got = recv_by(fd, r->head + r->have, sizeof r->head - 1 - r->have, deadline);
    if (got <= 0)
      return -1;
    r->have += (size_t)got;
    r->head[r->have] = '\0';
    end = strstr(r->head, "\r\n\r\n");
  }
  r->head_len = (size_t)(end + 4 - r->head);
  end[2] = '\0'; /* the headers end with their last CRLF */
  r->status = atoi(r->head + strcspn(r->head, " "));
  const char *cl = header(r->head, "Content-Length");
  const char *te = header(r->head, "Transfer-Encoding");
  const char *cn = header(r->head, "Connection");
  r->closes = cn != NULL && strncasecmp(cn, "close", 5) == 0;
  if (te != NULL && strncasecmp(te, "chunked", 7) == 0)
    return read_chunked(fd, r, deadline);
  if (cl != NULL)
    return read_exact(fd, r, strtoul(cl, NULL, 10), deadline);
  r->closes = 1;
  return read_to_eof(fd, r, deadline);
}

/* GETs `path` over the kept connection (opening one when there is none);
 * 0 with a whole reply, or -1. */
static int scrape(conn_t *c, const char *path, reply_t *r) {
  char req[256];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                   "User-Agent: scrape_cost\r\nConnection: keep-alive\r\n\r\n",
                   path, c->port);
  int64_t deadline = now_ns() + 10 * (int64_t)1000000000;
  for (int attempt = 0; attempt < 2; attempt++) {
    if (c->fd < 0 && conn_open(c) != 0) {
      conn_close(c);
      return -1;
    }
    int kept = c->opened > 0 && attempt == 0;
    if (send(c->fd, req, (size_t)n, MSG_NOSIGNAL) == n &&
        read_reply(c->fd, r, deadline) == 0) {
      if (r->closes)
        conn_close(c);
      return 0;
    }
    conn_close(c); /* a kept connection the server had closed: once more */
    if (!kept)
      break;
  }
  return -1;
}

/* ==================== the driver: the run ==================== */

typedef struct tick {
  double t;              /* seconds since the first tick */
  long ops;
  int64_t heapprof_ns, http_ns, all_ns, worker_ns;
  long rss_kb;
  int on;                /* in a scraped phase (see phase_on) */
  int scraped;           /* a scrape followed this reading */
  double scrape_ms;      /* its wall time, request to last byte */
  size_t body;
} tick_t;

typedef struct options {
  int seconds, phase, settle, scrape, burn_ms;
  long buckets, live;
  const char *path, *lib, *csv;
} options_t;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The q-quantile of v[0..n) (sorted in place), nearest rank. */
static double quantile(double *v, int n, double q) {
  if (n == 0)
    return 0;
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  int i = (int)(q * (n - 1) + 0.5);
  return v[i];
}

static const char *default_lib(void) {
#ifdef HEAPPROF_LIB
  return HEAPPROF_LIB;
#else
  static char path[4096];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 32);
  if (n <= 0)
    return "libheapprof.so";
  path[n] = '\0';
  char *slash = strrchr(path, '/');
  *slash = '\0';
  slash = strrchr(path, '/'); /* bench/ → the build directory */
  strcpy(slash != NULL ? slash : path, "/lib/libheapprof.so");
  return path;
#endif
}

/* Starts the target; its pid, with *port and the shared page filled. */
static pid_t start_target(const options_t *o, shared_t **sh, int *port,
                          char *errpath) {
  int fd = memfd_create("scrape_cost", 0);
  if (fd < 0 || ftruncate(fd, sizeof **sh) != 0)
    return -1;
  *sh = mmap(NULL, sizeof **sh, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  snprintf(errpath, 64, "/tmp/scrape_cost.%d.err", getpid());
  int err = open(errpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(err, 2);
    char fdarg[16], nb[24], live[24];
    snprintf(fdarg, sizeof fdarg, "%d", fd);
    snprintf(nb, sizeof nb, "%ld", o->buckets);
    snprintf(live, sizeof live, "%ld", o->live);
    setenv("LD_PRELOAD", o->lib, 1);
    setenv("HEAPPROF_HTTP", "127.0.0.1:0", 1);
    execl("/proc/self/exe", "scrape_cost", "--target", fdarg, nb, live,
          (char *)NULL);
    _exit(127);
  }
  close(fd);
  /* heapprof prints "heapprof: serving http://127.0.0.1:PORT/debug/pprof/" */
  for (int waited = 0; pid > 0 && waited < 600; waited++) {
    char buf[4096];
    ssize_t n = pread(err, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    const char *at = strstr(buf, "serving http://127.0.0.1:");
    if (at != NULL && atomic_load(&(*sh)->ready) != 0) {
      *port = atoi(at + strlen("serving http://127.0.0.1:"));
      break;
    }
    if (waitpid(pid, NULL, WNOHANG) == pid)
      break;
    usleep(100000);
  }
  close(err);
  return pid;
}

static void sleep_until(int64_t at_ns) {
  struct timespec t = {at_ns / 1000000000, at_ns % 1000000000};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR)
    ;
}

/* Whether `second` is in a scraped phase (with --scrape 0 an A/A run:
 * the phases alternate, and neither is scraped). */
static int phase_on(const options_t *o, int second) {
  return o->phase == 0 || (second / o->phase) % 2 == 0;
}

/* A scrape's load without heapprof (--burn, a control): `ms` of this
 * thread's CPU spent reading and writing 4 MB, about what a scrape of
 * 10,000 buckets touches (counters and stacks, zlib's state, the body). */
static void burn(int ms) {
  static uint8_t *mem;
  size_t len = 4 << 20;
  if (mem == NULL && (mem = malloc(len)) == NULL)
    return;
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  int64_t end = (int64_t)t.tv_sec * 1000000000 + t.tv_nsec + (int64_t)ms * 1000000;
  for (uint64_t x = 1;; x++) {
    for (size_t i = 0; i < len; i += 64)
      mem[i] = (uint8_t)(mem[(i * 7919) % len] + x);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    if ((int64_t)t.tv_sec * 1000000000 + t.tv_nsec >= end)
      return;
  }
}

/* Reads /proc at every tick and scrapes in the scraped seconds. */
static int run(const options_t *o, pid_t pid, shared_t *sh, int port,
               tick_t *ticks, int *failed, conn_t *c) {
  cpu_t cpu = {0};
  reply_t r = {0};
  int worker = atomic_load(&sh->worker_tid);
  int64_t start = now_ns();
  cpu_read(&cpu, pid);
  *c = (conn_t){.fd = -1, .port = port};
  for (int s = 0; s <= o->seconds; s++) {
    sleep_until(start + (int64_t)s * 1000000000);
    tick_t *k = &ticks[s];
    k->t = (double)(now_ns() - start) / 1e9;
    k->ops = atomic_load(&sh->ops);
    cpu_read(&cpu, pid);
    k->heapprof_ns = cpu.heapprof_ns, k->http_ns = cpu.http_ns;
    k->all_ns = cpu.all_ns, k->worker_ns = thread_ns(pid, worker);
    k->rss_kb = rss_kb(pid);
    k->on = s < o->seconds && phase_on(o, s);
    if (k->on && o->burn_ms > 0)
      burn(o->burn_ms);
    if (!k->on || !o->scrape)
      continue;
    int64_t t0 = now_ns();
    int ok = scrape(c, o->path, &r) == 0;
    k->scraped = 1;
    k->scrape_ms = (double)(now_ns() - t0) / 1e6;
    k->body = r.len;
    if (!ok || r.status != 200 || r.len < 2 || (uint8_t)r.body[0] != 0x1f ||
        (uint8_t)r.body[1] != 0x8b) {
      if (*failed < 3)
        fprintf(stderr, "scrape at %d s: %s, status %d, %zu bytes\n", s,
                ok ? "not a gzipped profile" : "failed", ok ? r.status : 0, r.len);
      ++*failed;
    }
  }
  conn_close(c);
  free(r.body);
  return 0;
}

static void write_csv(const char *path, const tick_t *t, int n) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return;
  fprintf(f, "t,ops,heapprof_ns,http_ns,process_ns,worker_ns,rss_kb,phase_on,scraped,scrape_ms,body\n");
  for (int i = 0; i < n; i++)
    fprintf(f, "%.3f,%ld,%lld,%lld,%lld,%lld,%ld,%d,%d,%.3f,%zu\n", t[i].t, t[i].ops,
            (long long)t[i].heapprof_ns, (long long)t[i].http_ns,
            (long long)t[i].all_ns, (long long)t[i].worker_ns, t[i].rss_kb,
            t[i].on, t[i].scraped, t[i].scrape_ms, t[i].body);
  fclose(f);
}

/* Throughput of the interval [i, i+1]: pairs per wall second and per
 * second of the allocating thread's CPU. */
static double per_s(const tick_t *t, int i) {
  return (double)(t[i + 1].ops - t[i].ops) / (t[i + 1].t - t[i].t);
}
static double per_cpu_s(const tick_t *t, int i) {
  return (double)(t[i + 1].ops - t[i].ops) * 1e9 /
         (double)(t[i + 1].worker_ns - t[i].worker_ns);
}

static void report_cpu(const tick_t *t, int n) {
  double *hp = malloc(sizeof(double) * (size_t)n), *all = malloc(sizeof(double) * (size_t)n);
  double *lat = malloc(sizeof(double) * (size_t)n), first = -1, first_all = 0, first_lat = 0;
  double idle[4096];
  int m = 0, quiet = 0;
  size_t body = 0;
  for (int i = 0; i + 1 < n; i++) {
    double d = (double)(t[i + 1].heapprof_ns - t[i].heapprof_ns) / 1e6;
    double d_all = (double)(t[i + 1].all_ns - t[i].all_ns) / 1e6;
    if (!t[i].scraped) {
      if (quiet < 4096)
        idle[quiet++] = d;
      continue;
    }
    body = t[i].body;
    if (first < 0) {
      first = d, first_all = d_all, first_lat = t[i].scrape_ms;
      continue;
    }
    hp[m] = d, all[m] = d_all, lat[m++] = t[i].scrape_ms;
  }
  printf("scrapes                              %d\n", m + (first >= 0));
  if (first < 0) {
    if (quiet > 0)
      printf("unscraped seconds: heapprof CPU ms   median %.2f  max %.2f\n",
             quantile(idle, quiet, 0.5), quantile(idle, quiet, 1));
    free(hp), free(all), free(lat);
    return;
  }
  printf("first scrape: heapprof CPU ms        %.1f (process %.1f, wall %.1f)\n",
         first, first_all, first_lat);
  printf("later scrapes: heapprof CPU ms       median %.2f  p90 %.2f  max %.2f\n",
         quantile(hp, m, 0.5), quantile(hp, m, 0.9), quantile(hp, m, 1));
  printf("later scrapes: wall ms               median %.2f  p90 %.2f  max %.2f\n",
         quantile(lat, m, 0.5), quantile(lat, m, 0.9), quantile(lat, m, 1));
  printf("later seconds: process CPU ms        median %.1f (one allocating thread: ~1000)\n",
         quantile(all, m, 0.5));
  if (quiet > 0)
    printf("unscraped seconds: heapprof CPU ms   median %.2f  max %.2f\n",
           quantile(idle, quiet, 0.5), quantile(idle, quiet, 1));
  printf("body bytes (last)                    %zu\n", body);
  free(hp), free(all), free(lat);
}

static void report_rss(const tick_t *t, int n, int settle) {
  long lo = -1, hi = -1, at_settle = -1;
  for (int i = 0; i < n; i++) {
    if (t[i].t + 0.5 < settle || t[i].rss_kb < 0)
      continue;
    if (at_settle < 0)
      at_settle = t[i].rss_kb;
    if (lo < 0 || t[i].rss_kb < lo)
      lo = t[i].rss_kb;
    if (t[i].rss_kb > hi)
      hi = t[i].rss_kb;
  }
  printf("RSS MB: at start %.1f, at %d s %.1f, at end %.1f, drift after %d s "
         "(max-min) %.2f\n",
         t[0].rss_kb / 1024.0, settle, at_settle / 1024.0, t[n - 1].rss_kb / 1024.0,
         settle, (hi - lo) / 1024.0);
}

/* The median of the medians of the unscraped phases on either side of
 * each scraped phase, against that phase's own median. */
static void report_paired(const tick_t *t, int n, const options_t *o) {
  int phases = (n - 1) / o->phase;
  double *med = calloc((size_t)phases, sizeof *med), ratios[4096], v[4096];
  int nr = 0;
  for (int p = 0; p < phases; p++) {
    int m = 0;
    for (int i = p * o->phase; i < (p + 1) * o->phase && i + 1 < n; i++)
      if (t[i].t >= o->settle)
        v[m++] = per_s(t, i);
    med[p] = m == o->phase ? quantile(v, m, 0.5) : -1;
  }
  for (int p = 0; p < phases; p += 2) {
    double sum = 0;
    int k = 0;
    if (p > 0 && med[p - 1] > 0)
      sum += med[p - 1], k++;
    if (p + 1 < phases && med[p + 1] > 0)
      sum += med[p + 1], k++;
    if (med[p] > 0 && k > 0 && nr < 4096)
      ratios[nr++] = med[p] / (sum / k);
  }
  if (nr > 0) {
    double mid = quantile(ratios, nr, 0.5), lo = quantile(ratios, nr, 0.25),
           hi = quantile(ratios, nr, 0.75);
    /* The median's 95 % confidence interval from order statistics: the
     * ranks n/2 ∓ 0.98·√n (normal approximation to the binomial). */
    int r_lo = (int)(nr / 2.0 - 0.98 * sqrt(nr)), r_hi = (int)ceil(nr / 2.0 + 0.98 * sqrt(nr));
    r_lo = r_lo < 0 ? 0 : r_lo;
    r_hi = r_hi > nr - 1 ? nr - 1 : r_hi;
    printf("paired phases (%d): scraped/not      median %.4f  middle half %.4f-%.4f"
           "  95%% CI of the median %.4f-%.4f\n",
           nr, mid, lo, hi, ratios[r_lo], ratios[r_hi]);
  }
  free(med);
}

static void report_throughput(const tick_t *t, int n, const options_t *o) {
  double on[4096], off[4096], on_cpu[4096], off_cpu[4096];
  int a = 0, b = 0;
  for (int i = 0; i + 1 < n && i < 4096; i++) {
    if (t[i].t + 0.5 < o->settle)
      continue;
    if (t[i].on)
      on_cpu[a] = per_cpu_s(t, i), on[a++] = per_s(t, i);
    else
      off_cpu[b] = per_cpu_s(t, i), off[b++] = per_s(t, i);
  }
  if (a == 0 || b == 0) { /* nothing to compare with: --phase */
    if (a + b > 0)
      printf("pairs/s %s (%3d s)            median %.0f\n",
             a ? "scraped" : "not scraped", a + b,
             quantile(a ? on : off, a + b, 0.5));
    return;
  }
  if (!o->scrape)
    printf(o->burn_ms ? "control: the \"scraped\" phases below were not scraped; "
                        "the driver spent %d ms of CPU in each of their seconds\n"
                      : "A/A run: the \"scraped\" phases below were not scraped "
                        "either\n", o->burn_ms);
  double m_on = quantile(on, a, 0.5), m_off = quantile(off, b, 0.5);
  printf("pairs/s scraped     (%3d s)          median %.0f  middle half %.0f-%.0f\n",
         a, m_on, quantile(on, a, 0.25), quantile(on, a, 0.75));
  printf("pairs/s not scraped (%3d s)          median %.0f  middle half %.0f-%.0f\n",
         b, m_off, quantile(off, b, 0.25), quantile(off, b, 0.75));
  printf("ratio scraped/not                    %.4f\n", m_on / m_off);
  double c_on = quantile(on_cpu, a, 0.5), c_off = quantile(off_cpu, b, 0.5);
  printf("pairs per CPU-s of the thread        scraped %.0f  not %.0f  ratio %.4f\n",
         c_on, c_off, c_on / c_off);
  report_paired(t, n, o);
}

static int parse(int argc, char **argv, options_t *o) {
  *o = (options_t){300, 0, 60, 1, 0, 10000, 10000, "/debug/pprof/allocs",
                   default_lib(), NULL};
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (strcmp(k, "--seconds") == 0)
      o->seconds = atoi(v);
    else if (strcmp(k, "--phase") == 0)
      o->phase = atoi(v);
    else if (strcmp(k, "--settle") == 0)
      o->settle = atoi(v);
    else if (strcmp(k, "--buckets") == 0)
      o->buckets = atol(v);
    else if (strcmp(k, "--live") == 0)
      o->live = atol(v);
    else if (strcmp(k, "--scrape") == 0)
      o->scrape = atoi(v);
    else if (strcmp(k, "--burn") == 0)
      o->burn_ms = atoi(v);
    else if (strcmp(k, "--path") == 0)
      o->path = v;
    else if (strcmp(k, "--lib") == 0)
      o->lib = v;
    else if (strcmp(k, "--csv") == 0)
      o->csv = v;
    else
      return -1;
  }
  if (argc % 2 == 0 || o->seconds < 2 || o->seconds > 4000 || o->phase < 0 ||
      o->settle < 0 || o->settle >= o->seconds || o->buckets < 0 ||
      o->live < 1 || o->burn_ms < 0 || (o->burn_ms > 0 && o->scrape))
    return -1;
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "--target") == 0)
    return target(atoi(argv[2]), atol(argv[3]), atol(argv[4]));
  options_t o;
  if (parse(argc, argv, &o) != 0) {
    fprintf(stderr, "usage: scrape_cost [--seconds N] [--phase S] [--settle S] "
                    "[--buckets N] [--live N] [--scrape 0|1] [--burn MS] [--path P] "
                    "[--lib SO] [--csv FILE]\n");
    return 2;
  }
  shared_t *sh;
  int port = 0, failed = 0;
  char errpath[64];
  pid_t pid = start_target(&o, &sh, &port, errpath);
  if (pid <= 0 || port == 0 || atomic_load(&sh->ready) != 1) {
    fprintf(stderr, "scrape_cost: the target did not start (%s; its stderr: %s)\n",
            pid > 0 && atomic_load(&sh->ready) < 0 ? sh->why : "no port", errpath);
    if (pid > 0)
      kill(pid, SIGKILL);
    return 1;
  }
  printf("target pid %d, %s, port %d, %ld buckets, rate %ld, %s %s\n", pid,
         o.lib, port, sh->buckets, sh->rate, o.path,
         !o.scrape ? "never scraped" : o.phase ? "every second in alternate phases"
                                                : "every second");
  fflush(stdout);
  tick_t *ticks = calloc((size_t)o.seconds + 1, sizeof *ticks);
  conn_t c;
  run(&o, pid, sh, port, ticks, &failed, &c);
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  unlink(errpath);
  if (o.csv != NULL)
    write_csv(o.csv, ticks, o.seconds + 1);
  struct rusage self;
  getrusage(RUSAGE_SELF, &self);
  printf("connections                          %d (%d reopened), %d failed scrapes\n",
         c.opened, c.reconnects, failed);
  report_cpu(ticks, o.seconds + 1);
  report_rss(ticks, o.seconds + 1, o.settle);
  report_throughput(ticks, o.seconds + 1, &o);
  printf("scraper's own CPU s                  %.2f\n",
         (double)self.ru_utime.tv_sec + self.ru_stime.tv_sec +
             (self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1e6);
  free(ticks);
  return failed != 0;
}
