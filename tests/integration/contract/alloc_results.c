/*
 * alloc_results — what each call of the malloc family returns, and the
 * errno it leaves, is what the allocator beneath gives without heapprof:
 * over glibc, jemalloc and tcmalloc, at every rate.
 *
 * tests/test_errno.c compares the edge cases over glibc; this adds what a
 * program may rely on there and elsewhere:
 * - memalign, aligned_alloc and posix_memalign at every power of two from
 *   1 B to 1 MiB (and 3, 48), with the alignment checked;
 * - malloc, calloc and realloc aligned to alignof(max_align_t) from 16 B up;
 * - calloc zeroing memory that was dirty just before it was freed;
 * - malloc_usable_size covering the size asked;
 * - realloc(p, 0), realloc(p, 2^62) and the overflowing
 *   reallocarray(p, 2^62, 4) on a block from every allocation function,
 *   the block intact after a failure (not 2^63 or more: jemalloc's own
 *   realloc then fails without setting errno, where heapprof, moving a
 *   sampled block, sets ENOMEM as POSIX asks — nothing a program can rely
 *   on);
 * - errno kept by every successful call, in the main thread, in a new
 *   thread's first allocations and in a forked child's first allocations
 *   (where heapprof registers the thread, or restarts its dump thread).
 * At the default rate few of these calls are sampled: the rate-1 and
 * rate-4096 runs are the ones that put them through heapprof's slow paths.
 *
 * The test writes its table with heapprof, runs itself again with the same
 * allocator and without heapprof, and the tables must match line for line.
 *
 * usage: alloc_results glibc|jemalloc|tcmalloc [--table]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc_common.h"

static char table[1 << 17];
static size_t used;
static int no_pvalloc; /* jemalloc: glibc's pvalloc answers and crashes */

#define ROW(...)                                                               \
  (used += (size_t)snprintf(table + used, sizeof table - used, __VA_ARGS__))

enum fn { MALLOC, CALLOC, MEMALIGN, ALIGNED_ALLOC, POSIX_MEMALIGN, VALLOC,
          PVALLOC, FNS };
static const char *const fn_name[FNS] = {
    "malloc", "calloc", "memalign(64)", "aligned_alloc(64)",
    "posix_memalign(64)", "valloc", "pvalloc"};

static void *make(int fn, size_t n) {
  void *p = NULL;
  switch (fn) {
  case MALLOC: return malloc(n);
  case CALLOC: return calloc(1, n);
  case MEMALIGN: return memalign(64, n);
  case ALIGNED_ALLOC: return aligned_alloc(64, (n + 63) & ~(size_t)63);
  case POSIX_MEMALIGN: return posix_memalign(&p, 64, n) == 0 ? p : NULL;
  case VALLOC: return valloc(n);
  default: return pvalloc(n);
  }
}

/* The aligned family at every alignment: NULL or not, errno (or the
 * return code), the alignment asked for (16 from 16 bytes up), and
 * usable ≥ size. */
static void aligned_rows(void) {
  static const size_t sizes[] = {1, 100, 4096, 100000};
  for (int shift = -2; shift <= 20; shift++) {
    size_t align = shift == -2 ? 3 : shift == -1 ? 48 : (size_t)1 << shift;
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
      size_t n = sizes[s], want = align & (align - 1) ? 1 : align;
      if (n >= 16 && want < 16)
        want = 16; /* (3 and 48 are not alignments: no check) */
      for (int how = 0; how < 3; how++) {
        void *p = NULL;
        int rc = 0;
        errno = 4242;
        if (how == 0)
          p = memalign(align, n);
        else if (how == 1)
          p = aligned_alloc(align, n);
        else
          rc = posix_memalign(&p, align, n);
        int err = errno;
        ROW("%s(%zu, %zu): %s rc=%d errno=%d aligned=%d usable>=n=%d\n",
            how == 0 ? "memalign" : how == 1 ? "aligned_alloc" : "posix_memalign",
            align, n, p ? "ptr" : "NULL", rc, err,
            p ? (uintptr_t)p % want == 0 : -1,
            p ? malloc_usable_size(p) >= n : -1);
        free(p);
      }
    }
  }
}

