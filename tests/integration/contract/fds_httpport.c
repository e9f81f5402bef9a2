/*
 * fds_httpport — children that inherit HEAPPROF_HTTP with a fixed port the
 * parent already serves print nothing and take nothing from the parent
 * (behaviour B11); a port held by a program that is not heapprof still
 * gives one stderr line naming it.
 *
 * usage: fds_httpport LIBHEAPPROF inherit|inherit_verbose|foreign|foreign_go
 *   inherit:         a preloaded parent with HEAPPROF_HTTP=127.0.0.1:PORT
 *                    (a port the driver found free) starts four children
 *                    (fork+exec of preloaded programs in the same
 *                    environment) that print nothing themselves: their
 *                    stderr, and the parent's, stay empty, and while the
 *                    children live every answer on PORT is the parent's
 *                    (its heap profile names the parent's allocation site,
 *                    never the children's);
 *   inherit_verbose: the same with HEAPPROF_VERBOSE=1: each child says so
 *                    in exactly one line naming the port;
 *   foreign:         the driver holds PORT with a plain listening socket
 *                    that never answers: the preloaded program prints
 *                    exactly one stderr line, naming the port;
 *   foreign_go:      the driver's socket answers every request like a Go
 *                    service with net/http/pprof: still exactly one line.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testlib.h"
#include "fds_util.h"

#define CHILDREN 4

extern char **environ;

__attribute__((noinline, noipa)) static void *parent_marker_site(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" : : "r"(p) : "memory");
  return p;
}

__attribute__((noinline, noipa)) static void *child_marker_site(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" : : "r"(p) : "memory");
  return p;
}

/* Lines of `text` that name the port (its digits, not inside a longer
 * number). */
static int lines_naming(const char *text, int port) {
  char num[16];
  int len = snprintf(num, sizeof num, "%d", port), n = 0;
  for (const char *l = text; *l;) {
    const char *end = strchr(l, '\n');
    size_t llen = end ? (size_t)(end - l) : strlen(l);
    int named = 0;
    for (const char *h = l; !named && (h = memmem(h, llen - (size_t)(h - l),
                                                   num, (size_t)len)) != NULL;
         h++)
      named = (h == l || h[-1] < '0' || h[-1] > '9') &&
              (h + len == l + llen || h[len] < '0' || h[len] > '9');
    n += named;
    l += llen + (end != NULL);
  }
  return n;
}

/* ---- a child: allocates, says it is up on fd 3, waits for stdin EOF ---- */

static int quiet_child(int wait_stdin) {
  alarm(120);
  for (int i = 0; i < 64; i++)
    child_marker_site(4096);
  if (fcntl(3, F_GETFD) >= 0) {
    ssize_t ignored = write(3, "u", 1);
    (void)ignored;
    close(3);
  }
  if (wait_stdin)
    free(fu_slurp(0, 90000, NULL));
  return 0;
}

/* ---- the parent program ---- */

typedef struct kid {
  pid_t pid;
  int in, err;
} kid_t;

