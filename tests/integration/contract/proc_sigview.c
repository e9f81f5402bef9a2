/*
 * proc_sigview — the program sees its dump signal as it would without
 * heapprof: SIG_DFL through sigaction() and signal(), so that saving and
 * restoring a handler works (CPython reported heapprof's handler as None
 * and could not put it back), while the signal still writes a profile.
 *
 * Run preloaded with the default HEAPPROF_SIGNAL (USR2) and HEAPPROF_OUT
 * in a directory of its own, given as argv[1].
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

static int profiles(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
    n += strstr(e->d_name, ".pb.gz") != NULL && e->d_name[0] != '.';
  if (d != NULL)
    closedir(d);
  return n;
}

static void mine(int sig) { (void)sig; }

int main(int argc, char **argv) {
  CHECK(argc == 2, "usage: proc_sigview DIR");
  alarm(60);
  for (int i = 0; i < 20000; i++) { /* samples start the dump thread */
    void *volatile p = malloc(1000);
    free(p);
  }
  struct sigaction old;
  CHECK(sigaction(SIGUSR2, NULL, &old) == 0, "sigaction");
  CHECK(!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL,
        "sigaction reports a SIGUSR2 handler the program never installed");
  /* The handler is still there underneath: the signal writes a profile. */
  raise(SIGUSR2);
  for (int t = 0; t < 300 && profiles(argv[1]) == 0; t++)
    usleep(100000);
  CHECK(profiles(argv[1]) == 1, "SIGUSR2 wrote %d profiles, want 1",
        profiles(argv[1]));
  /* Save and restore, as programs and language runtimes do. */
  sighandler_t was = signal(SIGUSR2, mine);
  CHECK(was == SIG_DFL, "signal() returned a handler the program never set");
  CHECK(signal(SIGUSR2, was) == mine, "signal() did not return mine");
  CHECK(sigaction(SIGUSR2, NULL, &old) == 0 && old.sa_handler == SIG_DFL,
        "the restored disposition is not SIG_DFL");
  printf("ok: SIGUSR2 looks like SIG_DFL to the program and still dumps\n");
  return 0;
}
