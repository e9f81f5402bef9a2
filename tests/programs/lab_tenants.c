/*
 * lab_tenants — a program the label tests (the scripts of tests/integration/labels,
 * issue 14) drive line by line on stdin, to put known bytes under known
 * labels and ask for profiles at known moments. Linked with heapprof.
 *
 * It says "ready" first, then answers each command with one line that
 * starts with "ok" (or "err <why>"):
 *
 *   push KEY VALUE      heapprof_label_push        -> ok RC
 *   pop                 heapprof_label_pop         -> ok RC
 *   alloc G N SIZE      N blocks of SIZE bytes from one call site
 *                       (lab_alloc), kept in group G (a small integer)
 *                                                  -> ok T0 T1
 *                       T0, T1: CLOCK_REALTIME ns before the first and
 *                       after the last allocation (the HTTP test places
 *                       them inside a ?seconds= window)
 *   free G              frees every block of group G -> ok COUNT
 *   write PATH KIND     heapprof_write_profile, KIND heap|allocs|peak
 *                                                  -> ok RC
 *   dump                heapprof_dump              -> ok RC PATH
 *
 * At the end of stdin it returns 0 from main (the exit profile). A value
 * with spaces cannot be pushed: the tests need none.
 *
 * Nothing here allocates but lab_alloc: stdio runs on static buffers, so
 * every byte a profile shows under a label is one the test asked for.
 * A signal (heapprof's dump signal) that interrupts the read of stdin is
 * not the end of the input.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <heapprof.h>

#define GROUPS 16
#define PER_GROUP 100000

static void *blocks[GROUPS][PER_GROUP];
static size_t counts[GROUPS];
static char inbuf[4096], outbuf[4096];

__attribute__((noinline)) void *lab_alloc(size_t n) {
  void *p = malloc(n);
  if (p != NULL)
    memset(p, 0x5a, n < 64 ? n : 64);
  __asm__ volatile("" ::: "memory");
  return p;
}

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int kind_of(const char *s, heapprof_kind_t *k) {
  if (strcmp(s, "heap") == 0)
    *k = HEAPPROF_HEAP;
  else if (strcmp(s, "allocs") == 0)
    *k = HEAPPROF_ALLOCS;
  else if (strcmp(s, "peak") == 0)
    *k = HEAPPROF_PEAK;
  else
    return -1;
  return 0;
}

static void command(char *line) {
  char a[512], b[512];
  unsigned g;
  size_t n, size;
  line[strcspn(line, "\n")] = '\0';
  if (sscanf(line, "push %511s %511s", a, b) == 2) {
    printf("ok %d\n", heapprof_label_push(a, b));
  } else if (strcmp(line, "pop") == 0) {
    printf("ok %d\n", heapprof_label_pop());
  } else if (sscanf(line, "alloc %u %zu %zu", &g, &n, &size) == 3) {
    if (g >= GROUPS || counts[g] + n > PER_GROUP) {
      printf("err group %u is full or not a group\n", g);
      return;
    }
    long long t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
      void *p = lab_alloc(size);
      if (p == NULL) {
        printf("err malloc(%zu) failed\n", size);
        return;
      }
      blocks[g][counts[g]++] = p;
    }
    long long t1 = now_ns();
    printf("ok %lld %lld\n", t0, t1);
  } else if (sscanf(line, "free %u", &g) == 1 && g < GROUPS) {
    size_t freed = counts[g];
    while (counts[g] > 0)
      free(blocks[g][--counts[g]]);
    printf("ok %zu\n", freed);
  } else if (sscanf(line, "write %511s %511s", a, b) == 2) {
    heapprof_kind_t k;
    if (kind_of(b, &k) != 0)
      printf("err kind %s\n", b);
    else
      printf("ok %d\n", heapprof_write_profile(a, k));
  } else if (strcmp(line, "dump") == 0) {
    char path[4096] = "";
    int rc = heapprof_dump(path, sizeof path);
    printf("ok %d %s\n", rc, path);
  } else {
    printf("err what is '%s'\n", line);
  }
}

int main(void) {
  char line[1200];
  setvbuf(stdin, inbuf, _IOFBF, sizeof inbuf);
  setvbuf(stdout, outbuf, _IOLBF, sizeof outbuf);
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    errno = 0;
    if (fgets(line, sizeof line, stdin) == NULL) {
      if (ferror(stdin) && errno == EINTR) {
        clearerr(stdin);
        continue;
      }
      break;
    }
    command(line);
    fflush(stdout);
  }
  return 0;
}
