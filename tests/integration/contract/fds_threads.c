/*
 * fds_threads — heapprof's presence does not make a program multithreaded
 * before it has anything to profile: at the top of main, with the default
 * configuration (the dump signal only), /proc/self/task holds one thread
 * and unshare(CLONE_NEWUSER), which the kernel refuses to a threaded
 * process, succeeds (`unshare -U`, bwrap and container runtimes do this;
 * under the old code they failed with EINVAL). Python 3.12+ warns on
 * stderr at every os.fork() in a process with a second thread, so the
 * thread's mere existence is visible output.
 *
 * usage: fds_threads LIBHEAPPROF
 *
 * The driver first runs the program without heapprof; when the kernel or a
 * container refuses user namespaces even then, it says so and the program
 * checks the thread count only.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"
#include "fds_util.h"

static int threads(void) {
  DIR *d = opendir("/proc/self/task");
  int n = 0;
  for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
    n += e->d_name[0] != '.';
  if (d != NULL)
    closedir(d);
  return n;
}

static int program(int want_unshare) {
  int n = threads();
  int rc = unshare(CLONE_NEWUSER), err = errno;
  FU_EXPECT(n == 1, "%d threads at the top of main, want 1", n);
  if (want_unshare)
    FU_EXPECT(rc == 0, "unshare(CLONE_NEWUSER) at the top of main: %s",
              strerror(err));
  printf("program: %d thread(s); unshare(CLONE_NEWUSER): %s\n", n,
         rc == 0 ? "ok" : strerror(err));
  return fu_finish("single-threaded at the top of main");
}

static int run(char **env, const char *want_unshare) {
  char *args[] = {(char *)fu_self(), "--child", (char *)want_unshare, NULL};
  fu_proc_t p = fu_start(args, env, FU_OUT | FU_ERR);
  fu_collect_t *errs = fu_collect(p.err);
  FU_EXPECT(fu_relay(p.out, 60000) == 0, "the program did not finish");
  int status = fu_wait(p.pid, 60);
  char *err = fu_collected(errs, 5000);
  if (*err)
    printf("its stderr: %s", err);
  free(err);
  return status;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--child") == 0)
    return program(argv[2][0] == '1');
  CHECK(argc == 2, "usage: fds_threads LIBHEAPPROF");
  printf("without heapprof:\n");
  int control = run(fu_env(NULL, (char *)NULL), "1");
  const char *want = "1";
  if (control != 0) {
    printf("NOTE: this system refuses unshare(CLONE_NEWUSER) even without "
           "heapprof; only the thread count is checked\n");
    want = "0";
    fu_failures = 0;
  }
  printf("with heapprof (default configuration):\n");
  int status = run(fu_env(argv[1], (char *)NULL), want);
  FU_EXPECT(status == 0, "the program's exit status %d under heapprof (its "
                         "checks above)", status);
  return fu_finish("single-threaded at the top of main");
}
