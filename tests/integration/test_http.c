/*
 * test_http — /debug/pprof over HTTP from a live process, read by the real
 * `go tool pprof`, and the server's answers to bad clients.
 *
 * usage: test_http TARGET LIBHEAPPROF
 * Starts TARGET under the profiler with HEAPPROF_HTTP=127.0.0.1:0, learns
 * the port from its stderr line, and checks: heap, allocs, ?seconds=2 and
 * ?debug=1 through go tool pprof; then garbage, a huge head, a wrong Host,
 * a wrong method, an unknown path, a bad query and a client that sends
 * nothing each get their 4xx — and the server still answers afterwards.
 * Heads that can never become valid (a bare LF, a NUL) get 400 at once, not
 * the 408 of the 5 s read timeout; a Host port with junk, signs or nothing
 * after the colon, and junk after the version, get 400.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"

static int port;

static pid_t start_target(const char *target, const char *lib, int *stdin_fd) {
  int in[2], err[2];
  CHECK(pipe(in) == 0 && pipe(err) == 0, "pipe");
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(err[1], 2);
    close(in[1]), close(err[0]);
    char preload[1024];
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lib);
    char *env[] = {preload, "HEAPPROF_HTTP=127.0.0.1:0", "HEAPPROF_SIGNAL=none",
                   "HEAPPROF_RATE=65536", NULL};
    execle(target, target, (char *)NULL, env);
    _exit(127);
  }
  close(in[0]), close(err[1]);
  char line[256] = {0};
  size_t n = 0;
  while (n < sizeof line - 1 && read(err[0], line + n, 1) == 1 && line[n] != '\n')
    n++;
  CHECK(sscanf(line, "heapprof: serving http://127.0.0.1:%d/", &port) == 1,
        "no port line on the target's stderr: '%s'", line);
  *stdin_fd = in[1];
  return pid;
}

/* The start of the last answer raw_request received (head and a little
 * of the body). */
static char last_answer[512];

/* Sends `req` raw and returns the status code of the answer (0: none). */
static int raw_request(const char *req, size_t len, int send_nothing) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct timeval hang = {30, 0}; /* a hang detector, far above the 5 s timeout */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &hang, sizeof hang);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0, "connect: %s",
        strerror(errno));
  if (!send_nothing)
    for (size_t off = 0; off < len;) {
      ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
      if (w <= 0)
        break; /* the server may close early on an oversized head */
      off += (size_t)w;
    }
  char *buf = last_answer;
  memset(last_answer, 0, sizeof last_answer);
  ssize_t r = 0, got; /* until the server closes, or the buffer is full */
  while ((size_t)r < sizeof last_answer - 1 &&
         (got = recv(fd, buf + r, sizeof last_answer - 1 - (size_t)r, 0)) > 0)
    r += got;
  close(fd);
  int status = 0;
  if (r > 0)
    sscanf(buf, "HTTP/1.1 %d", &status);
  return status;
}

static int get(const char *path, const char *host) {
  char req[1024];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path,
                   host);
  return raw_request(req, (size_t)n, 0);
}

