/*
 * spawn — heapprof's threads.
 *
 * glibc counts a process's threads in __nptl_nthreads and calls exit(0)
 * when the last one ends without calling exit (pthread_exit in main and
 * the others return; a child forked from a worker thread whose function
 * returns). heapprof's threads never end on their own, so each is taken
 * out of that count: the process ends when the program's last thread
 * does, on that thread, as it would without heapprof. The program thread
 * that created the heapprof thread does the uncounting, right after
 * pthread_create counted it: the creator is alive, so the count cannot
 * reach 0 there. Where the symbol is missing (not glibc), nothing is
 * uncounted.
 */
#define _GNU_SOURCE
#include "spawn.h"

#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fdtable.h"
#include "thread.h"

static unsigned int *nptl_nthreads; /* found at start-up */

void spawn_resolve(void) {
  nptl_nthreads = dlvsym(RTLD_DEFAULT, "__nptl_nthreads", "GLIBC_PRIVATE");
}

static void nthreads_add(int delta) {
  if (nptl_nthreads != NULL)
    __atomic_add_fetch(nptl_nthreads, (unsigned)delta, __ATOMIC_SEQ_CST);
}

typedef struct start {
  void *(*fn)(void *);
  void *arg;
  char name[16];
  spawned_t *joinable;
} start_t;

/* Every heapprof thread starts here: never sampled, uncounted, with a
 * descriptor table of its own. */
static void *trampoline(void *arg) {
  hp_self.busy = 1;
  start_t s = *(start_t *)arg;
  free(arg);
  pthread_setname_np(pthread_self(), s.name);
  if (s.joinable != NULL)
    atomic_store(&s.joinable->tid, gettid());
  fdtable_private();
  void *r = s.fn(s.arg);
  nthreads_add(1); /* glibc takes an ending thread out of the count */
  return r;
}

int spawn_thread(const char *name, void *(*fn)(void *), void *arg,
                 spawned_t *joinable) {
  start_t *s = malloc(sizeof *s);
  if (s == NULL) {
    errno = ENOMEM;
    return -1;
  }
  s->fn = fn;
  s->arg = arg;
  s->joinable = joinable;
  if (joinable != NULL)
    atomic_store(&joinable->tid, 0);
  snprintf(s->name, sizeof s->name, "%s", name);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t t;
  int rc = pthread_create(&t, NULL, trampoline, s);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    free(s);
    errno = rc;
    return -1;
  }
  nthreads_add(-1);
  if (joinable != NULL)
    joinable->handle = t;
  else
    pthread_detach(t);
  return 0;
}

void spawn_join(spawned_t *t) {
  pthread_join(t->handle, NULL);
  /* pthread_join returns when the thread's id word is cleared, a moment
   * before the kernel releases the thread; until then the process still
   * counts as threaded. A signal 0 finds it until it is gone. */
  pid_t tid = atomic_load(&t->tid);
  for (int tries = 0; tid > 0 && tries < 200 &&
                      syscall(SYS_tgkill, getpid(), tid, 0) == 0; tries++) {
    struct timespec pause = {0, 1000000};
    nanosleep(&pause, NULL);
  }
}
