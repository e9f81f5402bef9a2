/*
 * test_realworld — real, unmodified programs under the profiler: each runs
 * without it, then at rate 1, then at the default rate, and must print the
 * same stdout and stderr and exit with the same status; every profile its
 * process tree writes (HEAPPROF_OUT, %p per process) must open in
 * `go tool pprof`.
 *
 * usage: test_realworld LIBHEAPPROF PROGRAM [ARGS...]
 *   PROGRAM is one of: python perl git sqlite gcc BINARY (a test program)
 * Inside the command, "@RUN@" is replaced by a directory of its own for each
 * run (so that runs that write files do not meet), and "@DIR@" by the test's
 * directory.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"

#define MAXARGS 16

static char *subst(const char *arg, const char *run, const char *dir) {
  size_t marks = 0;
  for (const char *a = arg; (a = strchr(a, '@')) != NULL; a++)
    marks++;
  size_t longest = strlen(run) > strlen(dir) ? strlen(run) : strlen(dir);
  char *out = malloc(strlen(arg) + marks * longest + 1), *o = out;
  for (const char *a = arg; *a;) {
    if (strncmp(a, "@RUN@", 5) == 0)
      o = stpcpy(o, run), a += 5;
    else if (strncmp(a, "@DIR@", 5) == 0)
      o = stpcpy(o, dir), a += 5;
    else
      *o++ = *a++;
  }
  *o = '\0';
  return out;
}

typedef struct result {
  int status;
  char *out, *err;
} result_t;

static result_t run(char *const cmd[], const char *name, const char *dir,
                    char *const extra[]) {
  char run_dir[1024];
  snprintf(run_dir, sizeof run_dir, "%s/%s", dir, name);
  CHECK(mkdir(run_dir, 0700) == 0, "mkdir %s", run_dir);
  char *argv[MAXARGS + 1];
  int n = 0;
  for (; cmd[n] && n < MAXARGS; n++)
    argv[n] = subst(cmd[n], run_dir, dir);
  argv[n] = NULL;
  char *env[24] = {"PATH=/usr/bin:/bin", "LC_ALL=C", "HOME=/tmp",
                   "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid",
                   "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.invalid",
                   "GIT_AUTHOR_DATE=2000-01-01T00:00:00Z",
                   "GIT_COMMITTER_DATE=2000-01-01T00:00:00Z",
                   "GIT_CONFIG_NOSYSTEM=1"};
  size_t e = 10;
  for (size_t i = 0; extra[i] && e < 23; i++)
    env[e++] = subst(extra[i], run_dir, dir);
  env[e] = NULL;
  result_t r;
  r.status = tl_run_env(argv, env, &r.out, &r.err);
  return r;
}

/* Every profile in `dir` opens in pprof; returns how many there were. */
static int check_profiles(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
    if (strstr(e->d_name, ".pb.gz") == NULL)
      continue;
    CHECK(strstr(e->d_name, ".tmp.") == NULL, "temp file left: %s", e->d_name);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    tl_profile_t p;
    tl_read_profile(path, &p);
    tl_free_profile(&p);
    n++;
  }
  if (d)
    closedir(d);
  return n;
}

static void same(const result_t *a, const result_t *b, const char *what) {
  CHECK(a->status == b->status, "%s: exit %d, without the profiler %d\n%s",
        what, b->status, a->status, b->err);
  CHECK(strcmp(a->out, b->out) == 0, "%s: stdout differs:\n%s\n---\n%s", what,
        a->out, b->out);
  CHECK(strcmp(a->err, b->err) == 0, "%s: stderr differs:\n%s\n---\n%s", what,
        a->err, b->err);
}

int main(int argc, char **argv) {
  CHECK(argc >= 3, "usage: test_realworld LIBHEAPPROF PROGRAM [ARGS...]");
  const char *dir = tl_tmpdir();
  char preload[1024], out1[1100], out2[1100];
  snprintf(preload, sizeof preload, "LD_PRELOAD=%s", argv[1]);
  snprintf(out1, sizeof out1, "HEAPPROF_OUT=%s/exact/p.%%p.%%n.pb.gz", dir);
  snprintf(out2, sizeof out2, "HEAPPROF_OUT=%s/sampled/p.%%p.%%n.pb.gz", dir);
  char *none[] = {NULL};
  char *exact[] = {preload, "HEAPPROF_RATE=1", out1, NULL};
  char *sampled[] = {preload, out2, NULL};
  char *const *cmd = &argv[2];
  result_t plain = run(cmd, "plain", dir, none);
  CHECK(plain.status == 0, "%s fails even without the profiler (%d):\n%s%s",
        cmd[0], plain.status, plain.out, plain.err);
  result_t r1 = run(cmd, "exact", dir, exact);
  same(&plain, &r1, "rate 1");
  result_t r2 = run(cmd, "sampled", dir, sampled);
  same(&plain, &r2, "default rate");
  char d1[1024], d2[1024];
  snprintf(d1, sizeof d1, "%s/exact", dir);
  snprintf(d2, sizeof d2, "%s/sampled", dir);
  int n1 = check_profiles(d1), n2 = check_profiles(d2);
  CHECK(n1 > 0 && n2 > 0, "no exit profile: %d at rate 1, %d at the default", n1,
        n2);
  printf("ok: %s: same output (%zu bytes) and status; %d + %d profiles open in "
         "pprof\n", cmd[0], strlen(plain.out), n1, n2);
  return 0;
}