static char *pprof(const char *flag, const char *path) {
  char url[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
  char *out;
  char *args[] = {"go", "tool", "pprof", (char *)flag, url, NULL};
  int rc = tl_run(args, &out);
  CHECK(rc == 0, "go tool pprof %s %s failed:\n%s", flag, url, out);
  return out;
}

static void fetch_profiles(void) {
  char *out = pprof("-raw", "/debug/pprof/heap");
  CHECK(strstr(out, "served_leak") != NULL, "heap: no served_leak:\n%s", out);
  free(out);
  out = pprof("-top", "/debug/pprof/allocs");
  CHECK(strstr(out, "Type: alloc_space") != NULL, "allocs view:\n%s", out);
  free(out);
  out = pprof("-raw", "/debug/pprof/heap?seconds=2");
  CHECK(strstr(out, "Duration: 2") != NULL && strstr(out, "served_leak"),
        "delta profile:\n%s", out);
  free(out);
  out = pprof("-top", "/debug/pprof/heap?debug=1");
  CHECK(strstr(out, "served_leak") != NULL, "debug=1 via pprof:\n%s", out);
  free(out);
  printf("ok: heap, allocs, seconds=2 and debug=1 read by go tool pprof\n");
}

static void bad_clients(void) {
  char host[64];
  snprintf(host, sizeof host, "127.0.0.1:%d", port);
  static const char garbage[] = "\x16\x03\x01 hello there\r\n\r\n";
  CHECK(raw_request(garbage, sizeof garbage - 1, 0) == 400, "garbage");
  size_t big = 20000;
  char *huge = malloc(big + 64);
  int n = snprintf(huge, big, "GET /debug/pprof/heap HTTP/1.1\r\nHost: %s\r\nX: ", host);
  memset(huge + n, 'a', big - (size_t)n);
  memcpy(huge + big - 4, "\r\n\r\n", 4);
  CHECK(raw_request(huge, big, 0) == 431, "huge head");
  free(huge);
  CHECK(get("/debug/pprof/heap", "evil.example:80") == 403, "DNS rebinding Host");
  CHECK(get("/debug/pprof/heap", "localhost:1") == 403, "wrong port in Host");
  static const char no_host[] = "GET /debug/pprof/heap HTTP/1.1\r\n\r\n";
  CHECK(raw_request(no_host, sizeof no_host - 1, 0) == 400, "HTTP/1.1 without Host");
  char post[256];
  n = snprintf(post, sizeof post, "POST /debug/pprof/heap HTTP/1.1\r\nHost: %s\r\n"
               "Connection: close\r\n\r\n", host);
  CHECK(raw_request(post, (size_t)n, 0) == 405, "POST");
  CHECK(get("/etc/passwd", host) == 404, "unknown path");
  /* Errors are marked as Go's are (X-Go-Pprof: 1, text/plain), and the
   * profiles Go serves that heapprof cannot are a 404 that says so at
   * once, not a timeout: a scraper asks for all of them. */
  CHECK(strstr(last_answer, "\r\nX-Go-Pprof: 1\r\n") != NULL &&
            strstr(last_answer, "\r\nContent-Type: text/plain") != NULL,
        "an error without Go's markers:\n%s", last_answer);
  static const char *const go_only[] = {
      "/debug/pprof/profile?seconds=30", "/debug/pprof/block",
      "/debug/pprof/mutex", "/debug/pprof/goroutine",
      "/debug/pprof/threadcreate", "/debug/pprof/trace?seconds=5",
      "/debug/pprof/cmdline"};
  for (size_t i = 0; i < sizeof go_only / sizeof *go_only; i++) {
    CHECK(get(go_only[i], host) == 404 &&
              strstr(last_answer, "X-Go-Pprof: 1") != NULL &&
              strstr(last_answer, "heapprof serves") != NULL,
          "%s: want a 404 saying what heapprof serves:\n%s", go_only[i],
          last_answer);
  }
  CHECK(get("/debug/pprof/heap?seconds=abc", host) == 400, "bad seconds");
  CHECK(get("/debug/pprof/heap?seconds=100000", host) == 400, "huge seconds");
  CHECK(get("/debug/pprof/peak", host) == 404, "peak without HEAPPROF_PEAK");
  /* A client that sends nothing is cut off; the next one is served. */
  CHECK(raw_request(NULL, 0, 1) == 408, "silent client");
  CHECK(get("/debug/pprof/", "localhost") == 200, "index after the bad clients");
  printf("ok: every bad client got its 4xx, and the server kept serving\n");
}

/* Sends `head` (with `\x01` standing for the port) and returns the status. */
static int raw_head(const char *head, size_t len) {
  char req[512];
  size_t n = 0;
  for (size_t i = 0; i < len && n + 8 < sizeof req; i++) {
    if (head[i] == '\x01')
      n += (size_t)snprintf(req + n, sizeof req - n, "%d", port);
    else
      req[n++] = head[i];
  }
  return raw_request(req, n, 0);
}

/* What no bytes can make valid is refused at once: 400, where waiting for
 * the rest of the head would end in the 408 of the 5 s read timeout. */
static void hopeless_heads(void) {
#define HEAD(s) s, sizeof s - 1
  static const struct {
    const char *head;
    size_t len;
    const char *what;
  } cases[] = {
      {HEAD("GET /debug/pprof/ HTTP/1.1\nHost: 127.0.0.1:\x01\n\n"), "bare LF"},
      {HEAD("GET /debug/pprof/ HTTP/1.1\r\nHost: 127.0.0.1:\x01\nX: y\n"),
       "a bare LF with the head unfinished"},
      {HEAD("GET /debug/pprof/ HTTP/1.1\r\nHost: 127.0.0.1:\x01\0\r\n\r\n"), "NUL"},
      {HEAD("GET /debug/pprof/ HTTP/1.1\r\nHost: 127.0.0.1:\x01\0"),
       "a NUL with the head unfinished"},
      {HEAD("GET /debug/pprof/ HTTP/1.1\r\nHost: 127.0.0.1:\x01junk\r\n\r\n"),
       "Host port with junk"},
      {HEAD("GET /debug/pprof/ HTTP/1.1\r\nHost: 127.0.0.1:+\x01\r\n\r\n"),
       "Host port with a sign"},
      {HEAD("GET /debug/pprof/ HTTP/1.1\r\nHost: 127.0.0.1:\r\n\r\n"),
       "Host with an empty port"},
      {HEAD("GET /debug/pprof/ HTTP/1.1 junk\r\nHost: 127.0.0.1:\x01\r\n\r\n"),
       "junk after the version"},
      {HEAD("GET  /debug/pprof/ HTTP/1.1\r\nHost: 127.0.0.1:\x01\r\n\r\n"),
       "two spaces in the request line"},
  };
#undef HEAD
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    int status = raw_head(cases[i].head, cases[i].len);
    CHECK(status == 400, "%s: got %d, want 400 at once", cases[i].what, status);
  }
  static const char fine[] =
      "GET /debug/pprof/ HTTP/1.1\r\nHost: 127.0.0.1:\x01\r\nConnection: close\r\n\r\n";
  CHECK(raw_head(fine, sizeof fine - 1) == 200, "the same head, well-formed");
  printf("ok: %zu hopeless or malformed heads got 400 at once\n",
         sizeof cases / sizeof *cases);
}

int main(int argc, char **argv) {
  CHECK(argc == 3, "usage: test_http TARGET LIBHEAPPROF");
  int in;
  pid_t pid = start_target(argv[1], argv[2], &in);
  struct timespec settle = {0, 500000000}; /* let it allocate a while */
  nanosleep(&settle, NULL);
  fetch_profiles();
  bad_clients();
  hopeless_heads();
  char *out = pprof("-raw", "/debug/pprof/heap");
  free(out);
  close(in); /* the target exits when its stdin closes */
  int status;
  CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
            WEXITSTATUS(status) == 0, "the target did not exit cleanly");
  printf("ok\n");
  return 0;
}
