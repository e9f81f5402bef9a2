/*
 * proc_fork_signal — a dump signal is never lost in a forked child, even
 * one that arrives before the child's first allocation (when the child has
 * no dump thread yet: it starts one at that allocation).
 *
 * The child of fork raises SIGUSR2 at once, before allocating anything (a
 * pre-forked worker asked for a profile while it waits for work), then
 * allocates (its first allocation starts its dump thread) and waits up to
 * 20 s for its profile f.<pid>.1.pb.gz, which must appear, complete. (It
 * answers a signal sent before that allocation, so it may or may not hold
 * it; it holds what the child inherited, parent_site.)
 *
 * usage: proc_fork_signal DIR   (preloaded, HEAPPROF_RATE=1,
 *                                HEAPPROF_OUT=DIR/f.%p.%n.pb.gz)
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc_common.h"
#include "testlib.h"

static void *volatile sink;

static __attribute__((noipa)) void parent_site(void) { sink = malloc(1 << 20); }
static __attribute__((noipa)) void child_site(void) { sink = malloc(1 << 20); }

int main(int argc, char **argv) {
  CHECK(argc == 2, "usage: proc_fork_signal DIR");
  CHECK(pc_api("heapprof_dump") != NULL, "libheapprof.so is not preloaded");
  pc_deadline(60);
  parent_site();
  char path[1024];
  fflush(NULL);
  pid_t pid = fork();
  CHECK(pid >= 0, "fork");
  if (pid == 0) {
    raise(SIGUSR2); /* before the child's first allocation */
    child_site();
    snprintf(path, sizeof path, "%s/f.%d.1.pb.gz", argv[1], (int)getpid());
    _exit(pc_wait_file(path, 20) == 0 ? 0 : 3);
  }
  int status;
  pc_stage("waiting for the child");
  CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "the child's SIGUSR2, received before its first allocation, never "
        "gave a profile (status 0x%x): the signal was lost", status);
  snprintf(path, sizeof path, "%s/f.%d.1.pb.gz", argv[1], (int)pid);
  tl_profile_t p;
  tl_read_profile(path, &p);
  int64_t v[4];
  CHECK(tl_site(&p, "parent_site", v) > 0, "the child's profile lacks "
                                           "parent_site");
  tl_free_profile(&p);
  unlink(path);
  printf("ok: the child's early SIGUSR2 gave its profile\n");
  return 0;
}
