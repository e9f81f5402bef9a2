/*
 * test_redis — redis-server (Debian's, on jemalloc) under the profiler on
 * loopback: redis-benchmark runs SET/GET/LPUSH/LRANGE against it without an
 * error, `kill -USR2` writes a profile while it serves, a normal SHUTDOWN
 * exits 0 and writes the exit profile, and both open in go tool pprof with
 * redis's own allocation sites in them.
 *
 * usage: test_redis LIBHEAPPROF [RATE]   (RATE: HEAPPROF_RATE, default unset)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

/* A loopback port nobody listens on just now. */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
            getsockname(fd, (struct sockaddr *)&a, &len) == 0, "free port");
  close(fd);
  return ntohs(a.sin_port);
}

/* redis-cli -p PORT WORD [WORD2]: each word of the command its own arg. */
static int cli(const char *port, const char *cmd, const char *arg, char **out) {
  char *argv[] = {"redis-cli", "-p", (char *)port, (char *)cmd, (char *)arg, NULL};
  return tl_run(argv, out);
}

int main(int argc, char **argv) {
  CHECK(argc == 2 || argc == 3, "usage: test_redis LIBHEAPPROF [RATE]");
  char rate[64] = "HEAPPROF_SIGNAL=USR2";
  if (argc == 3)
    snprintf(rate, sizeof rate, "HEAPPROF_RATE=%s", argv[2]);
  const char *dir = tl_tmpdir();
  char port[16], preload[1024], out[1100], path[1100];
  snprintf(port, sizeof port, "%d", free_port());
  snprintf(preload, sizeof preload, "LD_PRELOAD=%s", argv[1]);
  snprintf(out, sizeof out, "HEAPPROF_OUT=%s/r.%%p.%%n.pb.gz", dir);
  pid_t pid = fork();
  if (pid == 0) {
    alarm(120); /* never outlive the test */
    char *env[] = {"PATH=/usr/bin:/bin", preload, out, rate, NULL};
    char *args[] = {"/usr/bin/redis-server", "--port", port, "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--daemonize", "no",
                    "--loglevel", "warning", NULL};
    execve(args[0], args, env);
    _exit(127);
  }
  char *reply = NULL;
  int up = 0;
  for (int i = 0; i < 200 && !up; i++, sleep_ms(50)) {
    free(reply);
    up = cli(port, "ping", NULL, &reply) == 0 && strcmp(reply, "PONG\n") == 0;
  }
  CHECK(up, "redis-server under the profiler did not answer PING");
  char *bench;
  char *bargs[] = {"redis-benchmark", "-p", port, "-n", "20000", "-t",
                   "set,get,lpush,lrange", "-q", NULL};
  CHECK(tl_run(bargs, &bench) == 0, "redis-benchmark failed:\n%s", bench);
  CHECK(strstr(bench, "SET:") && strstr(bench, "LRANGE"), "benchmark output:\n%s",
        bench);
  fputs(bench, stdout);
  kill(pid, SIGUSR2);
  snprintf(path, sizeof path, "%s/r.%d.1.pb.gz", dir, (int)pid);
  for (int i = 0; i < 500 && access(path, F_OK) != 0; i++)
    sleep_ms(20);
  tl_profile_t p;
  tl_read_profile(path, &p);
  int64_t v[4];
  CHECK(tl_site_any(&p, "zmalloc", v) + tl_site_any(&p, "ztrymalloc_usable", v) +
            tl_site_any(&p, "zmalloc_usable", v) > 0,
        "the signal profile has no zmalloc frames:\n%.3000s", p.raw);
  tl_free_profile(&p);
  CHECK(cli(port, "shutdown", "nosave", &reply) == 0, "redis-cli shutdown");
  int status;
  CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
            WEXITSTATUS(status) == 0, "redis-server exit status %d", status);
  snprintf(path, sizeof path, "%s/r.%d.2.pb.gz", dir, (int)pid);
  tl_read_profile(path, &p);
  CHECK(p.nsamples > 0, "the exit profile is empty");
  tl_free_profile(&p);
  printf("ok: redis-server served the benchmark, dumped on USR2 and at exit\n");
  return 0;
}
