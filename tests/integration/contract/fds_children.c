/*
 * fds_children — a child sees exactly the descriptors its parent passed
 * (behaviour B2; CPython's test_subprocess test_pass_fds_redirected found
 * four extra ones, 3-6).
 *
 * usage: fds_children LIBHEAPPROF
 *
 * The program, preloaded with HEAPPROF_HTTP=127.0.0.1:0 and
 * HEAPPROF_RATE=4096, starts a child with posix_spawn and another with
 * fork+exec, each given stdout on a pipe and one more descriptor on
 * number 7, in the same environment (so the child is profiled too). The
 * child allocates (so that stacks are captured) and lists /proc/self/fd:
 * it must find 0 1 2 7.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"
#include "fds_util.h"

#define PASSED 7
#define WANT "0 1 2 7"

extern char **environ;

/* ---- the child ---- */

static int list_child(void) {
  void *keep[512];
  for (int i = 0; i < 512; i++) /* ~2 MB: a few hundred samples */
    keep[i] = fu_malloc(1000 + (size_t)i * 16);
  int fds[256], n = fu_list_fds(fds, 256);
  char text[1024];
  printf("%s\n", fu_fds_text(fds, n, text, sizeof text));
  for (int i = 0; i < 512; i++)
    free(keep[i]);
  return 0;
}

/* ---- the program ---- */

/* Reads the child's one line and checks it. */
static void check_child(const char *how, pid_t pid, int rd) {
  char line[1024] = "";
  int n = fu_line(rd, line, sizeof line, 60000);
  close(rd);
  FU_EXPECT(n >= 0 && strcmp(line, WANT) == 0,
            "a child started with %s was given %s but lists \"%s\"", how, WANT,
            line);
  FU_EXPECT(fu_wait(pid, 60) == 0, "the child started with %s failed", how);
}

static void by_spawn(char *args[], int passed) {
  int p[2];
  FU_EXPECT(pipe2(p, O_CLOEXEC) == 0, "pipe2");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  posix_spawn_file_actions_adddup2(&fa, passed, PASSED);
  pid_t pid;
  int rc = posix_spawn(&pid, args[0], &fa, NULL, args, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(p[1]);
  if (FU_EXPECT(rc == 0, "posix_spawn: %s", strerror(rc)))
    check_child("posix_spawn", pid, p[0]);
}

static void by_fork(char *args[], int passed) {
  int p[2];
  FU_EXPECT(pipe2(p, O_CLOEXEC) == 0, "pipe2");
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    dup2(passed, PASSED);
    execve(args[0], args, environ);
    _exit(127);
  }
  close(p[1]);
  check_child("fork+exec", pid, p[0]);
}

static int program(void) {
  alarm(150);
  free(fu_malloc(1 << 20));
  int passed = open("/dev/null", O_RDONLY | O_CLOEXEC);
  char *args[] = {(char *)fu_self(), "--list", NULL};
  by_spawn(args, passed);
  by_fork(args, passed);
  return fu_finish("children see only what they were given");
}

/* ---- the driver ---- */

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--list") == 0)
    return list_child();
  if (argc == 2 && strcmp(argv[1], "--child") == 0)
    return program();
  CHECK(argc == 2, "usage: fds_children LIBHEAPPROF");
  char **env = fu_env(argv[1], "HEAPPROF_RATE=4096",
                      "HEAPPROF_HTTP=127.0.0.1:0", (char *)NULL);
  char *args[] = {(char *)fu_self(), "--child", NULL};
  fu_proc_t p = fu_start(args, env, FU_OUT | FU_ERR);
  fu_collect_t *errs = fu_collect(p.err);
  FU_EXPECT(fu_relay(p.out, 120000) == 0, "the program did not finish in 120 s");
  int status = fu_wait(p.pid, 60);
  char *err = fu_collected(errs, 5000);
  FU_EXPECT(status == 0, "the program's exit status %d (its checks above); "
                         "its stderr:\n%s", status, err);
  return fu_finish("children see only what they were given");
}
