/*
 * test_badinput — bad input from outside, end to end with the real library.
 *
 *   test_badinput env LIB       every HEAPPROF_* variable with garbage,
 *                               empty, negative, overflowing and huge values
 *                               under a real program: one stderr line naming
 *                               the variable, the program's output unchanged
 *   test_badinput paths         (preloaded) profiles written into a missing
 *                               directory, a read-only file system, a full
 *                               one, over planted temp files and a planted
 *                               symlink: a clear error each time, nothing
 *                               clobbered, and the next write succeeds once
 *                               the problem is gone (needs root for mounts)
 *   test_badinput setuid PROBE  a setuid binary run by another user ignores
 *                               every HEAPPROF_* variable
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"

/* ---- env ---- */

static void env_case(const char *lib, const char *var, const char *value,
                     const char *plain_out) {
  char preload[1024], setting[256];
  snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lib);
  snprintf(setting, sizeof setting, "%s=%s", var, value);
  char *env[] = {"PATH=/usr/bin:/bin", "LC_ALL=C", preload, setting, NULL};
  char *args[] = {"/bin/ls", "-la", "/usr/include/linux", NULL};
  char *o, *e;
  int rc = tl_run_env(args, env, &o, &e);
  CHECK(rc == 0 && strcmp(o, plain_out) == 0, "%s: the program was affected",
        setting);
  size_t lines = 0;
  for (char *c = e; *c; c++)
    lines += *c == '\n';
  CHECK(lines == 1 && strstr(e, var) != NULL,
        "%s: want one stderr line naming %s, got:\n%s", setting, var, e);
  free(o), free(e);
}

static void env_all(const char *lib) {
  char *env[] = {"PATH=/usr/bin:/bin", "LC_ALL=C", NULL};
  char *args[] = {"/bin/ls", "-la", "/usr/include/linux", NULL};
  char *plain, *e;
  CHECK(tl_run_env(args, env, &plain, &e) == 0, "ls");
  static const char *bad[] = {"", "garbage", "-1", "99999999999999999999999",
                              "18446744073709551616", "1e9", "0x", " 12", "12 "};
  static const char *vars[] = {"HEAPPROF_RATE", "HEAPPROF_SEED",
                               "HEAPPROF_DEPTH", "HEAPPROF_MAX_MEM",
                               "HEAPPROF_INTERVAL", "HEAPPROF_GROWTH",
                               "HEAPPROF_SIGNAL", "HEAPPROF_VERBOSE",
                               "HEAPPROF_PEAK", "HEAPPROF_LEAKWATCH",
                               "HEAPPROF_HTTP_REMOTE"};
  int n = 0;
  for (size_t v = 0; v < sizeof vars / sizeof *vars; v++)
    for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
      /* A few values are valid for some variables (a 0x seed is not). */
      if (strcmp(vars[v], "HEAPPROF_SEED") == 0 && strcmp(bad[b], "1e9") == 0)
        continue;
      env_case(lib, vars[v], bad[b], plain);
      n++;
    }
  env_case(lib, "HEAPPROF_OUT", "", plain);
  env_case(lib, "HEAPPROF_OUT", "/tmp/%x.pb.gz", plain);
  env_case(lib, "HEAPPROF_HTTP", "999.1.1.1:80", plain);
  env_case(lib, "HEAPPROF_HTTP", "10.0.0.1:6060", plain); /* not loopback */
  printf("ok: %d bad values, one line each, the program unaffected\n", n + 4);
}

/* ---- paths ---- */

static int entries(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d)) != NULL;)
    n += e->d_name[0] != '.';
  if (d)
    closedir(d);
  return n;
}

static void write_fails(const char *path, int want_errno, const char *what) {
  errno = 0;
  int rc = tl_write_profile(path, 0);
  CHECK(rc != 0 && errno == want_errno, "%s: rc %d errno %d (%s), want errno %d",
        what, rc, errno, strerror(errno), want_errno);
  printf("%s: refused (%s)\n", what, strerror(errno));
}

static void write_works(const char *path, const char *what) {
  CHECK(tl_write_profile(path, 0) == 0, "%s: write failed: %s", what,
        strerror(errno));
  tl_profile_t p;
  tl_read_profile(path, &p);
  tl_free_profile(&p);
  printf("%s: written once the problem was gone\n", what);
}

static void mount_tmpfs(const char *dir, const char *opts) {
  CHECK(mkdir(dir, 0755) == 0 || errno == EEXIST, "mkdir %s", dir);
  CHECK(mount("tmpfs", dir, "tmpfs", 0, opts) == 0,
        "mount tmpfs on %s: %s (this test needs root)", dir, strerror(errno));
}

