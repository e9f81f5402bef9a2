/*
 * test_exit — allocation at the edges of a process's life: in atexit
 * handlers, in thread-specific-data destructors, and from a detached
 * thread still allocating when main returns. The program runs as a child
 * under the profiler; it must exit 0 and its exit profile must appear,
 * complete, with the atexit handler's allocation in it.
 *
 * usage: test_exit LIBHEAPPROF   (the child: test_exit --child)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

static void *volatile keep;
static pthread_key_t key;

static __attribute__((noipa)) void *at_exit_site(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}

static void in_atexit(void) {
  free(malloc(1000));
  keep = at_exit_site(16 << 20); /* alive at the exit profile; at the
                                  * default rate sampled with p ≈ 1 − e^-32 */
}

static void tsd_destructor(void *v) {
  free(v);
  free(malloc(300)); /* allocation inside a TSD destructor */
}

static void *detached(void *arg) {
  (void)arg;
  for (;;) { /* still allocating while the process exits */
    void *p = malloc(64);
    __asm__ volatile("" : : "r"(p) : "memory");
    free(p);
  }
  return NULL;
}

static void *with_tsd(void *arg) {
  (void)arg;
  pthread_setspecific(key, malloc(100));
  return NULL;
}

static int child(void) {
  atexit(in_atexit);
  pthread_key_create(&key, tsd_destructor);
  pthread_t t;
  for (int i = 0; i < 8; i++) {
    pthread_create(&t, NULL, with_tsd, NULL);
    pthread_join(t, NULL);
  }
  for (int i = 0; i < 2; i++) {
    pthread_create(&t, NULL, detached, NULL);
    pthread_detach(t);
  }
  usleep(20000);
  return 0; /* exit: atexit handlers, then the profiler's exit profile */
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--child") == 0)
    return child();
  CHECK(argc == 2, "usage: test_exit LIBHEAPPROF");
  char preload[1024], out[1100], path[1100];
  snprintf(preload, sizeof preload, "LD_PRELOAD=%s", argv[1]);
  snprintf(out, sizeof out, "HEAPPROF_OUT=%s/exit.%%n.pb.gz", tl_tmpdir());
  for (int rate = 0; rate < 2; rate++) {
    char *env[] = {"PATH=/usr/bin:/bin", preload, out,
                   rate ? "HEAPPROF_RATE=1" : "HEAPPROF_RATE=524288", NULL};
    char *args[] = {argv[0], "--child", NULL};
    char *o, *e;
    int rc = tl_run_env(args, env, &o, &e);
    CHECK(rc == 0, "child exit %d: %s", rc, e);
    snprintf(path, sizeof path, "%s/exit.1.pb.gz", tl_tmpdir());
    tl_profile_t p;
    tl_read_profile(path, &p);
    int64_t v[4];
    CHECK(tl_site(&p, "at_exit_site", v) > 0 && v[3] > 0,
          "the exit profile lacks the atexit allocation:\n%s", p.raw);
    printf("rate %s: exit profile has at_exit_site in use %lld B\n",
           rate ? "1" : "default", (long long)v[3]);
    tl_free_profile(&p);
    unlink(path);
  }
  printf("ok\n");
  return 0;
}
