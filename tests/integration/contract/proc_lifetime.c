/*
 * proc_lifetime — heapprof's threads never keep a finished process alive
 * (behaviour B6): a process ends when its last program thread ends, with
 * status 0 and its atexit handlers run, exactly as glibc does it without
 * heapprof (the last thread to end calls exit(0)).
 *
 *   main-exit   main calls pthread_exit while a worker runs; the worker
 *               returns once main has ended (its thread is a zombie).
 *   main-alone  main calls pthread_exit and there is no other thread.
 *   fork-thread a worker thread forks; in the child that thread, its only
 *               one, returns from its start function (CPython's
 *               test_threading test_3_join_in_forked_from_thread). The
 *               parent waits for the child with a 15 s deadline.
 *
 * The program runs twice: without heapprof (the reference, which must end
 * with status 0) and preloaded with the given HEAPPROF_* settings; it must
 * end within 30 s with status 0 and the same stdout (the atexit handler's
 * line included), and for the pthread_exit modes its exit profile must be
 * there, complete (exit(0) runs the destructors).
 *
 * usage: proc_lifetime MODE LIBHEAPPROF [HEAPPROF_X=V...]
 *        (the program: proc_lifetime --child MODE)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc_common.h"
#include "testlib.h"

static void *volatile sink;

static __attribute__((noipa)) void worker_site(void) { sink = malloc(1 << 20); }
static __attribute__((noipa)) void main_site(void) { sink = malloc(1 << 20); }
static __attribute__((noipa)) void child_site(void) {
  sink = malloc(1 << 20);
  free(sink);
}

static void at_exit(void) { printf("atexit: ran\n"); }

/* Waits (up to 10 s) until the main thread has ended: a zombie. */
static void wait_main_ended(void) {
  char path[64], line[512];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)getpid());
  struct timespec pause = {0, 5000000};
  for (int i = 0; i < 2000; i++, nanosleep(&pause, NULL)) {
    FILE *f = fopen(path, "re");
    if (f == NULL)
      continue;
    char *ok = fgets(line, sizeof line, f);
    fclose(f);
    char *paren = ok ? strrchr(line, ')') : NULL;
    if (paren != NULL && paren[1] == ' ' && paren[2] == 'Z')
      return;
  }
  printf("worker: main never ended\n");
}

static void *late_worker(void *arg) {
  (void)arg;
  wait_main_ended();
  worker_site();
  printf("worker: returns after main ended\n");
  return NULL;
}

static void *forking_worker(void *arg) {
  (void)arg;
  worker_site();
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    child_site(); /* the child's first allocation */
    return NULL;  /* the child's only thread ends: so does the child */
  }
  int status;
  if (pid < 0)
    printf("fork failed\n");
  else if (pc_wait(pid, 15, &status) != 0)
    printf("child: did not end within 15 s after its last thread returned\n");
  else if (WIFEXITED(status))
    printf("child: exit %d\n", WEXITSTATUS(status));
  else
    printf("child: status 0x%x\n", status);
  return NULL;
}

static int child(const char *mode) {
  pthread_t t;
  if (strcmp(mode, "fork-thread") == 0) {
    pthread_create(&t, NULL, forking_worker, NULL);
    pthread_join(t, NULL);
    return 0;
  }
  atexit(at_exit);
  main_site();
  if (strcmp(mode, "main-exit") == 0)
    pthread_create(&t, NULL, late_worker, NULL);
  printf("main: pthread_exit\n");
  fflush(stdout);
  pthread_exit(NULL);
}

/* The number of exit profiles (l.*.pb.gz) in dir; each must decode
 * (tl_read_profile fails the test otherwise). Whether they are symbolized
 * is proc_main_exited's clause. */
static int exit_profiles(const char *dir) {
  DIR *d = opendir(dir);
  CHECK(d != NULL, "opendir %s", dir);
  int found = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    size_t len = strlen(e->d_name);
    if (strncmp(e->d_name, "l.", 2) != 0 || len < 7 ||
        strcmp(e->d_name + len - 6, ".pb.gz") != 0)
      continue;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    tl_profile_t p;
    tl_read_profile(path, &p);
    found++; /* complete: decoded (samples or not, at the default rate) */
    tl_free_profile(&p);
  }
  closedir(d);
  return found;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--child") == 0)
    return child(argv[2]);
  CHECK(argc >= 3, "usage: proc_lifetime MODE LIBHEAPPROF [HEAPPROF_X=V...]");
  const char *mode = argv[1];
  CHECK(strcmp(mode, "main-exit") == 0 || strcmp(mode, "main-alone") == 0 ||
        strcmp(mode, "fork-thread") == 0, "unknown mode %s", mode);
  char *args[] = {argv[0], "--child", (char *)mode, NULL};

  pc_result_t ref, r;
  pc_run(args, pc_env(NULL, NULL, 0), NULL, NULL, 0, 30, &ref);
  CHECK(!ref.hung && ref.exited && ref.status == 0,
        "without heapprof the program ended with %s: the test is broken\n%s",
        pc_describe(&ref), ref.err);

  char out[1024];
  snprintf(out, sizeof out, "HEAPPROF_OUT=%s/l.%%p.%%n.pb.gz", tl_tmpdir());
  size_t nvars = (size_t)argc - 3;
  char **vars = calloc(nvars + 2, sizeof *vars);
  vars[0] = out;
  for (size_t i = 0; i < nvars; i++)
    vars[i + 1] = argv[3 + i];
  pc_run(args, pc_env(argv[2], vars, nvars + 1), NULL, NULL, 0, 30, &r);
  printf("without heapprof: %s, stdout:\n%s", pc_describe(&ref), ref.out);
  printf("with heapprof:    %s, stdout:\n%s", pc_describe(&r), r.out);
  if (r.err[0] != '\0')
    printf("with heapprof, stderr:\n%s", r.err);
  pc_expect(!r.hung, "the process never ended (killed after 30 s): a "
                     "heapprof thread kept it alive after its last program "
                     "thread ended");
  pc_expect(r.hung || (r.exited && r.status == 0),
            "the process ended with %s, not exit 0", pc_describe(&r));
  pc_expect(strcmp(r.out, ref.out) == 0,
            "stdout differs from the run without heapprof (atexit handlers "
            "and the child's status must be the same)");
  if (strcmp(mode, "fork-thread") != 0 && !r.hung)
    pc_expect(exit_profiles(tl_tmpdir()) == 1,
              "no complete exit profile in %s (exit runs the destructors)",
              tl_tmpdir());
  return pc_finish("the process ended when its last program thread did");
}
