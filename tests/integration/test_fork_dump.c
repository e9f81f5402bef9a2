/*
 * test_fork_dump — a forked child answers its own dump signal with its own
 * profile (its pid in %p), while the parent's dumps go on.
 * Run preloaded with HEAPPROF_OUT=DIR/f.%p.%n.pb.gz.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"

static void *volatile sink;

/* Waits up to 10 s for `path`; 0 when it is there. */
static int wait_for(const char *path) {
  struct timespec pause = {0, 20000000};
  for (int i = 0; i < 500; i++, nanosleep(&pause, NULL))
    if (access(path, F_OK) == 0)
      return 0;
  return -1;
}

static __attribute__((noipa)) void child_alloc(void) {
  sink = malloc(1 << 20);
}

int main(int argc, char **argv) {
  CHECK(argc == 2, "usage: test_fork_dump DIR");
  const char *dir = argv[1];
  char path[1024];
  sink = malloc(1 << 20);
  pid_t pid = fork();
  if (pid == 0) {
    alarm(20);
    child_alloc(); /* starts the child's dump thread */
    kill(getpid(), SIGUSR2);
    snprintf(path, sizeof path, "%s/f.%d.1.pb.gz", dir, (int)getpid());
    _exit(wait_for(path) == 0 ? 0 : 3);
  }
  int status;
  CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "the child's signal gave no profile of its own (status %d)", status);
  snprintf(path, sizeof path, "%s/f.%d.1.pb.gz", dir, (int)pid);
  tl_profile_t p;
  tl_read_profile(path, &p);
  int64_t v[4];
  CHECK(tl_site(&p, "child_alloc", v) > 0, "the child's profile lacks child_alloc");
  tl_free_profile(&p);
  kill(getpid(), SIGUSR2); /* and the parent still dumps */
  snprintf(path, sizeof path, "%s/f.%d.1.pb.gz", dir, (int)getpid());
  CHECK(wait_for(path) == 0, "the parent's dump did not appear");
  printf("ok: child %d and parent %d each wrote their own profile\n", (int)pid,
         (int)getpid());
  return 0;
}
