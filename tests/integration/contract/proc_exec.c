/*
 * proc_exec — profiles across exec never collide (behaviour B7).
 *
 * A preloaded program with HEAPPROF_OUT=DIR/p.%p.%n.pb.gz allocates from
 * first_image_site, writes a profile (heapprof_dump) and execs itself:
 * same pid, preload kept, heapprof started afresh. The second image
 * allocates from second_image_site and waits; the test runs
 * `heapprof dump PID` against it, lets it go on, and it writes a profile
 * with heapprof_dump and exits (its exit profile too).
 *
 * Then: the first image's profile is still there, intact, holding
 * first_image_site and not second_image_site; `heapprof dump` printed a
 * new profile's path; the second image's three profiles (signal, API,
 * exit) have names of their own, hold second_image_site, and the
 * directory holds four profiles in all.
 *
 * usage: proc_exec HEAPPROF_CLI LIBHEAPPROF
 *        (the program: proc_exec --image1|--image2 DIR)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc_common.h"
#include "testlib.h"

static void *volatile sink;

static __attribute__((noipa)) void first_image_site(void) {
  sink = malloc(3 << 20);
}
static __attribute__((noipa)) void second_image_site(void) {
  sink = malloc(5 << 20);
}

static int dump(char *path, size_t cap) {
  int (*f)(char *, size_t) = (int (*)(char *, size_t))pc_api("heapprof_dump");
  if (f == NULL) {
    printf("heapprof_dump not found\n");
    exit(3);
  }
  return f(path, cap);
}

static int image(int first, const char *self, const char *dir) {
  char path[4200];
  if (first) {
    first_image_site();
    int rc = dump(path, sizeof path);
    printf("image1 %d %s\n", rc, path);
    fflush(stdout);
    char *args[] = {(char *)self, "--image2", (char *)dir, NULL};
    execv("/proc/self/exe", args);
    printf("exec failed: %s\n", strerror(errno));
    return 3;
  }
  second_image_site();
  printf("image2-ready %d\n", (int)getpid());
  fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) /* until the test closes our stdin */
    ;
  int rc = dump(path, sizeof path);
  printf("image2 %d %s\n", rc, path);
  return 0; /* and the exit profile */
}

/* The path with symbolic links resolved, as `heapprof dump` prints it. */
static void canonical(char *path, size_t cap) {
  char real[PATH_MAX];
  if (realpath(path, real) != NULL)
    snprintf(path, cap, "%s", real);
}

