/*
 * proc_rlimit — a program that uses every descriptor RLIMIT_NOFILE allows
 * still gets its profile on SIGUSR2, and keeps every descriptor it holds.
 *
 * The program lowers RLIMIT_NOFILE to 64 and opens /dev/null until open()
 * fails with EMFILE, as a server at its descriptor limit does. Then it
 * sends itself SIGUSR2: heapprof's dump thread works in a descriptor table
 * of its own (behaviour B2), so the program's full table must not stop the
 * profile, which must appear (20 s deadline), complete, holding the
 * program's allocation; every descriptor the program opened must still be
 * /dev/null afterwards.
 *
 * usage: proc_rlimit DIR   (preloaded, HEAPPROF_OUT=DIR/r.%p.%n.pb.gz)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proc_common.h"
#include "testlib.h"

static void *volatile sink;

static __attribute__((noipa)) void rlimit_site(void) { sink = malloc(3 << 20); }

int main(int argc, char **argv) {
  CHECK(argc == 2, "usage: proc_rlimit DIR");
  CHECK(pc_api("heapprof_dump") != NULL, "libheapprof.so is not preloaded");
  pc_deadline(60);
  rlimit_site();
  struct rlimit rl = {64, 64};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = 64;
  CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit: %s", strerror(errno));
  int fds[64], n = 0, fd;
  while (n < 64 && (fd = open("/dev/null", O_RDONLY)) >= 0)
    fds[n++] = fd;
  CHECK(n < 64 && errno == EMFILE, "open stopped with %s", strerror(errno));
  struct stat null_st;
  CHECK(stat("/dev/null", &null_st) == 0, "stat /dev/null");
  printf("the program holds every descriptor below 64 (%d opened)\n", n);

  char path[1024];
  snprintf(path, sizeof path, "%s/r.%d.1.pb.gz", argv[1], (int)getpid());
  kill(getpid(), SIGUSR2);
  pc_stage("waiting for the profile %s", path);
  CHECK(pc_wait_file(path, 20) == 0,
        "SIGUSR2 gave no profile within 20 s while the program's descriptor "
        "table was full (RLIMIT_NOFILE 64)");
  for (int i = 0; i < n; i++) {
    struct stat st;
    CHECK(fstat(fds[i], &st) == 0 && st.st_rdev == null_st.st_rdev &&
              S_ISCHR(st.st_mode),
          "descriptor %d is no longer the program's /dev/null", fds[i]);
    close(fds[i]);
  }
  tl_profile_t p;
  tl_read_profile(path, &p);
  int64_t v[4];
  CHECK(tl_site(&p, "rlimit_site", v) > 0, "the profile lacks rlimit_site");
  tl_free_profile(&p);
  unlink(path);
  printf("ok: the profile was written with the program's table full\n");
  return 0;
}
