/*
 * http — a small, strict HTTP/1.x server for /debug/pprof/.
 *
 * One thread, one connection at a time (so one profile at a time), every
 * connection closed after its response. A request head must arrive whole
 * within READ_TIMEOUT_MS and fit in HEAD_MAX bytes, or it gets 408 / 431;
 * anything malformed gets a 4xx; only GET and HEAD are served. The Host
 * header must name the loopback address served (or "localhost") unless
 * remote access was opted into, which stops a web page from reaching the
 * endpoint through DNS rebinding. Sockets are close-on-exec and writes use
 * MSG_NOSIGNAL, so a vanished client never raises SIGPIPE in the host.
 *
 *   /debug/pprof/             an index
 *   /debug/pprof/heap         gzipped proto; ?debug=1 Go's text format;
 *                             ?seconds=N a delta profile over N seconds
 *   /debug/pprof/allocs       the same, opening on alloc_space
 *   /debug/pprof/peak         the high-water-mark profile (HEAPPROF_PEAK=1)
 *   /debug/pprof/symbol       Go's symbol service: GET says it is there,
 *                             POST "0xADDR+0xADDR…" answers "0xADDR name"
 *                             lines (pprof asks it for text profiles)
 *   /debug/pprof/profile, block, mutex, goroutine, threadcreate, trace,
 *   cmdline                   Go's runtime's own: a 404 saying so, at once
 *
 * Errors are text/plain with X-Go-Pprof: 1, as Go's are.
 */
#define _GNU_SOURCE
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "heapprof.h"

#include "config.h"
#include "fdtable.h"
#include "httpreq.h"
#include "pipeline.h"
#include "spawn.h"
#include "thread.h"

#define HEAD_MAX 8192
#define READ_TIMEOUT_MS 5000
#define WRITE_TIMEOUT_S 30
#define MAX_SECONDS 300

static int remote_allowed;
static int verbose;
static char served_host[64]; /* the bound address as a Host would name it */
static int served_port;

/* ---- responses ---- */

static int send_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

static void respond(int fd, int status, const char *reason, const char *type,
                    const char *extra, const void *body, size_t len,
                    int head_only) {
  char head[512];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                   "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n"
                   "Connection: close\r\n%s\r\n",
                   status, reason, type, len, extra ? extra : "");
  if (send_all(fd, head, (size_t)n) == 0 && !head_only && len > 0)
    send_all(fd, body, len);
}

/* Errors are text, marked as Go's net/http/pprof marks them, so that a
 * scraper never takes one for a profile. */
static void reply_error(int fd, int status, const char *reason, const char *why) {
  char body[256];
  int n = snprintf(body, sizeof body, "%d %s: %s\n", status, reason, why);
  respond(fd, status, reason, "text/plain; charset=utf-8",
          status == 405 ? "X-Go-Pprof: 1\r\nAllow: GET, HEAD\r\n"
                        : "X-Go-Pprof: 1\r\n",
          body, (size_t)n, 0);
}

/* ---- reading the request head ---- */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Receives into buf[0..cap) once data arrives before `deadline_ms`: the
 * byte count, 0 when the client closed, or -1 with errno (ETIMEDOUT at
 * the deadline). */
