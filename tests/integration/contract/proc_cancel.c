/*
 * proc_cancel — malloc, calloc, realloc and free are not cancellation
 * points (POSIX lists none of them), whatever heapprof trigger is on
 * (behaviour B4, docs/RELIABILITY.md).
 *
 * A thread with deferred cancellation (the default) holds a mutex around
 * a burst of allocation calls, in a loop; each burst keeps one 4 KiB block,
 * so the in-use estimate grows steadily and, with HEAPPROF_GROWTH=1M and
 * HEAPPROF_RATE=1, the growth trigger fires every 256 bursts from this
 * very thread. The main thread cancels it before its first allocation, so
 * the cancellation is pending through everything heapprof does for this
 * thread, first sample and first stack included. The thread makes 4,096
 * bursts (16 growth steps), then leaves the mutex and calls
 * pthread_testcancel(). A cleanup handler records where the cancellation
 * acted: inside an allocation call (heapprof made one a cancellation
 * point: the thread dies holding the mutex, as a program's lock would)
 * or at pthread_testcancel, where it must. The mutex must be free after.
 *
 * With the growth trigger on (mode "growth") the test also waits for the
 * growth profiles to appear, so it cannot pass with a trigger that never
 * fired.
 *
 * usage: proc_cancel growth|other DIR    (run preloaded; HEAPPROF_OUT in DIR)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proc_common.h"
#include "testlib.h"

#define BURSTS 4096 /* after the cancel: 16 MiB kept, 16 growth steps */
#define KEPT (BURSTS + 16)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *volatile kept[KEPT]; /* volatile: the calls are not elided */
static _Atomic long bursts;
static _Atomic int ready, cancel_sent;
static volatile int in_alloc;   /* inside an allocation call */
static volatile int holding;    /* holding `lock` */
static volatile int cancelled_in_alloc = -1, cancelled_holding = -1;
static volatile long cancelled_at_burst = -1;
static volatile int reached_end;

static void cleanup(void *arg) {
  (void)arg;
  cancelled_in_alloc = in_alloc;
  cancelled_holding = holding;
  cancelled_at_burst = atomic_load(&bursts);
}

static __attribute__((noipa)) void burst(long i) {
  in_alloc = 1;
  kept[i % KEPT] = malloc(4096);
  char *c = calloc(1, 100 + i % 64);
  __asm__ volatile("" : : "r"(c) : "memory");
  c = realloc(c, 5000 + i % 64);
  __asm__ volatile("" : : "r"(c) : "memory");
  free(c);
  void *m = malloc(200 + i % 128);
  __asm__ volatile("" : : "r"(m) : "memory");
  free(m);
  in_alloc = 0;
}

/* BURSTS bursts under the mutex. */
static __attribute__((noipa)) void run_bursts(void) {
  for (long i = 0; i < BURSTS; i++) {
    pthread_mutex_lock(&lock);
    holding = 1;
    burst(i);
    holding = 0;
    pthread_mutex_unlock(&lock);
    atomic_fetch_add(&bursts, 1);
  }
}

static void *worker(void *arg) {
  (void)arg;
  pthread_cleanup_push(cleanup, NULL);
  atomic_store(&ready, 1);
  while (!atomic_load(&cancel_sent)) /* no cancellation point here */
    sched_yield();
  run_bursts();
  pthread_testcancel(); /* the one cancellation point of this thread */
  reached_end = 1;
  pthread_cleanup_pop(0);
  return NULL;
}

/* Profiles this process wrote into dir (p.<pid>.*.pb.gz). */
static int count_profiles(const char *dir) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "p.%d.", (int)getpid());
  DIR *d = opendir(dir);
  CHECK(d != NULL, "cannot open %s", dir);
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    size_t len = strlen(e->d_name);
    if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && len > 6 &&
        strcmp(e->d_name + len - 6, ".pb.gz") == 0)
      n++;
  }
  closedir(d);
  return n;
}

static void remove_profiles(const char *dir) {
  char prefix[64], path[4200];
  snprintf(prefix, sizeof prefix, "p.%d.", (int)getpid());
  DIR *d = opendir(dir);
  for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
    if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      unlink(path);
    }
  if (d != NULL)
    closedir(d);
}

int main(int argc, char **argv) {
  CHECK(argc == 3, "usage: proc_cancel growth|other DIR");
  int growth = strcmp(argv[1], "growth") == 0;
  CHECK(pc_api("heapprof_dump") != NULL, "libheapprof.so is not preloaded");
  pc_deadline(60);
  pthread_t t;
  CHECK(pthread_create(&t, NULL, worker, NULL) == 0, "pthread_create");
  pc_stage("waiting for the thread to start");
  struct timespec pause = {0, 1000000};
  while (!atomic_load(&ready))
    nanosleep(&pause, NULL);
  CHECK(pthread_cancel(t) == 0, "pthread_cancel");
  atomic_store(&cancel_sent, 1);
  pc_stage("joining the cancelled thread");
  void *res;
  CHECK(pthread_join(t, &res) == 0, "pthread_join");
  CHECK(!reached_end && res == PTHREAD_CANCELED,
        "the thread was never cancelled (the test itself is broken)");
  CHECK(cancelled_in_alloc == 0 && cancelled_holding == 0,
        "the thread was cancelled inside an allocation call (in_alloc=%d, "
        "holding the mutex=%d, at burst %ld of %d): heapprof made "
        "malloc/calloc/realloc/free a cancellation point",
        cancelled_in_alloc, cancelled_holding, cancelled_at_burst, BURSTS);
  int r = pthread_mutex_trylock(&lock);
  CHECK(r == 0, "the program's mutex is still locked after the cancellation "
                "(trylock: %s)", strerror(r));
  pthread_mutex_unlock(&lock);
  CHECK(cancelled_at_burst == BURSTS,
        "cancelled after %ld bursts, before the loop ended",
        cancelled_at_burst);
  if (growth) {
    /* The growth trigger fired from the cancelled thread: its profiles
     * appear (16 steps were crossed; at least two must be written). */
    pc_stage("waiting for the growth profiles in %s", argv[2]);
    while (count_profiles(argv[2]) < 2)
      nanosleep(&pause, NULL);
  }
  printf("ok: cancelled at pthread_testcancel after %ld bursts, never inside "
         "malloc/calloc/realloc/free; mutex free%s\n",
         cancelled_at_burst, growth ? "; growth profiles written" : "");
  remove_profiles(argv[2]);
  return 0;
}
