/*
 * fds_util — helpers for the descriptor and stdio contract tests: running
 * the program under test with pipes and deadlines, a tiny HTTP client, and
 * the program's view of its own descriptor table.
 */
#define _GNU_SOURCE
#include "fds_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int fu_failures;

void fu_fail(const char *file, int line, const char *cond, const char *fmt,
             ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  /* One write, so that lines of a child and of the driver do not mix. */
  char line_buf[2600];
  int n = snprintf(line_buf, sizeof line_buf, "FAIL %s:%d: %s\n  %s\n", file,
                   line, cond, msg);
  fflush(stdout);
  ssize_t ignored = write(1, line_buf, (size_t)n < sizeof line_buf ? (size_t)n
                                                                    : sizeof line_buf - 1);
  (void)ignored;
  fu_failures++;
}

int fu_finish(const char *what) {
  if (fu_failures == 0) {
    printf("ok: %s\n", what);
    fflush(stdout);
    return 0;
  }
  printf("%d check(s) failed: %s\n", fu_failures, what);
  fflush(stdout);
  return fu_failures > 100 ? 100 : fu_failures;
}

__attribute__((noinline)) void *fu_malloc(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" : : "r"(p) : "memory");
  return p;
}

long long fu_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- running the program ---- */

fu_proc_t fu_start(char *const argv[], char *const env[], int flags) {
  fu_proc_t p = {-1, -1, -1, -1};
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  if (((flags & FU_IN) && !(flags & FU_CLOSE0) && pipe2(in, O_CLOEXEC)) ||
      ((flags & FU_OUT) && pipe2(out, O_CLOEXEC)) ||
      ((flags & FU_ERR) && pipe2(err, O_CLOEXEC))) {
    fu_fail(__FILE__, __LINE__, "pipe2", "%s", strerror(errno));
    return p;
  }
  fflush(NULL);
  p.pid = fork();
  if (p.pid == 0) {
    if (in[0] >= 0)
      dup2(in[0], 0);
    if (out[1] >= 0)
      dup2(out[1], 1);
    if (err[1] >= 0)
      dup2(err[1], 2);
    if (flags & FU_CLOSE0)
      close(0);
    syscall(SYS_close_range, 3U, ~0U, 0U); /* 0, 1, 2 only */
    execve(argv[0], argv, env);
    _exit(127);
  }
  if (in[0] >= 0)
    close(in[0]), p.in = in[1];
  if (out[1] >= 0)
    close(out[1]), p.out = out[0];
  if (err[1] >= 0)
    close(err[1]), p.err = err[0];
  return p;
}

int fu_wait(pid_t pid, int timeout_s) {
  long long deadline = fu_now_ms() + timeout_s * 1000LL;
  int status;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0 && errno != EINTR)
      return -1;
    if (fu_now_ms() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
}

/* Waits for fd to be readable before the deadline: 1, or 0. */
static int readable_by(int fd, long long deadline) {
  for (;;) {
    long long left = deadline - fu_now_ms();
    if (left <= 0)
      return 0;
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, (int)left);
    if (r > 0)
      return 1;
    if (r < 0 && errno != EINTR)
      return 0;
  }
}

