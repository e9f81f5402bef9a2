/*
 * proc_names — profile names (behaviours B8, B9).
 *
 *   name248, name255   HEAPPROF_OUT names a file of 248 (255) bytes in an
 *                      existing directory: every legal name works. The
 *                      profile (heapprof_dump, then the exit profile over
 *                      it) is written under exactly that name, nothing else
 *                      is left in the directory, and nothing is said.
 *   pathmax            a template whose expansion cannot fit PATH_MAX
 *                      (600 × %t: 1,200 bytes as written, 6,000 expanded):
 *                      exactly one stderr line, at start-up (before main),
 *                      naming HEAPPROF_OUT; the default template is used,
 *                      so heapprof_dump writes heapprof.<pid>.1.pb.gz in
 *                      the working directory.
 *   pathmax-verbose    the same with HEAPPROF_VERBOSE=1: stderr also names
 *                      the file the profile went to.
 *   unwritable[-verbose]  HEAPPROF_OUT in a directory that does not exist:
 *                      the failed dump says so in exactly one stderr line
 *                      naming the file and why (also with VERBOSE=1).
 *
 * usage: proc_names MODE LIBHEAPPROF   (the program: proc_names --child
 *        exit|_exit)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proc_common.h"
#include "testlib.h"

static void *volatile sink;

static __attribute__((noipa)) void named_site(void) { sink = malloc(1 << 20); }

static int child(int normal_exit) {
  fprintf(stderr, "main starts\n");
  named_site();
  int (*dump)(char *, size_t) = (int (*)(char *, size_t))pc_api("heapprof_dump");
  if (dump == NULL)
    return 3;
  char path[8192] = "";
  int rc = dump(path, sizeof path);
  printf("dump %d %s\n", rc, path);
  fflush(stdout);
  if (!normal_exit)
    _exit(0);
  return 0;
}

/* Counts the lines of `err` other than the program's own "main starts":
 * all of them (returned), those naming HEAPPROF_OUT (*named), and those
 * naming it before main started (*named_before). */
static int heapprof_lines(const char *err, int *named, int *named_before) {
  int n = 0, seen_main = 0;
  *named = *named_before = 0;
  for (const char *l = err; *l;) {
    size_t len = strcspn(l, "\n");
    char line[8192];
    snprintf(line, sizeof line, "%.*s", (int)len, l);
    if (strcmp(line, "main starts") == 0) {
      seen_main = 1;
    } else {
      n++;
      if (strstr(line, "HEAPPROF_OUT") != NULL) {
        ++*named;
        *named_before += !seen_main;
      }
    }
    l += len + (l[len] == '\n');
  }
  return n;
}

static int count_entries(const char *dir, char *only, size_t cap) {
  DIR *d = opendir(dir);
  CHECK(d != NULL, "opendir %s", dir);
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
      snprintf(only, cap, "%s", e->d_name);
      n++;
    }
  closedir(d);
  return n;
}

static int holds_site(const char *path) {
  tl_profile_t p;
  tl_read_profile(path, &p);
  int64_t v[4];
  int ok = tl_site(&p, "named_site", v) > 0;
  tl_free_profile(&p);
  return ok;
}

static int long_name(const char *self, const char *lib, int len) {
  char dir[600], name[300], path[1000], out[1100];
  snprintf(dir, sizeof dir, "%s/names", tl_tmpdir());
  CHECK(mkdir(dir, 0700) == 0, "mkdir %s", dir);
  memset(name, 'x', (size_t)len);
  name[0] = 'p';
  memcpy(name + len - 6, ".pb.gz", 7);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  snprintf(out, sizeof out, "HEAPPROF_OUT=%s", path);
  char *vars[] = {out, "HEAPPROF_RATE=1"};
  char *args[] = {(char *)self, "--child", "exit", NULL};
  pc_result_t r;
  pc_run(args, pc_env(lib, vars, 2), NULL, NULL, 0, 30, &r);
  printf("%d-byte name: %s\nstdout: %sstderr: %s", len, pc_describe(&r), r.out,
         r.err);
  pc_expect(r.exited && r.status == 0, "the program ended with %s",
            pc_describe(&r));
  int rc = -99;
  char got[1100] = "";
  sscanf(r.out, "dump %d %1099s", &rc, got);
  pc_expect(rc == 0, "heapprof_dump returned %d for a %d-byte file name",
            rc, len);
  pc_expect(strcmp(got, path) == 0, "heapprof_dump named %s", got);
  pc_expect(strcmp(r.err, "main starts\n") == 0,
            "heapprof said something on stderr");
  char only[300] = "";
  int n = count_entries(dir, only, sizeof only);
  pc_expect(n == 1 && strcmp(only, name) == 0,
            "%s holds %d entries (the last: %s), expected the profile alone",
            dir, n, only);
  if (access(path, F_OK) == 0)
    pc_expect(holds_site(path), "the profile lacks named_site");
  return pc_finish("a legal long file name is written under exactly that "
                   "name");
}

