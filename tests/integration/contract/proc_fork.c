/*
 * proc_fork — fork() never waits for a dump in progress (behaviour B5), and
 * a child forked while one is in progress can profile and exit.
 *
 * A dump that stays in progress, deterministically: one thread calls
 * heapprof_write_profile_fd() on a pipe that nobody reads yet, shrunk to
 * one page, with 3,000 buckets recorded at HEAPPROF_RATE=1 so that the
 * profile is several times the pipe's size: the write blocks once the pipe
 * is full, and stays blocked until the test drains it (the test sees the
 * thread asleep in write() on the pipe, in /proc). While it is blocked,
 * another thread forks.
 *
 *   latency  the child _exits at once; fork must return while the dump is
 *            still blocked (its thread still asleep in write()). A fork
 *            that has not returned after 20 s waits for the dump: the test
 *            then drains the pipe and fails.
 *   child    the child, forked while the parent's dump is blocked, mallocs,
 *            writes a profile of its own with heapprof_write_profile and
 *            exits normally (its exit profile too): a lock the parent's
 *            dumping thread held must not be held in the child, whose copy
 *            of that thread does not exist. (Where fork waits for the dump,
 *            the child comes after it: this mode then passes, late; the
 *            latency mode is the one that fails.)
 *
 * Either way the pipe is drained afterwards and the profile read from it
 * must decode (go tool pprof) and hold the buckets.
 *
 * usage: proc_fork latency|child DIR   (preloaded, HEAPPROF_RATE=1,
 *                                       HEAPPROF_OUT=DIR/f.%p.%n.pb.gz)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc_common.h"
#include "testlib.h"

#define NBUCKETS 3000

static int pipefd[2];
static _Atomic pid_t writer_tid;
static _Atomic int writer_returned;
static int writer_rc;
static _Atomic int forked;
static pid_t child_pid;
static const char *mode, *dir;
static void *volatile sink[NBUCKETS];

static __attribute__((noipa)) void bucket_site(int i) {
  sink[i] = malloc(64 + (size_t)i * 8); /* one bucket per size */
}

static void *volatile child_block;

static __attribute__((noipa)) void child_site(void) {
  child_block = malloc(1 << 20); /* stored, not returned: no tail call */
}

static void *writer(void *arg) {
  (void)arg;
  int (*write_fd)(int, int) = (int (*)(int, int))pc_api("heapprof_write_profile_fd");
  atomic_store(&writer_tid, gettid());
  writer_rc = write_fd(pipefd[1], 0 /* HEAPPROF_HEAP */);
  close(pipefd[1]);
  atomic_store(&writer_returned, 1);
  return NULL;
}

/* The child of the "child" mode: profiles itself while the parent's copy
 * of the dumping thread is gone. */
static void child_work(void) {
  alarm(20); /* a hang here kills the child with SIGALRM */
  child_site();
  char path[1024];
  snprintf(path, sizeof path, "%s/child.%d.pb.gz", dir, (int)getpid());
  int rc = tl_write_profile(path, 0);
  if (rc != 0) {
    dprintf(2, "child: heapprof_write_profile(%s) = %d\n", path, rc);
    _exit(4);
  }
  free(child_block);
  exit(0); /* the exit profile (HEAPPROF_OUT) is written here */
}

static void *forker(void *arg) {
  (void)arg;
  pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[0]); /* the parent's drain must see the end of the pipe */
    close(pipefd[1]);
    if (strcmp(mode, "child") == 0)
      child_work();
    _exit(0);
  }
  child_pid = pid;
  atomic_store(&forked, 1);
  return NULL;
}

/* The dump is in progress and stays so: its thread sleeps in write() on
 * the full pipe, which nobody reads. */