static ssize_t recv_by(int fd, char *buf, size_t cap, int64_t deadline_ms) {
  for (;;) {
    int64_t left = deadline_ms - now_ms();
    struct pollfd p = {fd, POLLIN, 0};
    int ready = left > 0 ? poll(&p, 1, (int)left) : 0;
    if (ready == 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    if (ready < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    ssize_t r = recv(fd, buf, cap, 0);
    if (r >= 0 || errno != EINTR)
      return r;
  }
}

/* Reads until the blank line ending the head: 0 ok (*head_len its
 * length), or -1 with errno EBADMSG (bytes that can never make a head:
 * answered at once, not at the deadline), ETIMEDOUT (too slow), EMSGSIZE
 * (too big), or ECONNRESET (the client went away). */
static int read_head(int fd, char *buf, size_t *len, size_t *head_len) {
  int64_t deadline = now_ms() + READ_TIMEOUT_MS;
  *len = 0;
  for (;;) {
    buf[*len] = '\0';
    int end = httpreq_head_end(buf, *len, head_len);
    if (end != 0)
      return end > 0 ? 0 : (errno = EBADMSG, -1);
    if (*len >= HEAD_MAX)
      return errno = EMSGSIZE, -1;
    ssize_t r = recv_by(fd, buf + *len, HEAD_MAX - *len, deadline);
    if (r == 0)
      errno = ECONNRESET;
    if (r <= 0)
      return -1;
    *len += (size_t)r;
  }
}

/* ---- the symbol service ---- */

/* Reads the rest of a POST body of rq->content_length bytes into `buf`. */
static int read_body(int fd, const request_t *rq, char *buf) {
  size_t have = rq->body_have < rq->content_length ? rq->body_have
                                                   : rq->content_length;
  memcpy(buf, rq->body, have);
  int64_t deadline = now_ms() + READ_TIMEOUT_MS;
  while (have < rq->content_length) {
    ssize_t r = recv_by(fd, buf + have, rq->content_length - have, deadline);
    if (r <= 0)
      return -1;
    have += (size_t)r;
  }
  buf[have] = '\0';
  return 0;
}

/* The answer to a symbol request, written while the names are at hand. */
typedef struct symbol_answer {
  char *in, *out;
  size_t cap, len;
} symbol_answer_t;

static void answer_symbols(const prof_symtab_t *syms, void *ctx) {
  symbol_answer_t *a = ctx;
  /* Addresses separated by '+' or white space. Not strtok: its state is
   * the program's, shared with every thread that tokenizes. */
  for (char *at = a->in, *end; *at != '\0'; at = end) {
    at += strspn(at, "+ \t\r\n");
    end = at + strcspn(at, "+ \t\r\n");
    if (end == at)
      break;
    unsigned long long addr = strtoull(at, NULL, 0);
    prof_frame_t fr;
    syms->lookup(syms->ctx, addr, &fr);
    if (fr.function == NULL || a->len + strlen(fr.function) + 24 > a->cap)
      continue;
    a->len += (size_t)snprintf(a->out + a->len, a->cap - a->len, "%#llx %s\n",
                               addr, fr.function);
  }
}

static void serve_symbols(int fd, const request_t *rq, int head_only) {
  static const char there[] = "num_symbols: 1\n";
  if (strcmp(rq->method, "POST") != 0) {
    respond(fd, 200, "OK", "text/plain; charset=utf-8", NULL, there,
            sizeof there - 1, head_only);
    return;
  }
  symbol_answer_t a = {malloc(rq->content_length + 1), NULL,
                       rq->content_length * 8 + 256, 0};
  a.out = malloc(a.cap);
  if (a.in == NULL || a.out == NULL || read_body(fd, rq, a.in) != 0 ||
      pipeline_symbolize(answer_symbols, &a) != 0)
    reply_error(fd, 400, "Bad Request", "cannot read or answer the body");
  else
    respond(fd, 200, "OK", "text/plain; charset=utf-8", NULL, a.out, a.len, 0);
  free(a.in);
  free(a.out);
}

/* ---- routes ---- */

static const char index_html[] =
    "<!DOCTYPE html><html><head><title>/debug/pprof/</title></head><body>\n"
    "<h1>heapprof /debug/pprof/</h1>\n<ul>\n"
    "<li><a href=\"heap?debug=1\">heap</a>: in-use memory, by allocation site "
    "(<a href=\"heap\">proto</a>)</li>\n"
    "<li><a href=\"allocs?debug=1\">allocs</a>: everything allocated since start "
    "(<a href=\"allocs\">proto</a>)</li>\n"
    "<li><a href=\"peak\">peak</a>: in-use memory at its high-water mark "
    "(HEAPPROF_PEAK=1)</li>\n</ul>\n"
    "<p>go tool pprof http://HOST:PORT/debug/pprof/heap &mdash; add "
    "?seconds=N for what changed over N seconds.</p>\n</body></html>\n";

static void serve_profile(int fd, const request_t *rq, int kind,
                          const char *name, int head_only) {
  long debug, seconds;
  if (httpreq_query_int(rq->query, "debug", &debug) < 0 || debug < 0 || debug > 2 ||
      httpreq_query_int(rq->query, "seconds", &seconds) < 0 || seconds < 0 ||
      seconds > MAX_SECONDS) {
    reply_error(fd, 400, "Bad Request", "debug must be 0-2, seconds 0-300");
    return;
  }
  if (seconds > 0 && (debug != 0 || kind == HEAPPROF_PEAK)) {
    reply_error(fd, 400, "Bad Request", "seconds= needs the proto form of heap or allocs");
    return;
  }
  pprof_membuf_t body = {.alloc = &pipeline_heap};
  if (pipeline_body(kind, debug != 0, (int)seconds, &body) != 0) {
    if (errno == ENODATA)
      reply_error(fd, 404, "Not Found", "no peak kept: peak tracking is off "
                  "(set HEAPPROF_PEAK=1) or no high-water mark was reached yet");
    else
      reply_error(fd, 500, "Internal Server Error",
                  errno == ENOMEM ? "out of memory for the profile"
                  : errno == EBUSY ? "the profiler is not started in this process"
                                   : "cannot write the profile");
  } else if (debug != 0) {
    respond(fd, 200, "OK", "text/plain; charset=utf-8", NULL, body.data,
            body.len, head_only);
  } else {
    char disp[96];
    snprintf(disp, sizeof disp,
             "Content-Disposition: attachment; filename=\"%s\"\r\n", name);
    respond(fd, 200, "OK", "application/octet-stream", disp, body.data,
            body.len, head_only);
  }
  pprof_membuf_free(&body);
}

/* The profiles Go's net/http/pprof serves that a C or C++ process has no
 * counterpart of: answered at once, never by waiting out ?seconds=. */
static int go_only(const char *path) {
  static const char *const names[] = {"profile", "block", "mutex", "goroutine",
                                      "threadcreate", "trace", "cmdline"};
  static const char prefix[] = "/debug/pprof/";
  if (strncmp(path, prefix, sizeof prefix - 1) != 0)
    return 0;
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (strcmp(path + sizeof prefix - 1, names[i]) == 0)
      return 1;
  return 0;
}

static void route(int fd, const request_t *rq) {
  int head_only = strcmp(rq->method, "HEAD") == 0;
  const char *p = rq->path;
  if (!httpreq_host_ok(rq->host, served_host, served_port, remote_allowed))
    return reply_error(fd, 403, "Forbidden", "Host does not name this loopback server");
  if (strcmp(p, "/debug/pprof/symbol") == 0 && strcmp(rq->method, "POST") == 0)
    return serve_symbols(fd, rq, 0);
  if (!head_only && strcmp(rq->method, "GET") != 0)
    return reply_error(fd, 405, "Method Not Allowed", "only GET and HEAD");
  if (strcmp(p, "/debug/pprof/") == 0 || strcmp(p, "/debug/pprof") == 0)
    respond(fd, 200, "OK", "text/html; charset=utf-8", NULL, index_html,
            sizeof index_html - 1, head_only);
  else if (strcmp(p, "/debug/pprof/heap") == 0)
    serve_profile(fd, rq, HEAPPROF_HEAP, "heap", head_only);
  else if (strcmp(p, "/debug/pprof/allocs") == 0)
    serve_profile(fd, rq, HEAPPROF_ALLOCS, "allocs", head_only);
  else if (strcmp(p, "/debug/pprof/peak") == 0)
    serve_profile(fd, rq, HEAPPROF_PEAK, "peak", head_only);
  else if (strcmp(p, "/debug/pprof/symbol") == 0)
    serve_symbols(fd, rq, head_only);
  else if (go_only(p))
    reply_error(fd, 404, "Not Found", "heapprof serves heap, allocs and peak "
                "profiles; this one is Go's runtime's (a scraper may leave it off)");
  else
    reply_error(fd, 404, "Not Found", "unknown path; see /debug/pprof/");
}

static void handle(int fd) {
  char head[HEAD_MAX + 1];
  size_t len, head_len = 0;
  request_t rq;
  if (read_head(fd, head, &len, &head_len) != 0) {
    if (errno == EBADMSG)
      reply_error(fd, 400, "Bad Request", "malformed request head");
    else if (errno == ETIMEDOUT)
      reply_error(fd, 408, "Request Timeout", "the request head took too long");
    else if (errno == EMSGSIZE)
      reply_error(fd, 431, "Request Header Fields Too Large", "the head is over 8 KiB");
  } else {
    /* The body starts after the blank line; parse() cuts up the head. */
    const char *body = head + head_len;
    if (httpreq_parse(head, &rq) != 0) {
      reply_error(fd, 400, "Bad Request", "malformed request");
      return;
    }
    rq.body = body;
    rq.body_have = len - head_len;
    route(fd, &rq);
  }
}

/* Records how a Host header names the bound socket. */
static void note_served(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  getsockname(fd, (struct sockaddr *)&ss, &len);
  char ip[INET6_ADDRSTRLEN];
  if (ss.ss_family == AF_INET) {
    inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof ip);
    snprintf(served_host, sizeof served_host, "%s", ip);
    served_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  } else {
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof ip);
    snprintf(served_host, sizeof served_host, "[%s]", ip);
    served_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  }
}