static int too_long(const char *self, const char *lib, int verbose) {
  char cwd[600], out[2000];
  snprintf(cwd, sizeof cwd, "%s/cwd", tl_tmpdir());
  CHECK(mkdir(cwd, 0700) == 0, "mkdir %s", cwd);
  int at = snprintf(out, sizeof out, "HEAPPROF_OUT=%s/", tl_tmpdir());
  for (int i = 0; i < 600; i++)
    at += snprintf(out + at, sizeof out - at, "%%t");
  CHECK((size_t)at < sizeof out - 1, "template buffer");
  char *vars[] = {out, "HEAPPROF_RATE=1", verbose ? "HEAPPROF_VERBOSE=1" : NULL};
  char *args[] = {(char *)self, "--child", "_exit", NULL};
  pc_result_t r;
  pc_run(args, pc_env(lib, vars, verbose ? 3 : 2), cwd, NULL, 0, 30, &r);
  printf("template of %d bytes, 6,000+ expanded: %s\nstdout: %sstderr: %s",
         at - 13, pc_describe(&r), r.out, r.err);
  pc_expect(r.exited && r.status == 0, "the program ended with %s",
            pc_describe(&r));
  int named, named_before;
  int n = heapprof_lines(r.err, &named, &named_before);
  pc_expect(named_before == 1 && named == 1,
            "%d stderr lines name HEAPPROF_OUT, %d of them at start-up; "
            "expected exactly one, at start-up", named, named_before);
  if (!verbose)
    pc_expect(n == 1, "heapprof printed %d stderr lines, expected one", n);
  int rc = -99, pid = 0;
  char got[8192] = "";
  sscanf(r.out, "dump %d %8191s", &rc, got);
  char want[64];
  sscanf(r.out, "dump %*d heapprof.%d.", &pid);
  snprintf(want, sizeof want, "heapprof.%d.1.pb.gz", pid);
  pc_expect(rc == 0 && pid > 0 && strcmp(got, want) == 0,
            "heapprof_dump returned %d, path \"%.80s\": the default template "
            "was not used", rc, got);
  char path[1000];
  snprintf(path, sizeof path, "%s/%s", cwd, want);
  if (rc == 0 && pid > 0)
    pc_expect(access(path, F_OK) == 0 && holds_site(path),
              "no profile with named_site at %s", path);
  if (verbose)
    pc_expect(pid > 0 && strstr(r.err, want) != NULL,
              "with HEAPPROF_VERBOSE=1, stderr does not say where the "
              "profile went (%s)", want);
  return pc_finish("a template that cannot fit PATH_MAX is refused at "
                   "start-up, in one line");
}

static int unwritable(const char *self, const char *lib, int verbose) {
  char out[1000];
  snprintf(out, sizeof out, "HEAPPROF_OUT=%s/missing/p.%%n.pb.gz",
           tl_tmpdir());
  char *vars[] = {out, "HEAPPROF_RATE=1", verbose ? "HEAPPROF_VERBOSE=1" : NULL};
  char *args[] = {(char *)self, "--child", "_exit", NULL};
  pc_result_t r;
  pc_run(args, pc_env(lib, vars, verbose ? 3 : 2), NULL, NULL, 0, 30, &r);
  printf("unwritable: %s\nstdout: %sstderr: %s", pc_describe(&r), r.out,
         r.err);
  int rc = 0;
  sscanf(r.out, "dump %d", &rc);
  pc_expect(rc != 0, "heapprof_dump into a missing directory returned 0");
  int lines = 0, why = 0;
  for (const char *l = r.err; *l;) {
    size_t len = strcspn(l, "\n");
    char line[2000];
    snprintf(line, sizeof line, "%.*s", (int)len, l);
    if (strstr(line, "missing/p.1.pb.gz") != NULL) {
      lines++;
      why += strstr(line, strerror(ENOENT)) != NULL;
    }
    l += len + (l[len] == '\n');
  }
  pc_expect(lines == 1 && why == 1,
            "%d stderr lines name the file, %d say why (%s); expected one",
            lines, why, strerror(ENOENT));
  int named, named_before;
  if (!verbose)
    pc_expect(heapprof_lines(r.err, &named, &named_before) == 1,
              "heapprof printed more than that line");
  return pc_finish("a dump that cannot be written says why in one line");
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--child") == 0)
    return child(strcmp(argv[2], "exit") == 0);
  CHECK(argc == 3, "usage: proc_names MODE LIBHEAPPROF");
  const char *m = argv[1];
  if (strcmp(m, "name248") == 0)
    return long_name(argv[0], argv[2], 248);
  if (strcmp(m, "name255") == 0)
    return long_name(argv[0], argv[2], 255);
  if (strcmp(m, "pathmax") == 0)
    return too_long(argv[0], argv[2], 0);
  if (strcmp(m, "pathmax-verbose") == 0)
    return too_long(argv[0], argv[2], 1);
  if (strcmp(m, "unwritable") == 0)
    return unwritable(argv[0], argv[2], 0);
  if (strcmp(m, "unwritable-verbose") == 0)
    return unwritable(argv[0], argv[2], 1);
  CHECK(0, "unknown mode %s", m);
}
