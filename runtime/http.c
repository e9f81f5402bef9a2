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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAPPROF_BUILDING 1
#include "heapprof.h"

#include "config.h"
#include "control.h"
#include "httpreq.h"
#include "thread.h"

#define HEAD_MAX 8192
#define READ_TIMEOUT_MS 5000
#define WRITE_TIMEOUT_S 30
#define MAX_SECONDS 300

static int listen_fd = -1;
static int remote_allowed;
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

static void reply_error(int fd, int status, const char *reason, const char *why) {
  char body[256];
  int n = snprintf(body, sizeof body, "%d %s: %s\n", status, reason, why);
  respond(fd, status, reason, "text/plain; charset=utf-8",
          status == 405 ? "Allow: GET, HEAD\r\n" : NULL, body, (size_t)n, 0);
}

/* ---- reading the request head ---- */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Receives into buf[0..cap) once data arrives before `deadline_ms`: the
 * byte count, 0 when the client closed, -1 on error, -2 at the deadline. */
static ssize_t recv_by(int fd, char *buf, size_t cap, int64_t deadline_ms) {
  for (;;) {
    int64_t left = deadline_ms - now_ms();
    struct pollfd p = {fd, POLLIN, 0};
    int ready = left > 0 ? poll(&p, 1, (int)left) : 0;
    if (ready == 0)
      return -2;
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

/* Reads until the blank line ending the head. 0 ok, 408 too slow, 431 too
 * big, -1 the client went away. */
static int read_head(int fd, char *buf, size_t *len) {
  int64_t deadline = now_ms() + READ_TIMEOUT_MS;
  *len = 0;
  for (;;) {
    buf[*len] = '\0';
    if (strstr(buf, "\r\n\r\n") != NULL)
      return 0;
    if (*len >= HEAD_MAX)
      return 431;
    ssize_t r = recv_by(fd, buf + *len, HEAD_MAX - *len, deadline);
    if (r == -2)
      return 408;
    if (r <= 0)
      return -1;
    *len += (size_t)r;
  }
}

/* ---- the symbol service ---- */

#include "../profile/symbols.h"

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

static void serve_symbols(int fd, const request_t *rq, int head_only) {
  static const char there[] = "num_symbols: 1\n";
  if (strcmp(rq->method, "POST") != 0) {
    respond(fd, 200, "OK", "text/plain; charset=utf-8", NULL, there,
            sizeof there - 1, head_only);
    return;
  }
  char *in = malloc(rq->content_length + 1);
  size_t cap = rq->content_length * 8 + 256, len = 0;
  char *out = malloc(cap);
  symbols_t *syms = NULL;
  if (in == NULL || out == NULL || read_body(fd, rq, in) != 0 ||
      (syms = symbols_open()) == NULL) {
    reply_error(fd, 400, "Bad Request", "cannot read or answer the body");
  } else {
    for (char *tok = strtok(in, "+ \r\n"); tok; tok = strtok(NULL, "+ \r\n")) {
      unsigned long long addr = strtoull(tok, NULL, 0);
      symbols_frame_t fr;
      symbols_lookup(syms, addr, &fr);
      if (fr.function == NULL || len + strlen(fr.function) + 24 > cap)
        continue;
      len += (size_t)snprintf(out + len, cap - len, "%#llx %s\n", addr,
                              fr.function);
    }
    respond(fd, 200, "OK", "text/plain; charset=utf-8", NULL, out, len, 0);
  }
  if (syms != NULL)
    symbols_close(syms);
  free(in);
  free(out);
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
  uint8_t *body = NULL;
  size_t len = 0;
  int rc = control_body(kind, debug != 0, (int)seconds, &body, &len);
  if (rc == HEAPPROF_EOFF) {
    reply_error(fd, 404, "Not Found", "peak tracking is off (set HEAPPROF_PEAK=1)");
  } else if (rc != 0) {
    reply_error(fd, 500, "Internal Server Error", heapprof_strerror(rc));
  } else if (debug != 0) {
    respond(fd, 200, "OK", "text/plain; charset=utf-8", NULL, body, len,
            head_only);
  } else {
    char disp[96];
    snprintf(disp, sizeof disp,
             "Content-Disposition: attachment; filename=\"%s\"\r\n", name);
    respond(fd, 200, "OK", "application/octet-stream", disp, body, len,
            head_only);
  }
  free(body);
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
  else
    reply_error(fd, 404, "Not Found", "unknown path; see /debug/pprof/");
}

static void handle(int fd) {
  char head[HEAD_MAX + 1];
  size_t len;
  int rc = read_head(fd, head, &len);
  request_t rq;
  if (rc == 408)
    reply_error(fd, 408, "Request Timeout", "the request head took too long");
  else if (rc == 431)
    reply_error(fd, 431, "Request Header Fields Too Large", "the head is over 8 KiB");
  else if (rc == 0) {
    /* The body starts after the blank line; parse() cuts up the head. */
    const char *body = strstr(head, "\r\n\r\n") + 4;
    if ((rc = httpreq_parse(head, &rq)) != 0) {
      reply_error(fd, 400, "Bad Request", "malformed request");
      return;
    }
    rq.body = body;
    rq.body_have = (size_t)(head + len - body);
    route(fd, &rq);
  }
}

static void *serve(void *arg) {
  (void)arg;
  hp_self.busy = 1; /* nothing the server allocates is profiled */
  for (;;) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOMEM ||
          errno == ENOBUFS) {
        struct timespec pause = {0, 100000000};
        nanosleep(&pause, NULL); /* the host is short of fds: back off */
      } else if (errno == EBADF || errno == EINVAL) {
        return NULL; /* the socket is gone */
      }
      continue;
    }
    struct timeval wt = {WRITE_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wt, sizeof wt);
    handle(fd);
    close(fd);
  }
}

