/*
 * proc_fork_errno — a forked child starts with the errno its parent had
 * before fork(): heapprof's fork handlers (which close, in the child, the
 * server's sockets where they share the program's table) leave it alone.
 * Run with HEAPPROF_HTTP (the server and its fork handler live) and a
 * rate that makes heapprof's threads start; a child exits 0 only if it
 * sees the parent's errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc_common.h"
#include "testlib.h"

#define SENTINEL 4242
#define CHILDREN 50

int main(void) {
  pc_deadline(60);
  for (int i = 0; i < 1000; i++)
    free(malloc(100000)); /* samples: heapprof's threads are up */
  usleep(200000);         /* and its HTTP server is serving */
  int changed = 0;
  for (int i = 0; i < CHILDREN; i++) {
    errno = SENTINEL;
    pid_t pid = fork();
    if (pid == 0)
      _exit(errno == SENTINEL ? 0 : 1);
    CHECK(pid > 0, "fork: %s", strerror(errno));
    int status;
    CHECK(pc_wait(pid, 30, &status) == 0, "child %d did not end", i);
    changed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
  }
  CHECK(changed == 0, "%d of %d forked children saw an errno other than "
        "their parent's %d", changed, CHILDREN, SENTINEL);
  printf("ok: %d children kept their parent's errno\n", CHILDREN);
  return 0;
}