/* Reads one line from fd into buf (without the '\n'); 0 at EOF. */
static int read_line(int fd, char *buf, size_t cap) {
  size_t n = 0;
  while (n + 1 < cap) {
    char c;
    ssize_t r = read(fd, &c, 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    if (c == '\n') {
      buf[n] = '\0';
      return 1;
    }
    buf[n++] = c;
  }
  buf[n] = '\0';
  return n > 0;
}

/* 1 if the profile at path decodes and has a sample under `func`. */
static int holds(const char *path, const char *func) {
  tl_profile_t p;
  tl_read_profile(path, &p);
  int64_t v[4];
  int n = tl_site_any(&p, func, v) > 0;
  tl_free_profile(&p);
  return n;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--image1") == 0)
    return image(1, argv[0], argv[2]);
  if (argc == 3 && strcmp(argv[1], "--image2") == 0)
    return image(0, argv[0], argv[2]);
  CHECK(argc == 3, "usage: proc_exec HEAPPROF_CLI LIBHEAPPROF");
  pc_deadline(120);
  const char *cli = argv[1], *dir = tl_tmpdir();
  char out[1024];
  snprintf(out, sizeof out, "HEAPPROF_OUT=%s/p.%%p.%%n.pb.gz", dir);
  char *vars[] = {out, "HEAPPROF_RATE=1"};
  char **env = pc_env(argv[2], vars, 2);

  int in[2], outp[2];
  CHECK(pipe2(in, O_CLOEXEC) == 0 && pipe2(outp, O_CLOEXEC) == 0, "pipe2");
  fflush(NULL);
  pid_t pid = fork();
  CHECK(pid >= 0, "fork");
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(outp[1], 1);
    char *args[] = {argv[0], "--image1", (char *)dir, NULL};
    execve(argv[0], args, env);
    _exit(127);
  }
  close(in[0]);
  close(outp[1]);

  char line[4400], p1[4300] = "", p2[4300] = "", p3[4300] = "";
  int rc1 = -99, rc3 = -99, ready = 0;
  pc_stage("waiting for the first image's profile");
  CHECK(read_line(outp[0], line, sizeof line) &&
            sscanf(line, "image1 %d %4299s", &rc1, p1) == 2,
        "the first image said: %s", line);
  CHECK(rc1 == 0, "the first image's heapprof_dump returned %d", rc1);
  canonical(p1, sizeof p1);
  pc_stage("waiting for the second image");
  CHECK(read_line(outp[0], line, sizeof line) &&
            sscanf(line, "image2-ready %d", &ready) == 1 && ready == pid,
        "the second image said: %s", line);

  /* The CLI, against the second image: the signal's profile is new. */
  char pidarg[32];
  snprintf(pidarg, sizeof pidarg, "%d", (int)pid);
  char *cargs[] = {(char *)cli, "dump", pidarg, "--timeout", "20", NULL};
  char *cenv[] = {"PATH=/usr/bin:/bin", NULL};
  pc_result_t c;
  pc_stage("running heapprof dump %d", (int)pid);
  pc_run(cargs, cenv, NULL, NULL, 0, 60, &c);
  printf("heapprof dump %d: %s\n  stdout: %s  stderr: %s\n", (int)pid,
         pc_describe(&c), c.out, c.err);
  pc_expect(c.exited && c.status == 0 && c.out[0] == '/',
            "`heapprof dump %d` against the exec'd image found no new "
            "profile (%s): %s", (int)pid, pc_describe(&c), c.err);
  if (c.exited && c.status == 0) {
    snprintf(p2, sizeof p2, "%s", c.out);
    p2[strcspn(p2, "\n")] = '\0';
  }

  close(in[1]); /* go on: heapprof_dump, then exit */
  pc_stage("waiting for the second image's profile");
  CHECK(read_line(outp[0], line, sizeof line) &&
            sscanf(line, "image2 %d %4299s", &rc3, p3) == 2,
        "the second image said: %s", line);
  pc_expect(rc3 == 0, "the second image's heapprof_dump returned %d", rc3);
  canonical(p3, sizeof p3);
  int status;
  pc_stage("waiting for the second image to exit");
  CHECK(pc_wait(pid, 30, &status) == 0, "the second image never exited");
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "the second image ended with status 0x%x", status);

  printf("image1 wrote %s\nheapprof dump: %s\nimage2 wrote %s\n", p1, p2, p3);
  pc_expect(strcmp(p3, p1) != 0,
            "the second image's heapprof_dump used the first image's name %s",
            p1);
  pc_expect(p2[0] == '\0' || (strcmp(p2, p1) != 0 && strcmp(p2, p3) != 0),
            "the signal's profile %s has another profile's name", p2);
  int first_ok = access(p1, F_OK) == 0 && holds(p1, "first_image_site") &&
                 !holds(p1, "second_image_site");
  pc_expect(first_ok, "the first image's profile %s was replaced: it no "
                      "longer holds first_image_site alone", p1);
  if (p2[0] != '\0')
    pc_expect(holds(p2, "second_image_site"),
              "the signal's profile %s lacks second_image_site", p2);
  pc_expect(holds(p3, "second_image_site"),
            "the second image's profile %s lacks second_image_site", p3);

  /* Four profiles, one of them the exit profile (holding the second
   * image's allocation, like every profile but the first). */
  DIR *d = opendir(dir);
  int profiles = 0, second = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    size_t len = strlen(e->d_name);
    if (len < 7 || strcmp(e->d_name + len - 6, ".pb.gz") != 0)
      continue;
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    profiles++;
    second += holds(path, "second_image_site");
    printf("  %s\n", e->d_name);
  }
  closedir(d);
  pc_expect(profiles == 4 && second == 3,
            "%s holds %d profiles, %d of them from the second image; "
            "expected 4 and 3 (first image, signal, API, exit)",
            dir, profiles, second);
  return pc_finish("profiles of one pid across exec never collide");
}
