/*
 * proc_exit_dump — exit() never waits for a dump in progress on another
 * thread.
 *
 * A thread calls heapprof_write_profile_fd() on a one-page pipe that
 * nobody will ever read (3,000 buckets at HEAPPROF_RATE=1: the profile is
 * larger, so the write blocks for good, as it would towards a stalled
 * consumer). The main thread then calls exit(0). Without heapprof the
 * process ends at once, whatever its other threads are blocked in; with
 * HEAPPROF_OUT set (the exit profile) or HEAPPROF_PEAK=1 (the exit peak
 * profile) heapprof writes at exit, and must not wait for the blocked
 * dump to do it: a process that called exit() ends, with status 0 (30 s
 * deadline). Every profile it left must be complete (go tool pprof).
 *
 * usage: proc_exit_dump LIBHEAPPROF [HEAPPROF_X=V...]  (the program runs
 *        preloaded with HEAPPROF_RATE=1, HEAPPROF_OUT in a fresh directory
 *        and the settings given: proc_exit_dump --child)
 */
#define _GNU_SOURCE
#include <dirent.h>
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

static __attribute__((noipa)) void bucket_site(int i) {
  sink[i] = malloc(64 + (size_t)i * 8);
}

static void *writer(void *arg) {
  (void)arg;
  int (*write_fd)(int, int) =
      (int (*)(int, int))pc_api("heapprof_write_profile_fd");
  atomic_store(&writer_tid, gettid());
  write_fd(pipefd[1], 0);
  atomic_store(&writer_returned, 1);
  return NULL;
}

static int child(void) {
  CHECK(pc_api("heapprof_write_profile_fd") != NULL,
        "libheapprof.so is not preloaded");
  pc_deadline(30);
  for (int i = 0; i < NBUCKETS; i++)
    bucket_site(i);
  CHECK(pipe2(pipefd, O_CLOEXEC) == 0, "pipe2");
  int cap = fcntl(pipefd[1], F_SETPIPE_SZ, 4096);
  CHECK(cap > 0, "F_SETPIPE_SZ: %s", strerror(errno));
  pthread_t w;
  CHECK(pthread_create(&w, NULL, writer, NULL) == 0, "pthread_create");
  pc_stage("waiting for the dump to block on the full pipe");
  struct timespec pause = {0, 1000000};
  while (!atomic_load(&writer_returned) &&
         !pc_blocked_in_write(atomic_load(&writer_tid), pipefd[1]))
    nanosleep(&pause, NULL);
  CHECK(!atomic_load(&writer_returned),
        "the profile fit in the pipe: the dump never blocked");
  printf("a dump is blocked in another thread; exit(0)\n");
  fflush(stdout);
  pc_stage("exit(0) with a dump blocked in another thread: the process "
           "never ended");
  exit(0);
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--child") == 0)
    return child();
  CHECK(argc >= 2, "usage: proc_exit_dump LIBHEAPPROF [HEAPPROF_X=V...]");
  char out[1024];
  snprintf(out, sizeof out, "HEAPPROF_OUT=%s/x.%%p.%%n.pb.gz", tl_tmpdir());
  size_t nvars = (size_t)argc - 2;
  char **vars = calloc(nvars + 3, sizeof *vars);
  vars[0] = out;
  vars[1] = "HEAPPROF_RATE=1";
  for (size_t i = 0; i < nvars; i++)
    vars[i + 2] = argv[2 + i];
  char *args[] = {argv[0], "--child", NULL};
  pc_result_t r;
  pc_run(args, pc_env(argv[1], vars, nvars + 2), NULL, NULL, 0, 30, &r);
  printf("%s\nstdout: %sstderr: %s", pc_describe(&r), r.out, r.err);
  pc_expect(!r.hung, "the process called exit(0) and never ended (killed "
                     "after 30 s): heapprof's exit profile waits for the "
                     "dump blocked in another thread");
  pc_expect(r.hung || (r.exited && r.status == 0),
            "the process ended with %s", pc_describe(&r));
  DIR *d = opendir(tl_tmpdir());
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    size_t len = strlen(e->d_name);
    if (len < 7 || strcmp(e->d_name + len - 6, ".pb.gz") != 0)
      continue;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", tl_tmpdir(), e->d_name);
    tl_profile_t p;
    tl_read_profile(path, &p); /* fails the test if incomplete */
    printf("  %s: %zu samples\n", e->d_name, p.nsamples);
    tl_free_profile(&p);
  }
  closedir(d);
  return pc_finish("exit() ends the process while a dump is blocked");
}
