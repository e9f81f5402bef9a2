/*
 * test_quiet — preloading the profiler changes nothing a program prints,
 * its exit status, or the files in its working directory; HEAPPROF_RATE=0
 * is a pure pass-through that writes nothing even with HEAPPROF_OUT set.
 *
 * usage: test_quiet LIBHEAPPROF
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

static int entries(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    n += e->d_name[0] != '.' && strcmp(e->d_name, "run.out") != 0 &&
         strcmp(e->d_name, "run.err") != 0;
  closedir(d);
  return n;
}

static void same_output(char *const argv[], char *const extra[]) {
  char *env_plain[8] = {"PATH=/usr/bin:/bin", "LC_ALL=C", NULL};
  char *env_prof[16] = {"PATH=/usr/bin:/bin", "LC_ALL=C"};
  size_t n = 2;
  for (size_t i = 0; extra[i]; i++)
    env_prof[n++] = extra[i];
  env_prof[n] = NULL;
  char *o1, *e1, *o2, *e2;
  int s1 = tl_run_env(argv, env_plain, &o1, &e1);
  int s2 = tl_run_env(argv, env_prof, &o2, &e2);
  CHECK(s1 == s2, "%s: exit %d without, %d with the profiler", argv[0], s1, s2);
  CHECK(strcmp(o1, o2) == 0, "%s: stdout differs:\n%s\n---\n%s", argv[0], o1, o2);
  CHECK(strcmp(e1, e2) == 0, "%s: stderr differs:\n%s\n---\n%s", argv[0], e1, e2);
  printf("same output, status %d: %s %s (%zu bytes)\n", s1, argv[0],
         argv[1] ? argv[1] : "", strlen(o1));
  free(o1), free(e1), free(o2), free(e2);
}

/* With HEAPPROF_OUT set, a normal exit leaves one complete profile. */
static void exit_profile(char *preload) {
  char out[1024], path[1024];
  snprintf(out, sizeof out, "HEAPPROF_OUT=%s/exit.%%n.pb.gz", tl_tmpdir());
  snprintf(path, sizeof path, "%s/exit.1.pb.gz", tl_tmpdir());
  char *env[] = {"PATH=/usr/bin:/bin", preload, out, NULL};
  char *py[] = {"/usr/bin/python3", "-c", "x = [str(i) * 10 for i in range(100000)]", NULL};
  char *o, *e;
  CHECK(tl_run_env(py, env, &o, &e) == 0 && *e == '\0', "python3: %s", e);
  tl_profile_t p;
  tl_read_profile(path, &p);
  CHECK(p.nsamples > 0, "the exit profile has no samples");
  printf("exit profile: %zu samples\n", p.nsamples);
  tl_free_profile(&p);
  unlink(path);
  free(o), free(e);
}

/* A profile that cannot be written: one line on stderr saying why, and the
 * program's own output and status are untouched. */
static void failed_write(char *preload) {
  char *env[] = {"PATH=/usr/bin:/bin", preload,
                 "HEAPPROF_OUT=/nonexistent-dir/x.%n.pb.gz", NULL};
  /* python3 leaves through exit(), which runs the exit dump (sh would
   * use _exit, which runs nothing). */
  char *py[] = {"/usr/bin/python3", "-c", "print('out'); raise SystemExit(7)",
                NULL};
  char *o, *e;
  int rc = tl_run_env(py, env, &o, &e);
  CHECK(rc == 7 && strcmp(o, "out\n") == 0, "status %d, stdout %s", rc, o);
  CHECK(strstr(e, "heapprof: cannot write profile /nonexistent-dir/x.1.pb.gz: "
                  "No such file or directory\n") == e &&
            strchr(e, '\n') == e + strlen(e) - 1,
        "want one line saying why, got:\n%s", e);
  printf("failed write reported: %s", e);
  free(o), free(e);
}

int main(int argc, char **argv) {
  CHECK(argc == 2, "usage: test_quiet LIBHEAPPROF");
  char preload[1024], out[1024];
  snprintf(preload, sizeof preload, "LD_PRELOAD=%s", argv[1]);
  snprintf(out, sizeof out, "HEAPPROF_OUT=%s/never.%%p.pb.gz", tl_tmpdir());
  CHECK(chdir(tl_tmpdir()) == 0, "chdir");

  char *ls[] = {"/bin/ls", "-la", "/usr/include/linux", NULL};
  char *sh[] = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL};
  char *py[] = {"/usr/bin/python3", "-c",
                "d = {i: str(i) for i in range(200000)}; print(len(d))", NULL};
  char *sort[] = {"/bin/sh", "-c", "seq 100000 | sort -r | head -3", NULL};
  char *deflt[] = {preload, NULL};
  char *exact[] = {preload, "HEAPPROF_RATE=1", NULL};
  char *off[] = {preload, "HEAPPROF_RATE=0", out, NULL};
  char *const *progs[] = {ls, sh, py, sort};
  for (size_t i = 0; i < 4; i++) {
    same_output(progs[i], deflt);
    same_output(progs[i], exact);
    same_output(progs[i], off);
  }
  CHECK(entries(tl_tmpdir()) == 0,
        "the profiler left files in the working directory");
  exit_profile(preload);
  failed_write(preload);
  printf("ok\n");
  return 0;
}
