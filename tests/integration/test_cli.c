/*
 * test_cli — the heapprof command as a user runs it.
 *
 * usage: test_cli HEAPPROF TARGET
 *   help and errors: --help exits 0; unknown commands and bad option values
 *   give one line naming the option and status 2;
 *   agreement: for values of every option, `heapprof run` refuses (status 2)
 *   exactly those the library itself warns about at start-up;
 *   run: a program runs under the profiler with its output unchanged, the
 *   command says where profiles go, and the exit profile appears there;
 *   dump: `heapprof dump PID` on a running TARGET prints the path of a new,
 *   complete profile; on a missing process it fails with status 1; a
 *   temporary file that appears first (".heapprof-<pid>-<n>.tmp", matched by
 *   a template like DIR/.%n) is not taken for the profile.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
  CHECK(run(rate, &o, &e) == 2 && strstr(e, "--rate \"lots\""), "bad rate: %s", e);
  char *nocmd[] = {cli, "run", "--rate", "1", NULL};
  CHECK(run(nocmd, &o, &e) == 2 && strstr(e, "needs a command"), "no cmd: %s", e);
  char *dump[] = {cli, "dump", "notapid", NULL};
  CHECK(run(dump, &o, &e) == 2, "dump notapid: %s", e);
  char *gone[] = {cli, "dump", "999999999", NULL};
  CHECK(run(gone, &o, &e) == 1 && strstr(e, "no process"), "dump gone: %s", e);
  printf("ok: help and errors\n");
}

static int one_line(const char *e) {
  return *e != '\0' && strchr(e, '\n') == e + strlen(e) - 1;
}

/* `heapprof run OPT VALUE -- /bin/true`: status 2 and one line naming the
 * option. */
static void refused(char *cli, char *opt, char *value) {
  char *o, *e;
  char *argv[] = {cli, "run", opt, value, "--", "/bin/true", NULL};
  int rc = run(argv, &o, &e);
  CHECK(rc == 2 && one_line(e) && strstr(e, opt) != NULL,
        "run %s '%.80s': status %d, want 2 and one line naming it:\n%s", opt,
        value, rc, e);
  free(o), free(e);
}

