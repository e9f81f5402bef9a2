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
  printf("ok\n");
  return 0;
}