/* malloc, calloc and realloc results are aligned to alignof(max_align_t)
 * from 16 bytes up, sampled or not. */
static void max_align_rows(void) {
  int off[3] = {0, 0, 0}, calls = 0;
  void *r = NULL;
  for (size_t n = 16; n <= 70000; n += n < 4096 ? 8 : 4093) {
    void *m = malloc(n), *c = calloc(1, n);
    r = realloc(r, n);
    off[0] += (uintptr_t)m % _Alignof(max_align_t) != 0;
    off[1] += (uintptr_t)c % _Alignof(max_align_t) != 0;
    off[2] += (uintptr_t)r % _Alignof(max_align_t) != 0;
    calls++;
    free(m);
    free(c);
  }
  free(r);
  ROW("of %d malloc/calloc/realloc results from 16 B up, not %zu-aligned: "
      "%d/%d/%d\n", calls, _Alignof(max_align_t), off[0], off[1], off[2]);
}

/* calloc zeroes memory that was dirty a moment ago, sampled or not. */
static void calloc_rows(void) {
  static const size_t sizes[] = {1, 24, 100, 1000, 4096, 40000, 300000};
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
    size_t n = sizes[s];
    long nonzero = 0;
    for (int round = 0; round < 64; round++) {
      void *dirty[8];
      for (int i = 0; i < 8; i++)
        memset(dirty[i] = malloc(n), 0xa5, n);
      for (int i = 0; i < 8; i++)
        free(dirty[i]);
      unsigned char *p = calloc(n, 1);
      for (size_t i = 0; i < n; i++)
        nonzero += p[i] != 0;
      free(p);
    }
    ROW("calloc(%zu, 1) x64 after dirty frees: nonzero bytes=%ld\n", n, nonzero);
  }
}

/* realloc's edges on a block from every allocation function. */
static void realloc_rows(void) {
  volatile size_t huge = (size_t)1 << 62;
  for (int fn = 0; fn < FNS; fn++) {
    if (fn == PVALLOC && no_pvalloc)
      continue;
    for (size_t n = 8; n <= 8192; n *= 32) {
      unsigned char *volatile p = make(fn, n);
      memset(p, 0x5a, n);
      errno = 4242;
      void *q = realloc(p, huge);
      ROW("%s(%zu) realloc(p, 2^62): %s errno=%d intact=%d\n", fn_name[fn],
          n, q ? "ptr" : "NULL", errno, p[0] == 0x5a && p[n - 1] == 0x5a);
      errno = 4242;
      q = reallocarray(p, huge, 4);
      ROW("%s(%zu) reallocarray(p, 2^62, 4): %s errno=%d intact=%d\n",
          fn_name[fn], n, q ? "ptr" : "NULL", errno,
          p[0] == 0x5a && p[n - 1] == 0x5a);
      errno = 4242;
      q = realloc(p, 0);
      ROW("%s(%zu) realloc(p, 0): %s errno=%d\n", fn_name[fn], n,
          q ? "ptr" : "NULL", errno);
      free(q);
    }
  }
  errno = 4242;
  void *q = realloc(NULL, 0);
  ROW("realloc(NULL, 0): %s errno=%d\n", q ? "ptr" : "NULL", errno);
  free(q);
}

/* Every successful call leaves errno as it was; `where` names the thread.
 * One row whatever happens, so that the tables stay line for line. */
