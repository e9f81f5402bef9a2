/*
 * test_fork — fork from a process whose threads allocate at rate 1 (every
 * allocation takes the profiler's slow path and its locks): no child
 * hangs, each child allocates, frees and writes its own profile; and
 * posix_spawn and vfork + exec (which run no fork handlers) never hang.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <spawn.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heapprof.h"
#include "testlib.h"

#define FORKS 40

static atomic_int stop;
/* Volatile: the compiler deletes free(malloc(n)) pairs otherwise. */
static void *volatile sink;

static void *churn(void *arg) {
  (void)arg;
  while (!atomic_load(&stop)) {
    void *p = malloc(64);
    sink = p;
    free(p);
  }
  return NULL;
}

static __attribute__((noipa)) void child_work(void) {
  for (int i = 0; i < 1000; i++) {
    sink = malloc(100 + (size_t)i);
    free(sink);
  }
}

int main(void) {
  tl_tmpdir(); /* created once, here: children must share it */
  pthread_t t[3];
  for (int i = 0; i < 3; i++)
    pthread_create(&t[i], NULL, churn, NULL);
  for (int f = 0; f < FORKS; f++) {
    pid_t pid = fork();
    CHECK(pid >= 0, "fork failed");
    if (pid == 0) {
      alarm(20); /* a hang fails the test instead of stalling it */
      child_work();
      char path[512];
      snprintf(path, sizeof path, "%s/child.%d.pb.gz", tl_tmpdir(), f);
      _exit(heapprof_write_profile(path, HEAPPROF_HEAP) == 0 ? 0 : 3);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "child %d: %s %d", f, WIFSIGNALED(status) ? "signal" : "exit",
          WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
  }
  extern char **environ;
  for (int f = 0; f < 30; f++) {
    char *argv[] = {"/bin/true", NULL};
    pid_t pid;
    CHECK(posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ) == 0,
          "posix_spawn");
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
              WEXITSTATUS(status) == 0, "spawned /bin/true failed");
    pid = vfork();
    if (pid == 0) {
      execve("/bin/true", argv, environ);
      _exit(127);
    }
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
              WEXITSTATUS(status) == 0, "vfork + exec /bin/true failed");
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < 3; i++)
    pthread_join(t[i], NULL);
  char path[512];
  snprintf(path, sizeof path, "%s/child.%d.pb.gz", tl_tmpdir(), FORKS - 1);
  tl_profile_t p;
  tl_read_profile(path, &p);
  int64_t v[4];
  CHECK(tl_site(&p, "child_work", v) > 0 && v[0] == 1000 && v[2] == 0,
        "child profile: child_work alloc %lld inuse %lld", (long long)v[0],
        (long long)v[2]);
  tl_free_profile(&p);
  printf("ok: %d forks under 3 allocating threads\n", FORKS);
  return 0;
}
