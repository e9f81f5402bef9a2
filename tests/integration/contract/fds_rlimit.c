/*
 * fds_rlimit — a program may use every descriptor number its
 * RLIMIT_NOFILE allows: with the soft limit at 32, it opens exactly 29
 * files (3..31) before EMFILE, however busy heapprof is.
 *
 * usage: fds_rlimit LIBHEAPPROF
 *
 * The program runs preloaded with HEAPPROF_RATE=1, HEAPPROF_HTTP=127.0.0.1:0
 * and HEAPPROF_INTERVAL=1; it lowers its limit, allocates, has a SIGUSR2
 * profile written, and then opens /dev/null until it fails. Each
 * descriptor heapprof keeps in the program's table costs the program one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "testlib.h"
#include "fds_util.h"

#define LIMIT 32

static int program(const char *dir) {
  alarm(120);
  struct rlimit rl;
  FU_EXPECT(getrlimit(RLIMIT_NOFILE, &rl) == 0, "getrlimit");
  rl.rlim_cur = LIMIT;
  FU_EXPECT(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit: %s", strerror(errno));
  for (int i = 0; i < 256; i++)
    free(fu_malloc(4096 + (size_t)i));
  char prefix[64];
  snprintf(prefix, sizeof prefix, "r.%d.", (int)getpid());
  raise(SIGUSR2);
  FU_EXPECT(fu_wait_files(dir, prefix, 1, 30000) == 0,
            "no profile 30 s after SIGUSR2");
  int opened = 0, err = 0, fds[LIMIT];
  for (;;) {
    int fd = open("/dev/null", O_RDONLY);
    if (fd < 0) {
      err = errno;
      break;
    }
    if (opened < LIMIT)
      fds[opened] = fd;
    opened++;
  }
  int listed[LIMIT + 64];
  for (int i = 0; i < opened && i < LIMIT; i++)
    close(fds[i]);
  int n = fu_list_fds(listed, LIMIT + 64);
  char text[512];
  FU_EXPECT(opened == LIMIT - 3 && err == EMFILE,
            "with RLIMIT_NOFILE at %d the program opened %d files (want %d) "
            "before %s; its table now: %s", LIMIT, opened, LIMIT - 3,
            strerror(err), fu_fds_text(listed, n, text, sizeof text));
  return fu_finish("every descriptor under the limit is the program's");
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--child") == 0)
    return program(argv[2]);
  CHECK(argc == 2, "usage: fds_rlimit LIBHEAPPROF");
  const char *dir = tl_tmpdir();
  char out[1024];
  snprintf(out, sizeof out, "HEAPPROF_OUT=%s/r.%%p.%%n.pb.gz", dir);
  char **env = fu_env(argv[1], out, "HEAPPROF_RATE=1",
                      "HEAPPROF_HTTP=127.0.0.1:0", "HEAPPROF_INTERVAL=1",
                      (char *)NULL);
  char *args[] = {(char *)fu_self(), "--child", (char *)dir, NULL};
  fu_proc_t p = fu_start(args, env, FU_OUT | FU_ERR);
  fu_collect_t *errs = fu_collect(p.err);
  FU_EXPECT(fu_relay(p.out, 120000) == 0, "the program did not finish");
  int status = fu_wait(p.pid, 60);
  char *err = fu_collected(errs, 5000);
  FU_EXPECT(status == 0, "the program's exit status %d (its checks above); "
                         "its stderr:\n%s", status, err);
  return fu_finish("every descriptor under the limit is the program's");
}