static void errno_rows(const char *where) {
  int changed = 0, calls = 0;
  char first[160] = "";
#define KEEP(stmt)                                                             \
  do {                                                                         \
    errno = 4242;                                                              \
    stmt;                                                                      \
    calls++;                                                                   \
    if (errno != 4242 && changed++ == 0)                                       \
      snprintf(first, sizeof first, "; the first: errno %d after %s (%s, %zu)", \
               errno, #stmt, fn < FNS ? fn_name[fn] : "-", n);                 \
  } while (0)
  for (int i = 0; i < 200; i++) {
    size_t n = 1 + (size_t)i * 97;
    void *p, *q;
    int fn;
    for (fn = 0; fn < FNS; fn++) {
      if (fn == PVALLOC && no_pvalloc)
        continue;
      KEEP(p = make(fn, n));
      KEEP(q = realloc(p, 2 * n + 1));
      KEEP(p = realloc(q, n / 2 + 1));
      KEEP(malloc_usable_size(p));
      KEEP(free(p));
    }
    KEEP(p = reallocarray(NULL, 3, n));
    KEEP(free(p));
  }
  ROW("%s: %d successful calls, %d changed errno%s\n", where, calls, changed,
      first);
}

static void *thread_rows(void *arg) {
  errno_rows(arg);
  return NULL;
}

static void build_table(void) {
  errno_rows("main thread");
  pthread_t t;
  CHECK(pthread_create(&t, NULL, thread_rows, "new thread") == 0, "thread");
  pthread_join(t, NULL);
  aligned_rows();
  max_align_rows();
  calloc_rows();
  realloc_rows();
  errno = 4242;
  free(NULL);
  ROW("free(NULL) errno=%d\n", errno);
  errno = 4242;
  ROW("malloc_usable_size(NULL)=%zu errno=%d\n", malloc_usable_size(NULL), errno);

  /* A forked child's first allocations, its rows sent back by a pipe. */
  int fds[2];
  CHECK(pipe(fds) == 0, "pipe");
  fflush(NULL);
  pid_t pid = fork();
  CHECK(pid >= 0, "fork");
  if (pid == 0) {
    used = 0;
    errno_rows("forked child");
    ssize_t w = write(fds[1], table, used);
    _exit(w == (ssize_t)used ? 0 : 1);
  }
  close(fds[1]);
  ssize_t r;
  while ((r = read(fds[0], table + used, sizeof table - used - 1)) > 0)
    used += (size_t)r;
  close(fds[0]);
  int status;
  CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
            WEXITSTATUS(status) == 0, "forked child failed");
  table[used] = '\0';
}

/* The same program with the same allocator and no heapprof. */
static char *bare_table(const char *beneath) {
  /* LD_PRELOAD without its first entry, heapprof. */
  const char *pre = getenv("LD_PRELOAD");
  const char *rest = pre ? strchr(pre, ':') : NULL;
  char preload[4096];
  snprintf(preload, sizeof preload, "LD_PRELOAD=%s", rest ? rest + 1 : "");
  char **env = tl_env((const char *const[]){"LD_PRELOAD=", "HEAPPROF_", NULL},
                      rest != NULL ? preload : NULL);
  char self[4096];
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  CHECK(len > 0, "readlink /proc/self/exe");
  self[len] = '\0';
  char *argv[] = {self, (char *)beneath, "--table", NULL};
  char *out, *err;
  int rc = tl_run_env(argv, env, &out, &err);
  CHECK(rc == 0, "the run without heapprof failed (%d):\n%s", rc, err);
  free(env);
  free(err);
  return out;
}

int main(int argc, char **argv) {
  CHECK(argc == 2 || (argc == 3 && strcmp(argv[2], "--table") == 0),
        "usage: alloc_results glibc|jemalloc|tcmalloc [--table]");
  int bare = argc == 3;
  alloc_expect_beneath(argv[1], bare);
  no_pvalloc = strcmp(argv[1], "jemalloc") == 0;
  build_table();
  if (bare) {
    fputs(table, stdout);
    return 0;
  }
  char *plain = bare_table(argv[1]);
  if (strcmp(plain, table) != 0) {
    char *a = plain, *b = table;
    int differ = 0; /* every row is always there: compare line by line */
    while (*a || *b) {
      size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
      if ((la != lb || memcmp(a, b, la) != 0) && differ++ < 20)
        fprintf(stderr, "- %.*s\n+ %.*s\n", (int)la, a, (int)lb, b);
      a += la + (a[la] != '\0');
      b += lb + (b[lb] != '\0');
    }
    CHECK(0, "%d rows differ with heapprof (+) and without (-)", differ);
  }
  printf("ok: %zu bytes of results identical with and without heapprof over "
         "%s%s\n", used, argv[1], no_pvalloc ? " (no pvalloc: jemalloc has none)" : "");
  return 0;
}