static void bad_options(char *cli) {
  static char *const cases[][2] = {
      {"--depth", "5x"},        {"--depth", "0"},       {"--depth", "257"},
      {"--seed", "12abc"},      {"--seed", "-1"},       {"--seed", "0x"},
      {"--http", "foo:bar"},    {"--http", "127.0.0.1:80x"},
      {"--http", "127.0.0.1:"}, {"--http", "10.0.0.1:6060"},
      {"--rate", "lots"},       {"--rate", "-1"},       {"--out", ""},
      {"--out", "/tmp/%z"},     {"--interval", "0"},    {"--growth", "0"},
      {"--signal", "KILL"},     {"--depth", "5\nx"},
      {"--demangle", "pretty"}, {"--demangle", ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    refused(cli, cases[i][0], cases[i][1]);
  /* A template whose longest expansion cannot fit PATH_MAX. */
  char *tmpl = malloc(PATH_MAX + 16);
  memset(tmpl, 'a', PATH_MAX);
  tmpl[0] = '/';
  strcpy(tmpl + PATH_MAX - 50, ".%p.%n.%t");
  refused(cli, "--out", tmpl);
  free(tmpl);
  char *o, *e;
  char *novalue[] = {cli, "run", "--depth", NULL};
  CHECK(run(novalue, &o, &e) == 2 && one_line(e) && strstr(e, "--depth"),
        "--depth without a value: %s", e);
  free(o), free(e);
  printf("ok: %zu bad option values refused\n", sizeof cases / sizeof *cases + 2);
}

/* Whether the library, preloaded into /bin/true with `var`=`value`, warns
 * that the value is not valid. */
static int library_refuses(const char *lib, const char *var, const char *value) {
  char preload[PATH_MAX + 16], setting[PATH_MAX + 64];
  snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lib);
  snprintf(setting, sizeof setting, "%s=%s", var, value);
  char *envp[] = {"PATH=/usr/bin:/bin", preload, setting, NULL};
  char *argv[] = {"/bin/true", NULL}, *o, *e;
  CHECK(tl_run_env(argv, envp, &o, &e) == 0, "/bin/true with %s: %s", setting, e);
  int warned = strstr(e, var) != NULL;
  free(o), free(e);
  return warned;
}

/* The command refuses exactly the values the library refuses. */
static void options_agree(char *cli, const char *dir) {
  char lib[PATH_MAX], out[PATH_MAX], good_out[PATH_MAX], bad_out[PATH_MAX];
  snprintf(lib, sizeof lib, "%s", cli);
  *strrchr(lib, '/') = '\0';
  strcat(lib, "/../lib/libheapprof.so");
  CHECK(access(lib, R_OK) == 0, "no library at %s", lib);
  snprintf(out, sizeof out, "%s/agree.%%p.%%n.pb.gz", dir);
  snprintf(good_out, sizeof good_out, "%s/agree-out.%%p.%%n.pb.gz", dir);
  snprintf(bad_out, sizeof bad_out, "%s/agree.%%q", dir);
  static const struct {
    char *opt, *var, *values[10];
  } opts[] = {
      {"--rate", "HEAPPROF_RATE", {"1", "4K", "0", "lots", "-1", "1.5", "5x", ""}},
      {"--http", "HEAPPROF_HTTP",
       {"127.0.0.1:0", "localhost:0", ":0", "foo:bar", "127.0.0.1:80x",
        "127.0.0.1:", "::1:0", "10.0.0.1:6060", "127.0.0.1:+0", "127.0.0.1:65536"}},
      {"--interval", "HEAPPROF_INTERVAL", {"30", "5m", "0", "5x", ""}},
      {"--growth", "HEAPPROF_GROWTH", {"64M", "0", "lots", "1.5G"}},
      {"--signal", "HEAPPROF_SIGNAL", {"USR2", "none", "12", "KILL", "USR3", ""}},
      {"--seed", "HEAPPROF_SEED", {"42", "0x2a", "12abc", "-1", "0x", " 1", "1e9"}},
      {"--depth", "HEAPPROF_DEPTH", {"5", "256", "5x", "0", "257", " 5", "+5"}},
  };
  int n = 0;
  for (size_t k = 0; k < sizeof opts / sizeof *opts + 1; k++) {
    int is_out = k == sizeof opts / sizeof *opts;
    char *opt = is_out ? "--out" : opts[k].opt;
    char *var = is_out ? "HEAPPROF_OUT" : opts[k].var;
    char *const *values = is_out ? (char *[]){good_out, bad_out, "", NULL} : opts[k].values;
    for (size_t i = 0; i < 10 && values[i] != NULL; i++, n++) {
      char *argv[] = {cli, "run", "--out", out, opt, values[i], "--", "/bin/true", NULL};
      char *o, *e;
      int rc = run(argv, &o, &e);
      int lib_refuses = library_refuses(lib, var, values[i]);
      CHECK(rc == (lib_refuses ? 2 : 0),
            "%s '%s': the command exits %d but the library %s it:\n%s", opt,
            values[i], rc, lib_refuses ? "refuses" : "takes", e);
      free(o), free(e);
    }
  }
  printf("ok: the command and the library agree on %d option values\n", n);
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

/* With HEAPPROF_OUT=DIR/.%n the pattern DIR/.* also matches the writer's
 * temporary names; the target shows one a second before its profile, and
 * dump must wait for the profile. */
static void dump_skips_temp(char *cli, char *target, const char *dir) {
  char sub[1024], out[1100];
  snprintf(sub, sizeof sub, "%s/hidden", dir);
  CHECK(mkdir(sub, 0700) == 0, "mkdir %s", sub);
  snprintf(out, sizeof out, "%s/.%%n", sub);
  int in[2], ready[2];
  CHECK(pipe(in) == 0 && pipe(ready) == 0, "pipe");
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(ready[1], 1);
    close(in[1]), close(ready[0]);
    char *argv[] = {cli, "run", "--out", out, "--signal", "USR1", "--",
                    target, "slow-dump", NULL};
    execve(cli, argv, env);
    _exit(127);
  }
  close(in[0]), close(ready[1]);
  char word[8] = {0};
  CHECK(read(ready[0], word, 6) == 6 && strcmp(word, "ready\n") == 0,
        "the target did not get ready: '%s'", word);
  char pidstr[32];
  snprintf(pidstr, sizeof pidstr, "%d", (int)pid);
  char *argv[] = {cli, "dump", pidstr, "--timeout", "20", NULL};
  char *o, *e;
  CHECK(run(argv, &o, &e) == 0, "dump %s failed: %s", pidstr, e);
  o[strcspn(o, "\n")] = '\0';
  char want[1200];
  snprintf(want, sizeof want, "%s/.1", sub);
  CHECK(strcmp(o, want) == 0, "dump printed '%s', want '%s'", o, want);
  free(o), free(e);
  close(in[1]);
  close(ready[0]);
  int status;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "target exit status %d",
        status);
  printf("ok: dump skipped the temporary file and printed %s\n", want);
}

int main(int argc, char **argv) {
  CHECK(argc == 3, "usage: test_cli HEAPPROF TARGET");
  const char *dir = tl_tmpdir();
  help_and_errors(argv[1]);
  bad_options(argv[1]);
  options_agree(argv[1], dir);
  run_program(argv[1], dir);
  dump_running(argv[1], argv[2], dir);
  dump_skips_temp(argv[1], argv[2], dir);
  return 0;
}