static kid_t start_kid(int up_w) {
  int in[2], err[2];
  FU_EXPECT(pipe2(in, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0, "pipe2");
  kid_t k = {fork(), in[1], err[0]};
  if (k.pid == 0) {
    dup2(in[0], 0);
    dup2(err[1], 2);
    dup2(up_w, 3);
    char *args[] = {(char *)fu_self(), "--kid", NULL};
    execve(args[0], args, environ);
    _exit(127);
  }
  close(in[0]), close(err[1]);
  return k;
}

static int parent(int port, int verbose) {
  alarm(150);
  for (int i = 0; i < 64; i++)
    parent_marker_site(4096);
  printf("@ready\n");
  fflush(stdout);
  char word[64];
  FU_EXPECT(fu_line(0, word, sizeof word, 60000) >= 0, "no word from the driver");
  int up[2];
  FU_EXPECT(pipe2(up, O_CLOEXEC) == 0, "pipe2");
  kid_t kids[CHILDREN];
  for (int i = 0; i < CHILDREN; i++)
    kids[i] = start_kid(up[1]);
  close(up[1]);
  char buf[CHILDREN];
  size_t got = 0; /* one 'u' from each child */
  long long deadline = fu_now_ms() + 30000;
  while (got < CHILDREN && fu_now_ms() < deadline) {
    struct pollfd pf = {up[0], POLLIN, 0};
    if (poll(&pf, 1, 1000) <= 0)
      continue;
    ssize_t r = read(up[0], buf, CHILDREN - got);
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  printf("@children %zu\n", got);
  fflush(stdout);
  FU_EXPECT(fu_line(0, word, sizeof word, 90000) >= 0, "no word from the driver");
  for (int i = 0; i < CHILDREN; i++) {
    close(kids[i].in);
    char *err = fu_slurp(kids[i].err, 60000, NULL);
    int status = fu_wait(kids[i].pid, 60);
    FU_EXPECT(status == 0, "child %d: exit status %d", i, status);
    if (verbose)
      FU_EXPECT(lines_naming(err, port) == 1 && strchr(err, '\n') != NULL,
                "child %d, with HEAPPROF_VERBOSE=1: want one line naming "
                "port %d, got:\n%s", i, port, err);
    else
      FU_EXPECT(err[0] == '\0', "child %d printed on stderr:\n%s", i, err);
    free(err);
  }
  return fu_finish("children inheriting the parent's HTTP port");
}

/* ---- the driver ---- */

static void parent_answers(int port, const char *when) {
  char path[] = "/debug/pprof/heap?debug=1";
  for (int i = 0; i < 5; i++) {
    char *body = NULL;
    int status = fu_get(port, path, &body, NULL);
    FU_EXPECT(status == 200 && strstr(body, "parent_marker_site") != NULL &&
                  strstr(body, "child_marker_site") == NULL,
              "%s: GET %s on port %d: status %d, %s", when, path, port, status,
              status != 200 ? "not the parent's server"
              : strstr(body, "child_marker_site") ? "answered by a child"
                                                  : "no parent_marker_site");
    free(body);
  }
}

static int inherit(const char *lib, int verbose) {
  int port = fu_free_port();
  char http[64];
  snprintf(http, sizeof http, "HEAPPROF_HTTP=127.0.0.1:%d", port);
  char **env = fu_env(lib, http, "HEAPPROF_RATE=1",
                      verbose ? "HEAPPROF_VERBOSE=1" : (char *)NULL, (char *)NULL);
  char *args[] = {(char *)fu_self(), "--parent", verbose ? "1" : "0", NULL};
  char portarg[16];
  snprintf(portarg, sizeof portarg, "%d", port);
  char *args2[] = {args[0], args[1], args[2], portarg, NULL};
  fu_proc_t p = fu_start(args2, env, FU_IN | FU_OUT | FU_ERR);
  fu_collect_t *errs = fu_collect(p.err);
  FU_EXPECT(fu_expect_line(p.out, "@ready", 30000) == 0, "the parent is not ready");
  parent_answers(port, "before the children");
  ssize_t ignored = write(p.in, "spawn\n", 6);
  char line[64];
  int n = fu_line(p.out, line, sizeof line, 60000);
  FU_EXPECT(n > 0 && strcmp(line, "@children 4") == 0,
            "the children did not all come up: \"%s\"", n > 0 ? line : "");
  parent_answers(port, "while the children live");
  ignored = write(p.in, "finish\n", 7);
  (void)ignored;
  FU_EXPECT(fu_relay(p.out, 120000) == 0, "the parent did not finish");
  close(p.in);
  int status = fu_wait(p.pid, 60);
  char *err = fu_collected(errs, 5000);
  FU_EXPECT(status == 0, "the parent's exit status %d (its checks above)", status);
  if (!verbose)
    FU_EXPECT(err[0] == '\0', "the parent printed on stderr:\n%s", err);
  return fu_finish(verbose ? "inherited HTTP port, verbose" : "inherited HTTP port");
}

/* A Go service's answer to anything: its net/http/pprof index. */
static void *go_service(void *arg) {
  int lst = *(int *)arg;
  static const char answer[] =
      "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
      "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"
      "<html>\n<head>\n<title>/debug/pprof/</title>\n</head>\n<body>\n"
      "/debug/pprof/<br>\n<br>\nTypes of profiles available:\n"
      "<a href='heap?debug=1'>heap</a>\n</body>\n</html>\n";
  for (;;) {
    int c = accept4(lst, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
      return NULL;
    char req[4096];
    ssize_t ignored = recv(c, req, sizeof req, 0);
    ignored = send(c, answer, sizeof answer - 1, MSG_NOSIGNAL);
    (void)ignored;
    close(c);
  }
}

static int foreign(const char *lib, int go) {
  int lst = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  setsockopt(lst, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  CHECK(bind(lst, (struct sockaddr *)&a, sizeof a) == 0 && listen(lst, 16) == 0 &&
            getsockname(lst, (struct sockaddr *)&a, &len) == 0,
        "listen: %s", strerror(errno));
  int port = ntohs(a.sin_port);
  pthread_t t;
  if (go)
    CHECK(pthread_create(&t, NULL, go_service, &lst) == 0, "pthread_create");
  char http[64];
  snprintf(http, sizeof http, "HEAPPROF_HTTP=127.0.0.1:%d", port);
  char **env = fu_env(lib, http, (char *)NULL);
  char *args[] = {(char *)fu_self(), "--alone", NULL};
  fu_proc_t p = fu_start(args, env, FU_OUT | FU_ERR);
  char *err = fu_slurp(p.err, 90000, NULL);
  int status = fu_wait(p.pid, 30);
  FU_EXPECT(status == 0, "the program's exit status %d", status);
  int lines = 0;
  for (const char *c = err; *c; c++)
    lines += *c == '\n';
  FU_EXPECT(lines == 1 && lines_naming(err, port) == 1,
            "port %d held by %s: want exactly one stderr line naming it, "
            "got:\n%s", port, go ? "a Go service" : "a plain listening socket",
            err);
  printf("the program said: %s", err);
  return fu_finish(go ? "a port held by a Go service" : "a port held by a plain socket");
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--kid") == 0)
    return quiet_child(1);
  if (argc == 2 && strcmp(argv[1], "--alone") == 0)
    return quiet_child(0);
  if (argc == 4 && strcmp(argv[1], "--parent") == 0)
    return parent(atoi(argv[3]), argv[2][0] == '1');
  CHECK(argc == 3, "usage: fds_httpport LIBHEAPPROF "
                   "inherit|inherit_verbose|foreign|foreign_go");
  alarm(280);
  if (strcmp(argv[2], "inherit") == 0)
    return inherit(argv[1], 0);
  if (strcmp(argv[2], "inherit_verbose") == 0)
    return inherit(argv[1], 1);
  return foreign(argv[1], strcmp(argv[2], "foreign_go") == 0);
}