/* ---- start ---- */

/* Fills `ss` from "HOST:PORT"; 0 or -1. */
static int parse_addr(const char *addr, struct sockaddr_storage *ss,
                      socklen_t *sslen) {
  char host[128];
  const char *colon;
  memset(ss, 0, sizeof *ss);
  if (addr[0] == '[') {
    const char *close = strchr(addr, ']');
    if (close == NULL || close[1] != ':' || close - addr - 1 >= (long)sizeof host)
      return -1;
    snprintf(host, sizeof host, "%.*s", (int)(close - addr - 1), addr + 1);
    colon = close + 1;
  } else {
    colon = strrchr(addr, ':');
    if (colon == NULL || colon - addr >= (long)sizeof host)
      return -1;
    snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
  }
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535)
    return -1;
  if (host[0] == '\0' || strcasecmp(host, "localhost") == 0)
    strcpy(host, "127.0.0.1");
  struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)port);
    *sslen = sizeof *in4;
  } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    *sslen = sizeof *in6;
  } else {
    return -1;
  }
  return 0;
}

static int is_loopback(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET)
    return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
  return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
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

void http_start(const char *addr, int remote_ok) {
  struct sockaddr_storage ss;
  socklen_t sslen;
  if (parse_addr(addr, &ss, &sslen) != 0) {
    config_warn("heapprof: HEAPPROF_HTTP=\"%.64s\" is not valid: expected "
                "HOST:PORT with a numeric address or localhost "
                "(127.0.0.1:6060, :0, [::1]:6060); no HTTP server", addr);
    return;
  }
  if (!is_loopback(&ss) && !remote_ok) {
    config_warn("heapprof: HEAPPROF_HTTP=\"%.64s\" is not a loopback address; "
                "set HEAPPROF_HTTP_REMOTE=1 to serve profiles to other hosts; "
                "no HTTP server", addr);
    return;
  }
  remote_allowed = remote_ok;
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sslen) != 0 ||
      listen(fd, 16) != 0) {
    config_warn("heapprof: cannot serve HTTP on %s: %s", addr, strerror(errno));
    if (fd >= 0)
      close(fd);
    return;
  }
  note_served(fd);
  listen_fd = fd;
  int rc = control_spawn("heapprof-http", serve);
  if (rc != 0) {
    config_warn("heapprof: cannot start the HTTP thread: %s", strerror(rc));
    close(fd);
    listen_fd = -1;
    return;
  }
  if (strstr(addr, ":0") == addr + strlen(addr) - 2)
    config_warn("heapprof: serving http://%s:%d/debug/pprof/", served_host,
                served_port);
}

void http_fork_child(void) {
  if (listen_fd >= 0) {
    close(listen_fd);
    listen_fd = -1;
  }
}