int fu_line(int fd, char *buf, size_t cap, int timeout_ms) {
  long long deadline = fu_now_ms() + timeout_ms;
  size_t n = 0;
  for (;;) {
    if (!readable_by(fd, deadline))
      return -1;
    char c;
    ssize_t r = read(fd, &c, 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return n > 0 ? (buf[n] = '\0', (int)n) : -1;
    if (c == '\n')
      break;
    if (n + 1 < cap)
      buf[n++] = c;
  }
  buf[n] = '\0';
  return (int)n;
}

int fu_expect_line(int fd, const char *want, int timeout_ms) {
  long long deadline = fu_now_ms() + timeout_ms;
  char line[4096];
  for (;;) {
    long long left = deadline - fu_now_ms();
    if (left <= 0 || fu_line(fd, line, sizeof line, (int)left) < 0)
      return -1;
    if (strcmp(line, want) == 0)
      return 0;
    printf("  | %s\n", line); /* the program's own report */
    fflush(stdout);
  }
}

int fu_relay(int fd, int timeout_ms) {
  long long deadline = fu_now_ms() + timeout_ms;
  char line[4096];
  for (;;) {
    long long left = deadline - fu_now_ms();
    if (left <= 0)
      return -1;
    if (fu_line(fd, line, sizeof line, (int)left) < 0)
      return fu_now_ms() < deadline ? 0 : -1;
    printf("  | %s\n", line);
    fflush(stdout);
  }
}

char *fu_slurp(int fd, int timeout_ms, size_t *len) {
  long long deadline = fu_now_ms() + timeout_ms;
  size_t n = 0, cap = 4096;
  char *buf = malloc(cap);
  while (readable_by(fd, deadline)) {
    if (n + 1024 > cap)
      buf = realloc(buf, cap *= 2);
    ssize_t r = read(fd, buf + n, cap - n - 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    n += (size_t)r;
  }
  buf[n] = '\0';
  if (len)
    *len = n;
  return buf;
}

struct fu_collect {
  int fd;
  pthread_t thread;
  char *text;
};

static void *collect_thread(void *arg) {
  fu_collect_t *c = arg;
  c->text = fu_slurp(c->fd, 24 * 3600 * 1000, NULL);
  return NULL;
}

fu_collect_t *fu_collect(int fd) {
  fu_collect_t *c = calloc(1, sizeof *c);
  c->fd = fd;
  if (pthread_create(&c->thread, NULL, collect_thread, c) != 0) {
    fu_fail(__FILE__, __LINE__, "pthread_create", "cannot collect fd %d", fd);
    exit(1);
  }
  return c;
}

char *fu_collected(fu_collect_t *c, int timeout_ms) {
  struct timespec at;
  clock_gettime(CLOCK_REALTIME, &at);
  at.tv_sec += timeout_ms / 1000;
  if (pthread_timedjoin_np(c->thread, NULL, &at) != 0)
    return strdup("(still open: the program, or a child of it, holds it)\n");
  char *text = c->text;
  free(c);
  return text;
}

int fu_port_line(int errfd, int timeout_ms, char *before, size_t cap) {
  long long deadline = fu_now_ms() + timeout_ms;
  char line[1024];
  size_t used = 0;
  if (before && cap)
    before[0] = '\0';
  for (;;) {
    long long left = deadline - fu_now_ms();
    if (left <= 0 || fu_line(errfd, line, sizeof line, (int)left) < 0)
      return -1;
    int port;
    if (sscanf(line, "heapprof: serving http://127.0.0.1:%d/", &port) == 1)
      return port;
    if (before && used < cap)
      used += (size_t)snprintf(before + used, cap - used, "%s\n", line);
  }
}

/* ---- HTTP ---- */

static int connect_port(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  return fd;
}

int fu_http(int port, const char *req, size_t len, char **resp, size_t *rlen,
            int timeout_ms) {
  int fd = connect_port(port);
  if (fd < 0)
    return -1;
  for (size_t off = 0; off < len;) {
    ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
    if (w <= 0)
      break;
    off += (size_t)w;
  }
  size_t n;
  char *buf = fu_slurp(fd, timeout_ms, &n);
  close(fd);
  int status = 0;
  if (n > 0)
    sscanf(buf, "HTTP/1.%*d %d", &status);
  if (resp)
    *resp = buf;
  else
    free(buf);
  if (rlen)
    *rlen = n;
  return status;
}

/* Splits off the body of a whole answer. */
static void body_of(char *resp, size_t n, char **body, size_t *blen) {
  char *b = resp ? memmem(resp, n, "\r\n\r\n", 4) : NULL;
  size_t off = b ? (size_t)(b + 4 - resp) : n;
  if (body) {
    *body = malloc(n - off + 1);
    memcpy(*body, resp + off, n - off);
    (*body)[n - off] = '\0';
  }
  if (blen)
    *blen = n - off;
}

int fu_get(int port, const char *path, char **body, size_t *blen) {
  char req[512];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
                   path, port);
  char *resp = NULL;
  size_t rn = 0;
  int status = fu_http(port, req, (size_t)n, &resp, &rn, 30000);
  body_of(resp, rn, body, blen);
  free(resp);
  return status;
}

int fu_post(int port, const char *path, const char *body, char **resp_body) {
  size_t blen = strlen(body);
  char *req = malloc(blen + 512);
  int n = snprintf(req, blen + 512,
                   "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
                   "Content-Length: %zu\r\n\r\n%s",
                   path, port, blen, body);
  char *resp = NULL;
  size_t rn = 0;
  int status = fu_http(port, req, (size_t)n, &resp, &rn, 30000);
  body_of(resp, rn, resp_body, NULL);
  free(resp);
  free(req);
  return status;
}

int fu_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    fu_fail(__FILE__, __LINE__, "bind", "no free port: %s", strerror(errno));
    exit(1);
  }
  close(fd);
  return ntohs(a.sin_port);
}

/* ---- the program's own view ---- */

static int by_int(const void *a, const void *b) {
  return *(const int *)a - *(const int *)b;
}

int fu_list_fds(int *fds, int cap) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL)
    return -1;
  int self = dirfd(d), n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (e->d_name[0] == '.')
      continue;
    int fd = atoi(e->d_name);
    if (fd != self && n < cap)
      fds[n++] = fd;
  }
  closedir(d);
  qsort(fds, (size_t)n, sizeof *fds, by_int);
  return n;
}

const char *fu_fds_text(const int *fds, int n, char *buf, size_t cap) {
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; i < n && used < cap; i++)
    used += (size_t)snprintf(buf + used, cap - used, "%s%d", i ? " " : "",
                             fds[i]);
  return buf;
}

int fu_count_files(const char *dir, const char *prefix) {
  DIR *d = opendir(dir);
  if (d == NULL)
    return -1;
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
  closedir(d);
  return n;
}

int fu_wait_files(const char *dir, const char *prefix, int n, int timeout_ms) {
  long long deadline = fu_now_ms() + timeout_ms;
  while (fu_count_files(dir, prefix) < n) {
    if (fu_now_ms() > deadline)
      return -1;
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  return 0;
}

const char *fu_self(void) {
  static char path[4096];
  if (path[0] == '\0') {
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0) {
      fu_fail(__FILE__, __LINE__, "readlink", "/proc/self/exe: %s",
              strerror(errno));
      exit(1);
    }
    path[n] = '\0';
  }
  return path;
}

char **fu_env(const char *lib, ...) {
  char **env = calloc(64, sizeof *env);
  size_t n = 0;
  env[n++] = "PATH=/usr/bin:/bin";
  env[n++] = "LC_ALL=C";
  const char *tmp = getenv("TMPDIR");
  if (tmp != NULL && asprintf(&env[n], "TMPDIR=%s", tmp) > 0)
    n++;
  if (lib != NULL && asprintf(&env[n], "LD_PRELOAD=%s", lib) > 0)
    n++;
  va_list ap;
  va_start(ap, lib);
  for (const char *s; n < 63 && (s = va_arg(ap, const char *)) != NULL;)
    env[n++] = (char *)s;
  va_end(ap);
  env[n] = NULL;
  return env;
}
