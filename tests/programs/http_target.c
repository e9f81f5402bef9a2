/*
 * http_target — a process for test_http and test_cli to profile from
 * outside: it keeps allocating at one site until its standard input closes.
 *
 * usage: http_target [slow-dump]
 * With slow-dump it handles SIGUSR1 itself (run it with HEAPPROF_SIGNAL=USR1,
 * so that `heapprof dump` sends that signal) by playing a profile write
 * caught half-way: a temporary file named as the writer names them appears
 * beside the profiles first, and the profile itself (heapprof_dump) a
 * second later. It writes "ready" on stdout once the handler is in place.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t asked;

static void on_usr1(int sig) {
  (void)sig;
  asked = 1;
}

__attribute__((noipa)) void *served_leak(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}

/* ".heapprof-<pid>-1.tmp" in HEAPPROF_OUT's directory, then the profile. */
static void slow_dump(void) {
  const char *out = getenv("HEAPPROF_OUT");
  const char *slash = out != NULL ? strrchr(out, '/') : NULL;
  char tmp[4200], path[4096];
  if (slash == NULL)
    _exit(3);
  snprintf(tmp, sizeof tmp, "%.*s/.heapprof-%d-1.tmp", (int)(slash - out), out,
           (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    _exit(4);
  close(fd);
  sleep(1);
  int (*dump)(char *, size_t) =
      (int (*)(char *, size_t))dlsym(RTLD_DEFAULT, "heapprof_dump");
  if (dump == NULL || dump(path, sizeof path) != 0)
    _exit(5);
}

int main(int argc, char **argv) {
  struct pollfd in = {0, POLLIN, 0};
  if (argc > 1 && strcmp(argv[1], "slow-dump") == 0) {
    struct sigaction sa = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &sa, NULL);
    printf("ready\n");
    fflush(stdout);
  }
  for (int i = 0;; i++) {
    served_leak(50000 + (size_t)(i % 7) * 1000);
    if (asked) {
      asked = 0;
      slow_dump();
    }
    if (poll(&in, 1, 5) > 0) {
      char c;
      if (read(0, &c, 1) <= 0)
        return 0;
    }
  }
}