static void paths(void) {
  char base[600], dir[700], path[800], plant[900];
  snprintf(base, sizeof base, "%s", tl_tmpdir());
  snprintf(path, sizeof path, "%s/missing/p.pb.gz", base);
  write_fails(path, ENOENT, "missing directory");
  snprintf(dir, sizeof dir, "%s/missing", base);
  mkdir(dir, 0700);
  write_works(path, "missing directory");

  snprintf(dir, sizeof dir, "%s/ro", base);
  mount_tmpfs(dir, "size=1m");
  CHECK(mount(NULL, dir, NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0, "remount ro");
  snprintf(path, sizeof path, "%s/p.pb.gz", dir);
  write_fails(path, EROFS, "read-only file system");
  CHECK(mount(NULL, dir, NULL, MS_REMOUNT, "size=1m") == 0, "remount rw");
  write_works(path, "read-only file system");
  umount(dir);

  snprintf(dir, sizeof dir, "%s/full", base);
  mount_tmpfs(dir, "size=64k");
  snprintf(plant, sizeof plant, "%s/filler", dir);
  int fd = open(plant, O_WRONLY | O_CREAT, 0600);
  char block[4096] = {0};
  while (write(fd, block, sizeof block) > 0)
    ;
  close(fd);
  snprintf(path, sizeof path, "%s/p.pb.gz", dir);
  write_fails(path, ENOSPC, "full file system");
  CHECK(entries(dir) == 1, "the failed write left a file behind");
  unlink(plant);
  write_works(path, "full file system");
  umount(dir);

  /* Planted temp names: the write refuses them and never writes through. */
  snprintf(dir, sizeof dir, "%s/planted", base);
  mkdir(dir, 0700);
  snprintf(path, sizeof path, "%s/p.pb.gz", dir);
  for (int i = 0; i < 400; i++) {
    snprintf(plant, sizeof plant, "%s/.heapprof-%d-%d.tmp", dir, (int)getpid(), i);
    fd = open(plant, O_WRONLY | O_CREAT, 0600);
    CHECK(write(fd, "mine", 4) == 4, "plant");
    close(fd);
  }
  write_fails(path, EEXIST, "planted temp file");
  for (int i = 0; i < 400; i++) {
    snprintf(plant, sizeof plant, "%s/.heapprof-%d-%d.tmp", dir, (int)getpid(), i);
    char got[8] = {0};
    fd = open(plant, O_RDONLY);
    CHECK(fd >= 0 && read(fd, got, sizeof got) == 4 && strcmp(got, "mine") == 0,
          "a planted file was written through");
    close(fd);
    unlink(plant);
  }
  write_works(path, "planted temp file");

  /* A symlink planted at the target is refused; link and victim are kept;
   * once it is gone the write succeeds. */
  snprintf(plant, sizeof plant, "%s/victim", dir);
  fd = open(plant, O_WRONLY | O_CREAT, 0600);
  CHECK(write(fd, "keep", 4) == 4, "victim");
  close(fd);
  snprintf(path, sizeof path, "%s/link.pb.gz", dir);
  CHECK(symlink(plant, path) == 0, "symlink");
  write_fails(path, ELOOP, "planted symlink");
  struct stat st;
  CHECK(stat(plant, &st) == 0 && st.st_size == 4, "the symlink's victim changed");
  CHECK(lstat(path, &st) == 0 && S_ISLNK(st.st_mode), "the symlink was replaced");
  unlink(path);
  write_works(path, "planted symlink");
  printf("ok\n");
}

/* ---- setuid ---- */

static void setuid_ignores(const char *probe) {
  char dir[] = "/tmp/heapprof-suid-XXXXXX", bin[128], out[160], copy[160];
  CHECK(getuid() == 0, "the setuid test needs root (to make a setuid binary)");
  CHECK(mkdtemp(dir) != NULL && chmod(dir, 01777) == 0, "mkdtemp");
  snprintf(bin, sizeof bin, "%s/probe", dir);
  snprintf(copy, sizeof copy, "/bin/cp %s %s", probe, bin);
  CHECK(system(copy) == 0, "cp probe");
  snprintf(out, sizeof out, "HEAPPROF_OUT=%s/out.%%n.pb.gz", dir);
  char *env[] = {"PATH=/usr/bin:/bin", "HEAPPROF_RATE=1", out, NULL};
  char *args[] = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                  "--clear-groups", bin, NULL};
  char *o, *e, exit_profile[200];
  snprintf(exit_profile, sizeof exit_profile, "%s/out.1.pb.gz", dir);
  /* Not setuid: the variables are read (so this test can fail). */
  CHECK(chmod(bin, 0755) == 0, "chmod");
  CHECK(tl_run_env(args, env, &o, &e) == 0 && strcmp(o, "1\n") == 0,
        "plain probe as nobody: rate %s%s", o, e);
  CHECK(access(exit_profile, F_OK) == 0, "plain probe wrote no exit profile");
  unlink(exit_profile);
  /* Setuid root, run by nobody: none of them is. */
  CHECK(chown(bin, 0, 0) == 0 && chmod(bin, 04755) == 0, "chmod u+s");
  CHECK(tl_run_env(args, env, &o, &e) == 0, "setuid probe failed: %s", e);
  CHECK(strcmp(o, "524288\n") == 0, "setuid probe ran at rate %s", o);
  CHECK(access(exit_profile, F_OK) != 0, "the setuid probe honoured HEAPPROF_OUT");
  printf("ok: setuid: rate %s", o);
  unlink(bin);
  rmdir(dir);
}

int main(int argc, char **argv) {
  CHECK(argc >= 2, "usage: test_badinput env LIB | paths | setuid PROBE");
  if (strcmp(argv[1], "env") == 0 && argc == 3)
    env_all(argv[2]);
  else if (strcmp(argv[1], "paths") == 0)
    paths();
  else if (strcmp(argv[1], "setuid") == 0 && argc == 3)
    setuid_ignores(argv[2]);
  else
    CHECK(0, "bad usage");
  return 0;
}
