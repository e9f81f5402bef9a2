/*
 * test_limits — memory limits, the profiler's and the host's.
 *
 *   test_limits sizes    HEAPPROF_MAX_MEM=16M: far more distinct (stack,
 *                        size) keys than fit; the program runs on, samples
 *                        beyond the cap are dropped and counted, and the
 *                        profile says how many
 *   test_limits stacks   1,048,576 distinct stacks at rate 1 under
 *                        HEAPPROF_MAX_MEM=64M: profiler memory stays under
 *                        the cap, the drops are counted
 *   test_limits ulimit LIB  under RLIMIT_AS, a program allocating until
 *                        malloc fails sees NULL and ENOMEM with and without
 *                        the profiler, and gets about as far
 */
#include <errno.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heapprof.h"
#include "testlib.h"

/* 300,000 distinct sizes at one site: 300,000 buckets wanted. */
static __attribute__((noipa)) void many_sizes(void) {
  for (size_t n = 1; n <= 300000; n++) {
    char *p = malloc(n);
    CHECK(p != NULL, "malloc(%zu) failed", n);
    p[n - 1] = 1;
    free(p);
  }
}

static void sizes(void) {
  many_sizes();
  heapprof_stats_t st;
  CHECK(heapprof_read_stats(&st) == 0, "stats");
  printf("buckets %llu, dropped %llu, profiler memory %llu bytes\n",
         (unsigned long long)st.buckets, (unsigned long long)st.dropped_samples,
         (unsigned long long)st.profiler_bytes);
  CHECK(st.profiler_bytes <= 16u << 20, "profiler memory %llu over the cap",
        (unsigned long long)st.profiler_bytes);
  CHECK(st.dropped_samples > 0, "nothing dropped: the cap was not reached");
  CHECK(st.buckets > 1000, "only %llu buckets recorded",
        (unsigned long long)st.buckets);
  CHECK(st.mallocs >= 300000 && st.frees >= 300000, "counts %llu/%llu",
        (unsigned long long)st.mallocs, (unsigned long long)st.frees);
  char path[512];
  snprintf(path, sizeof path, "%s/limits.pb.gz", tl_tmpdir());
  CHECK(heapprof_write_profile(path, HEAPPROF_HEAP) == 0, "write");
  tl_profile_t p;
  tl_read_profile(path, &p);
  CHECK(strstr(p.raw, "heapprof dropped") != NULL,
        "the profile does not say samples were dropped");
  tl_free_profile(&p);
  printf("ok\n");
}

/* A binary tree of calls, 20 deep: every leaf's stack is different. */
static void node(int depth, unsigned path);
static __attribute__((noipa)) void left(int d, unsigned p) {
  node(d, p);
  __asm__ volatile("" ::: "memory");
}
static __attribute__((noipa)) void right(int d, unsigned p) {
  node(d, p);
  __asm__ volatile("" ::: "memory");
}
static __attribute__((noipa)) void node(int depth, unsigned path) {
  if (depth == 0) {
    char *p = malloc(16);
    __asm__ volatile("" : : "r"(p) : "memory");
    free(p);
  } else if (path & 1) {
    left(depth - 1, path >> 1);
  } else {
    right(depth - 1, path >> 1);
  }
}

static void stacks(void) {
  for (unsigned path = 0; path < (1u << 20); path++)
    node(20, path);
  heapprof_stats_t st;
  CHECK(heapprof_read_stats(&st) == 0, "stats");
  printf("1,048,576 stacks: %llu buckets, %llu dropped, profiler memory %llu "
         "bytes (cap 64M)\n", (unsigned long long)st.buckets,
         (unsigned long long)st.dropped_samples,
         (unsigned long long)st.profiler_bytes);
  CHECK(st.profiler_bytes <= 64u << 20, "over the cap");
  CHECK(st.dropped_samples > 0, "nothing dropped");
  /* Every leaf is one sample with a stack of its own: each made a bucket
   * or was dropped, once (a few hundred other samples come from start-up
   * and the test itself). */
  uint64_t seen = st.buckets + st.dropped_samples;
  CHECK(seen >= 1u << 20 && seen <= (1u << 20) + 1000,
        "buckets + drops = %llu for 1,048,576 distinct stacks",
        (unsigned long long)seen);
  printf("ok\n");
}

/* The child: allocate 1 MiB blocks until malloc fails; print how many. */
static int exhaust(void) {
  struct rlimit lim = {(rlim_t)2 << 30, (rlim_t)2 << 30};
  CHECK(setrlimit(RLIMIT_AS, &lim) == 0, "setrlimit");
  long n = 0;
  void *head = NULL;
  for (;;) {
    errno = 0;
    void **p = malloc(1 << 20);
    if (p == NULL)
      break;
    p[0] = head, head = p, n++;
  }
  CHECK(errno == ENOMEM, "malloc failed with errno %d, not ENOMEM", errno);
  while (head != NULL) {
    void *next = *(void **)head;
    free(head);
    head = next;
  }
  printf("%ld\n", n);
  return 0;
}

static void ulimit_compare(const char *self, const char *lib) {
  char preload[1024];
  snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lib);
  char *plain_env[] = {"PATH=/usr/bin:/bin", NULL};
  char *prof_env[] = {"PATH=/usr/bin:/bin", preload, "HEAPPROF_RATE=1", NULL};
  char *args[] = {(char *)self, "exhaust", NULL};
  char *o1, *e1, *o2, *e2;
  CHECK(tl_run_env(args, plain_env, &o1, &e1) == 0, "plain: %s", e1);
  CHECK(tl_run_env(args, prof_env, &o2, &e2) == 0, "profiled: %s", e2);
  long a = atol(o1), b = atol(o2);
  printf("under a 2 GiB address-space limit: %ld MiB without, %ld MiB with the "
         "profiler (rate 1)\n", a, b);
  CHECK(b >= a * 9 / 10, "the profiler cost more than 10%% of the address space");
  printf("ok\n");
}

int main(int argc, char **argv) {
  CHECK(argc >= 2, "usage: test_limits sizes|stacks|ulimit LIB|exhaust");
  if (strcmp(argv[1], "sizes") == 0)
    sizes();
  else if (strcmp(argv[1], "stacks") == 0)
    stacks();
  else if (strcmp(argv[1], "ulimit") == 0 && argc == 3)
    ulimit_compare(argv[0], argv[2]);
  else if (strcmp(argv[1], "exhaust") == 0)
    return exhaust();
  else
    CHECK(0, "unknown mode %s", argv[1]);
  return 0;
}
