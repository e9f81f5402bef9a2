/*
 * proc_cancel_api — cancelling a thread that is inside a heapprof API call
 * never leaves heapprof stuck: later dumps and the exit profile are
 * written, and the process exits.
 *
 * A thread calls heapprof_write_profile_fd() on a one-page pipe that
 * nobody reads yet; the profile (3,000 buckets at HEAPPROF_RATE=1) is
 * larger, so the write blocks. The main thread cancels that thread — a
 * program may cancel any thread, and a blocked write() is where deferred
 * cancellation acts — then drains the pipe and joins it. Then the main
 * thread writes a profile with heapprof_write_profile, which must return
 * and decode, and the process exits normally, writing its exit profile
 * (HEAPPROF_OUT), within the deadline. If heapprof let the cancellation
 * act while it held its dump lock, the lock is never released and both
 * hang.
 *
 * usage: proc_cancel_api DIR   (preloaded, HEAPPROF_RATE=1, HEAPPROF_OUT
 *                               in DIR)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proc_common.h"
#include "testlib.h"

#define NBUCKETS 3000

static int pipefd[2];
static void *volatile sink[NBUCKETS];
static _Atomic pid_t writer_tid;
static _Atomic int writer_returned;
static int writer_rc = -99;

static __attribute__((noipa)) void bucket_site(int i) {
  sink[i] = malloc(64 + (size_t)i * 8);
}

static __attribute__((noipa)) void after_site(void) {
  sink[0] = malloc(7 << 20);
}

static void *writer(void *arg) {
  (void)arg;
  int (*write_fd)(int, int) =
      (int (*)(int, int))pc_api("heapprof_write_profile_fd");
  atomic_store(&writer_tid, gettid());
  writer_rc = write_fd(pipefd[1], 0);
  atomic_store(&writer_returned, 1);
  return NULL;
}

static void *drainer(void *arg) {
  (void)arg;
  char buf[65536];
  while (read(pipefd[0], buf, sizeof buf) > 0)
    ;
  return NULL;
}

int main(int argc, char **argv) {
  CHECK(argc == 2, "usage: proc_cancel_api DIR");
  CHECK(pc_api("heapprof_write_profile_fd") != NULL,
        "libheapprof.so is not preloaded");
  pc_deadline(60);
  for (int i = 0; i < NBUCKETS; i++)
    bucket_site(i);
  CHECK(pipe2(pipefd, O_CLOEXEC) == 0, "pipe2");
  int cap = fcntl(pipefd[1], F_SETPIPE_SZ, 4096);
  CHECK(cap > 0, "F_SETPIPE_SZ: %s", strerror(errno));
  pthread_t w, d;
  CHECK(pthread_create(&w, NULL, writer, NULL) == 0, "pthread_create");
  pc_stage("waiting for the dump to block on the full pipe");
  struct timespec pause = {0, 1000000};
  while (!atomic_load(&writer_returned) &&
         !pc_blocked_in_write(atomic_load(&writer_tid), pipefd[1]))
    nanosleep(&pause, NULL);
  CHECK(!atomic_load(&writer_returned),
        "the profile fit in the pipe: the dump never blocked");
  nanosleep(&pause, NULL);

  CHECK(pthread_cancel(w) == 0, "pthread_cancel");
  CHECK(pthread_create(&d, NULL, drainer, NULL) == 0, "pthread_create");
  pc_stage("joining the thread cancelled inside heapprof_write_profile_fd");
  void *res;
  CHECK(pthread_join(w, &res) == 0, "pthread_join");
  close(pipefd[1]);
  pthread_join(d, NULL);
  printf("the writer %s\n", res == PTHREAD_CANCELED
                                ? "was cancelled inside the call"
                                : "returned from the call");
  if (res != PTHREAD_CANCELED)
    CHECK(writer_rc == 0, "heapprof_write_profile_fd returned %d", writer_rc);

  after_site();
  char path[1024];
  snprintf(path, sizeof path, "%s/after-cancel.%d.pb.gz", argv[1],
           (int)getpid());
  pc_stage("heapprof_write_profile after a thread was cancelled in a dump");
  int rc = tl_write_profile(path, 0);
  CHECK(rc == 0, "heapprof_write_profile returned %d", rc);
  tl_profile_t p;
  tl_read_profile(path, &p);
  int64_t v[4];
  CHECK(tl_site(&p, "after_site", v) > 0, "the profile lacks after_site");
  tl_free_profile(&p);
  unlink(path);
  printf("ok: a later dump works; exiting (the exit profile is next)\n");
  fflush(stdout);
  pc_stage("exit(0): writing the exit profile");
  exit(0);
}