static int dump_blocked(void) {
  return !atomic_load(&writer_returned) &&
         pc_blocked_in_write(atomic_load(&writer_tid), pipefd[1]);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads the pipe to its end into `path`; returns the bytes read. */
static size_t drain(const char *path) {
  FILE *f = fopen(path, "we");
  CHECK(f != NULL, "cannot create %s", path);
  char buf[65536];
  size_t total = 0;
  for (;;) {
    ssize_t r = read(pipefd[0], buf, sizeof buf);
    if (r < 0 && errno == EINTR)
      continue;
    CHECK(r >= 0, "read: %s", strerror(errno));
    if (r == 0)
      break;
    fwrite(buf, 1, (size_t)r, f);
    total += (size_t)r;
  }
  fclose(f);
  return total;
}

int main(int argc, char **argv) {
  CHECK(argc == 3 && (strcmp(argv[1], "latency") == 0 ||
                      strcmp(argv[1], "child") == 0),
        "usage: proc_fork latency|child DIR");
  mode = argv[1];
  dir = argv[2];
  CHECK(pc_api("heapprof_write_profile_fd") != NULL,
        "libheapprof.so is not preloaded");
  pc_deadline(90);
  for (int i = 0; i < NBUCKETS; i++)
    bucket_site(i);
  CHECK(pipe2(pipefd, O_CLOEXEC) == 0, "pipe2");
  int cap = fcntl(pipefd[1], F_SETPIPE_SZ, 4096);
  CHECK(cap > 0, "F_SETPIPE_SZ: %s", strerror(errno));

  pthread_t w, f;
  CHECK(pthread_create(&w, NULL, writer, NULL) == 0, "pthread_create");
  pc_stage("waiting for the dump to block on the full %d-byte pipe", cap);
  struct timespec pause = {0, 1000000};
  while (!dump_blocked() && !atomic_load(&writer_returned))
    nanosleep(&pause, NULL);
  CHECK(!atomic_load(&writer_returned),
        "the whole profile fit in the %d-byte pipe (rc %d): the dump never "
        "blocked, so this test proves nothing", cap, writer_rc);

  CHECK(pthread_create(&f, NULL, forker, NULL) == 0, "pthread_create");
  pc_stage("waiting for fork() to return while the dump is blocked");
  int64_t end = now_ms() + 20000;
  while (!atomic_load(&forked) && now_ms() < end)
    nanosleep(&pause, NULL);
  int fork_returned = atomic_load(&forked);
  int still_blocked = dump_blocked();
  if (!fork_returned)
    fprintf(stderr, "fork() has not returned after 20 s with a dump blocked "
                    "in another thread; draining the pipe\n");

  char path[1024];
  snprintf(path, sizeof path, "%s/drained.%d.pb.gz", dir, (int)getpid());
  pc_stage("draining the pipe");
  size_t total = drain(path);
  pc_stage("joining the writer and the forking thread");
  pthread_join(w, NULL);
  pthread_join(f, NULL);
  if (!fork_returned)
    fprintf(stderr, "fork() returned only once the dump was drained\n");
  /* The latency clause; the child mode states only what the child can do
   * (a fork that waited still makes a child, forked after the dump). */
  int latency = strcmp(mode, "latency") == 0;
  CHECK(fork_returned || !latency,
        "fork() waited for a dump in progress in another thread (B5)");
  CHECK(still_blocked || !fork_returned,
        "the dump was no longer blocked when fork returned: the test did not "
        "hold it (writer returned %d)", atomic_load(&writer_returned));
  CHECK(writer_rc == 0, "heapprof_write_profile_fd returned %d", writer_rc);
  CHECK(total > (size_t)cap, "the profile (%zu B) did not exceed the pipe",
        total);

  int status;
  pc_stage("waiting for the child %d", (int)child_pid);
  CHECK(pc_wait(child_pid, 30, &status) == 0,
        "the child forked during the dump never ended (killed after 30 s)");
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "the child forked during the dump ended with status 0x%x%s", status,
        WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM
            ? " (SIGALRM: it hung profiling itself)" : "");

  tl_profile_t p;
  tl_read_profile(path, &p);
  int64_t v[4];
  size_t n = tl_site(&p, "bucket_site", v);
  CHECK(n >= NBUCKETS, "the drained profile has %zu bucket_site samples, "
                       "expected %d", n, NBUCKETS);
  tl_free_profile(&p);
  unlink(path);
  if (strcmp(mode, "child") == 0) {
    char cpath[1024];
    snprintf(cpath, sizeof cpath, "%s/child.%d.pb.gz", dir, (int)child_pid);
    tl_read_profile(cpath, &p);
    CHECK(tl_site(&p, "child_site", v) > 0,
          "the child's profile lacks child_site (%zu samples)", p.nsamples);
    tl_free_profile(&p);
    unlink(cpath);
    snprintf(cpath, sizeof cpath, "%s/f.%d.1.pb.gz", dir, (int)child_pid);
    tl_read_profile(cpath, &p); /* the child's exit profile, complete */
    tl_free_profile(&p);
    unlink(cpath);
  }
  printf("ok (%s): fork returned while a %zu-byte dump was blocked on a "
         "%d-byte pipe; the child ended with status 0; the profile decodes\n",
         mode, total, cap);
  return 0;
}
