/*
 * test_exec — an exec chain under the profiler: the program execs itself
 * 20 times (each image starts heapprof afresh from LD_PRELOAD, allocates
 * on the way), and the last one exits normally and writes its exit
 * profile. exec runs no destructors, so only the last image writes one.
 *
 * usage: test_exec DIR [N]   (run preloaded, HEAPPROF_OUT=DIR/e.%p.%n.pb.gz)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

static __attribute__((noipa)) void *chain_alloc(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}

int main(int argc, char **argv) {
  CHECK(argc >= 2, "usage: test_exec DIR [N]");
  int n = argc == 3 ? atoi(argv[2]) : 20;
  chain_alloc(8 << 20); /* sampled in every image */
  if (n > 0) {
    char next[16];
    snprintf(next, sizeof next, "%d", n - 1);
    char *args[] = {argv[0], argv[1], next, NULL};
    execv("/proc/self/exe", args);
    CHECK(0, "exec failed");
  }
  /* The last image: its exit profile is e.<pid>.1.pb.gz; the pid is the
   * same through the whole chain. */
  char path[1024];
  snprintf(path, sizeof path, "%s/e.%d.1.pb.gz", argv[1], (int)getpid());
  printf("exec chain done in pid %d; the exit profile will be %s\n",
         (int)getpid(), path);
  return 0;
}
