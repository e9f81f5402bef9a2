/*
 * test_cli — the heapprof command as a user runs it.
 *
 * usage: test_cli HEAPPROF TARGET
 *   help and errors: --help exits 0; unknown commands and bad option values
 *   give one line and status 2;
 *   run: a program runs under the profiler with its output unchanged, the
 *   command says where profiles go, and the exit profile appears there;
 *   dump: `heapprof dump PID` on a running TARGET prints the path of a new,
 *   complete profile; on a missing process it fails with status 1.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"

static char *env[] = {"PATH=/usr/bin:/bin", NULL};

static int run(char **argv, char **out, char **err) {
  return tl_run_env(argv, env, out, err);
}

static void help_and_errors(char *cli) {
  char *o, *e;
  char *help[] = {cli, "--help", NULL};
  CHECK(run(help, &o, &e) == 0 && strstr(o, "heapprof run"), "--help: %s", o);
  char *bad[] = {cli, "frobnicate", NULL};
  CHECK(run(bad, &o, &e) == 2 && strstr(e, "unknown command") &&
            strchr(e, '\n') == e + strlen(e) - 1, "unknown command: %s", e);
  char *rate[] = {cli, "run", "--rate", "lots", "--", "/bin/true", NULL};
  CHECK(run(rate, &o, &e) == 2 && strstr(e, "--rate lots"), "bad rate: %s", e);
  char *nocmd[] = {cli, "run", "--rate", "1", NULL};
  CHECK(run(nocmd, &o, &e) == 2 && strstr(e, "needs a command"), "no cmd: %s", e);
  char *dump[] = {cli, "dump", "notapid", NULL};
  CHECK(run(dump, &o, &e) == 2, "dump notapid: %s", e);
  char *gone[] = {cli, "dump", "999999999", NULL};
  CHECK(run(gone, &o, &e) == 1 && strstr(e, "no process"), "dump gone: %s", e);
  printf("ok: help and errors\n");
}

static void run_program(char *cli, const char *dir) {
  char out[1024], expect[1024];
  snprintf(out, sizeof out, "%s/run.%%p.%%n.pb.gz", dir);
  char *argv[] = {cli, "run", "--rate", "1", "--out", out, "--",
                  "/usr/bin/python3", "-c", "print(len([str(i) for i in range(50000)]))",
                  NULL};
  char *o, *e;
  CHECK(run(argv, &o, &e) == 0 && strcmp(o, "50000\n") == 0, "run: %s%s", o, e);
  int pid;
  CHECK(sscanf(e, "heapprof: running /usr/bin/python3 (pid %d)", &pid) == 1,
        "run did not say what it runs: %s", e);
  snprintf(expect, sizeof expect, "%s/run.%d.1.pb.gz", dir, pid);
  CHECK(strstr(e, "profiles to ") != NULL, "run did not say where: %s", e);
  tl_profile_t p;
  tl_read_profile(expect, &p);
  CHECK(p.nsamples > 0 && p.period == 1, "exit profile of the run");
  tl_free_profile(&p);
  printf("ok: run wrote %s\n", expect);
}

static void dump_running(char *cli, char *target, const char *dir) {
  char out[1024];
  snprintf(out, sizeof out, "%s/dump.%%p.%%n.pb.gz", dir);
  int in[2];
  CHECK(pipe(in) == 0, "pipe");
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    close(in[1]);
    char *argv[] = {cli, "run", "--out", out, "--", target, NULL};
    execve(cli, argv, env);
    _exit(127);
  }
  close(in[0]);
  struct timespec settle = {0, 300000000};
  nanosleep(&settle, NULL);
  char pidstr[32];
  snprintf(pidstr, sizeof pidstr, "%d", (int)pid);
  char *argv[] = {cli, "dump", pidstr, "--timeout", "20", NULL};
  char *o, *e;
  CHECK(run(argv, &o, &e) == 0, "dump %s failed: %s", pidstr, e);
  o[strcspn(o, "\n")] = '\0';
  char want[1024];
  snprintf(want, sizeof want, "%s/dump.%d.1.pb.gz", dir, (int)pid);
  CHECK(strcmp(o, want) == 0, "dump printed '%s', want '%s'", o, want);
  tl_profile_t p;
  tl_read_profile(o, &p);
  int64_t v[4];
  CHECK(tl_site_any(&p, "served_leak", v) > 0, "dumped profile lacks the target's site");
  tl_free_profile(&p);
  close(in[1]);
  int status;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "target exit status");
  printf("ok: dump printed %s\n", want);
}

int main(int argc, char **argv) {
  CHECK(argc == 3, "usage: test_cli HEAPPROF TARGET");
  const char *dir = tl_tmpdir();
  help_and_errors(argv[1]);
  run_program(argv[1], dir);
  dump_running(argv[1], argv[2], dir);
  return 0;
}