/* The listening socket, in this thread's own descriptor table (fdtable.c),
 * so that it never occupies a number the program expects, never goes to a
 * child, and cannot be closed, replaced or accepted on by the program. */
static struct {
  char addr[128];
  sem_t ready; /* posted once the thread knows whether it serves */
  ino_t ino;   /* the socket's inode: checked where the table is shared */
  int any_port; /* port 0 asked for: the one picked is printed */
  _Atomic int quit; /* http_stop asks the thread to end */
  _Atomic int up;
  spawned_t thread;
} start;

/* Whether `fd` is still our listening socket. Only a thread that shares
 * the program's table needs to ask (unshare refused): the program may have
 * closed that number and opened something else there. */
static int still_ours(int fd) {
  struct stat st;
  return fdtable_is_private() ||
         (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == start.ino);
}

static void serve_loop(int lfd) {
  for (;;) {
    if (!still_ours(lfd)) {
      config_warn("heapprof: the program closed the /debug/pprof socket "
                  "(descriptor %d); no HTTP server from now on", lfd);
      return;
    }
    /* Wait in poll, not in accept: a blocked accept holds the number the
     * connection will get, which in a table shared with the program (no
     * unshare) is the program's lowest free one. */
    struct pollfd ready = {lfd, POLLIN, 0};
    int n = poll(&ready, 1, 100); /* a tenth of a second: to see `quit` */
    if (atomic_load(&start.quit))
      return;
    if (n <= 0)
      continue;
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOMEM ||
          errno == ENOBUFS) {
        struct timespec pause = {0, 100000000};
        nanosleep(&pause, NULL); /* short of fds or memory: back off */
      } else if (errno == EBADF || errno == EINVAL || errno == ENOTSOCK) {
        return; /* the socket is gone */
      }
      continue;
    }
    fd = fdtable_move_high(fd);
    struct timeval wt = {WRITE_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wt, sizeof wt);
    handle(fd);
    close(fd);
  }
}

