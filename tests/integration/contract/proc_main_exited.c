/*
 * proc_main_exited — profiles written after main called pthread_exit are
 * symbolized like any other.
 *
 * Daemons often end main with pthread_exit and live on in their workers.
 * The main thread is then a zombie, and /proc/self (which names the
 * thread group leader) shows no maps and no exe: a profiler that reads
 * /proc/self/maps finds no mappings and writes locations without names.
 * Here main calls pthread_exit; a worker waits until main has ended,
 * allocates from worker_site, writes a profile with heapprof_write_profile
 * and asks for one with SIGUSR2 (written by the dump thread). Both must
 * name worker_site (go tool pprof -raw).
 *
 * usage: proc_main_exited DIR   (preloaded, HEAPPROF_RATE=1,
 *                                HEAPPROF_OUT=DIR/m.%p.%n.pb.gz)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proc_common.h"
#include "testlib.h"

static void *volatile sink;
static const char *dir;

static __attribute__((noipa)) void worker_site(void) { sink = malloc(3 << 20); }

static void wait_main_ended(void) {
  char path[64], line[512];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)getpid());
  struct timespec pause = {0, 2000000};
  for (;;) {
    FILE *f = fopen(path, "re");
    CHECK(f != NULL, "cannot read %s", path);
    char *ok = fgets(line, sizeof line, f);
    fclose(f);
    char *paren = ok ? strrchr(line, ')') : NULL;
    if (paren != NULL && paren[1] == ' ' && paren[2] == 'Z')
      return;
    nanosleep(&pause, NULL);
  }
}

static void check_named(const char *path, const char *how) {
  tl_profile_t p;
  tl_read_profile(path, &p);
  int64_t v[4];
  CHECK(tl_site(&p, "worker_site", v) > 0,
        "the profile written %s after main's pthread_exit names no "
        "worker_site (%zu samples; locations without names?):\n%.1500s", how,
        p.nsamples, p.raw);
  tl_free_profile(&p);
  unlink(path);
}

static void *worker(void *arg) {
  (void)arg;
  pc_stage("waiting for main to end");
  wait_main_ended();
  worker_site();
  char path[1024];
  snprintf(path, sizeof path, "%s/api.%d.pb.gz", dir, (int)getpid());
  CHECK(tl_write_profile(path, 0) == 0, "heapprof_write_profile failed");
  check_named(path, "by heapprof_write_profile");
  snprintf(path, sizeof path, "%s/m.%d.1.pb.gz", dir, (int)getpid());
  kill(getpid(), SIGUSR2);
  pc_stage("waiting for the SIGUSR2 profile %s", path);
  CHECK(pc_wait_file(path, 20) == 0, "no profile after SIGUSR2");
  check_named(path, "on SIGUSR2");
  printf("ok: profiles written after main's pthread_exit are symbolized\n");
  fflush(stdout);
  _exit(0); /* this clause is not about the exit profile */
}

int main(int argc, char **argv) {
  CHECK(argc == 2, "usage: proc_main_exited DIR");
  CHECK(pc_api("heapprof_dump") != NULL, "libheapprof.so is not preloaded");
  dir = argv[1];
  pc_deadline(60);
  pthread_t t;
  CHECK(pthread_create(&t, NULL, worker, NULL) == 0, "pthread_create");
  pthread_exit(NULL);
}