/* Binds a name in the abstract socket namespace that only the heapprof
 * serving TCP port `port` holds (0, or -1 with errno). Processes that
 * inherit a fixed HEAPPROF_HTTP from a profiled parent find the port
 * taken, and this tells them by whom. The socket is kept for the
 * process's life and never listened on. */
static int claim_port(int port) {
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  int n = snprintf(un.sun_path + 1, sizeof un.sun_path - 1,
                   "heapprof-http:%d", port);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
  if (bind(fd, (struct sockaddr *)&un, len) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  fdtable_move_high(fd);
  return 0;
}

static int port_of(const struct sockaddr_storage *ss) {
  return ntohs(ss->ss_family == AF_INET
                   ? ((const struct sockaddr_in *)ss)->sin_port
                   : ((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* Binds and listens on the configured address: the socket, or -1 after
 * one stderr line — none when the port is another heapprof's. */
static int open_listener(void) {
  struct sockaddr_storage ss;
  socklen_t sslen;
  if (httpreq_parse_addr(start.addr, &ss, &sslen) != 0 ||
      (!remote_allowed && !httpreq_addr_loopback(&ss)))
    return -1; /* config.c said why */
  start.any_port = port_of(&ss) == 0;
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0),
      one = 1;
  if (fd >= 0)
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sslen) != 0 ||
      listen(fd, 64) != 0) {
    int err = errno, port = port_of(&ss);
    if (fd >= 0)
      close(fd);
    if (err == EADDRINUSE && port != 0 && claim_port(port) != 0 &&
        errno == EADDRINUSE) {
      if (verbose)
        config_warn("heapprof: HTTP port %d is served by another heapprof "
                    "process (an inherited HEAPPROF_HTTP?); not serving", port);
      return -1;
    }
    config_warn("heapprof: cannot serve HTTP on %s: %s", start.addr,
                strerrordesc_np(err));
    return -1;
  }
  fd = fdtable_move_high(fd);
  struct stat st;
  start.ino = fstat(fd, &st) == 0 ? st.st_ino : 0;
  note_served(fd);
  claim_port(served_port);
  return fd;
}

static void *serve(void *arg) {
  (void)arg;
  int lfd = open_listener();
  sem_post(&start.ready);
  if (lfd >= 0)
    serve_loop(lfd);
  return NULL;
}

void http_start(const char *addr, int remote_ok, int verbose_on) {
  snprintf(start.addr, sizeof start.addr, "%s", addr);
  remote_allowed = remote_ok;
  verbose = verbose_on;
  sem_init(&start.ready, 0, 0);
  atomic_store(&start.quit, 0);
  int rc = spawn_thread("heapprof-http", serve, &start.thread);
  atomic_store(&start.up, rc == 0);
  if (rc != 0) {
    config_warn("heapprof: cannot start the HTTP thread: %s",
                strerrordesc_np(errno));
    return;
  }
  /* Wait (briefly: a bind) for the outcome, so that the port is printed
   * before the program runs; never a cancellation point of the program's. */
  int old;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
  struct timespec at;
  clock_gettime(CLOCK_REALTIME, &at);
  at.tv_sec += 5;
  while (sem_timedwait(&start.ready, &at) != 0 && errno == EINTR)
    ;
  pthread_setcancelstate(old, NULL);
  if (served_port != 0 && start.any_port)
    config_warn("heapprof: serving http://%s:%d/debug/pprof/", served_host,
                served_port);
}

int http_stop(void) {
  if (!atomic_exchange(&start.up, 0))
    return 0;
  atomic_store(&start.quit, 1);
  atomic_store(&pipeline_abort, 1);
  spawn_join(&start.thread); /* its table, socket and claim go with it */
  atomic_store(&pipeline_abort, 0);
  sem_destroy(&start.ready);
  return 1;
}

/* On the port it had: a port 0 picked once stays the one announced. */
void http_restart(void) {
  char addr[sizeof start.addr];
  if (served_port != 0)
    snprintf(addr, sizeof addr, "%s:%d", served_host, served_port);
  else
    snprintf(addr, sizeof addr, "%s", start.addr);
  served_port = 0;
  http_start(addr, remote_allowed, verbose);
}

/* A forked child does not serve: the thread stayed with the parent. */
void http_fork_child(void) { atomic_store(&start.up, 0); }
