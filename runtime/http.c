/*
 * http — a small, strict HTTP/1.1 server for /debug/pprof/.
 *
 * One thread serves every connection (at most CONNS_MAX at once) from one
 * poll() loop: sockets are non-blocking and each connection is a small
 * state machine, so an idle keep-alive connection, a client that sends
 * its head a byte at a time, a slow reader or a ?seconds=N window holds
 * up nobody. The only waits are the profiles themselves, made on this
 * thread one at a time (the pipeline serializes them anyway): a request
 * waits at most for the profile being made when it arrived, plus those
 * asked before it in the same poll round.
 *
 *   connection  HEAD ─ request whole ─▶ SEND ─ sent ─▶ IDLE ─ a byte ─▶ HEAD
 *                 │                      ▲
 *                 └─ ?seconds=N ─▶ WINDOW ┘ (N seconds later, the delta)
 *
 * Limits, per connection: a request head must arrive whole within
 * HEAD_TIMEOUT_MS of its first byte (of the accept, on a new connection)
 * and fit in HEAD_MAX bytes, or it gets 408 / 431; anything malformed gets
 * a 4xx and the connection is closed; a response must be taken within
 * SEND_TIMEOUT_MS; a keep-alive connection idle for IDLE_TIMEOUT_MS is
 * closed. When every slot is taken, the idle connection that waited
 * longest is closed for a new one; when none is idle, the new one gets
 * 503 with Retry-After at once. At most WINDOWS_MAX ?seconds= windows are
 * open at once (each keeps 24 bytes a bucket), or 503.
 *
 * Only GET and HEAD are served (and the symbol service's POST). The Host
 * header must name the loopback address served (or "localhost") unless
 * remote access was opted into, which stops a web page from reaching the
 * endpoint through DNS rebinding. Sockets are close-on-exec and writes use
 * MSG_NOSIGNAL, so a vanished client never raises SIGPIPE in the host.
 *
 *   /debug/pprof/             an index
 *   /debug/pprof/heap         gzipped proto; ?debug=1 Go's text format;
 *                             ?seconds=N a delta profile over N seconds
 *   /debug/pprof/allocs       the same, opening on alloc_space
 *   /debug/pprof/delta_heap   godeltaprof's: alloc_* since the previous
 *                             delta_heap answer, inuse_* now
 *   /debug/pprof/peak         the high-water-mark profile (HEAPPROF_PEAK=1)
 *   /debug/pprof/symbol       Go's symbol service: GET says it is there,
 *                             POST "0xADDR+0xADDR…" answers "0xADDR name"
 *                             lines (pprof asks it for text profiles)
 *   /debug/pprof/profile, block, mutex, goroutine, threadcreate, trace,
 *   cmdline                   Go's runtime's own: a 404 saying so, at once
 *
 * Profiles are application/octet-stream with a Content-Disposition
 * naming them; text is text/plain; errors are text/plain with
 * X-Go-Pprof: 1, as Go's are; everything carries nosniff.
 */
#define _GNU_SOURCE
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
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
#define HEAD_TIMEOUT_MS 5000
#define SEND_TIMEOUT_MS 30000
/* Longer than Go's client keeps an idle connection (90 s), so that the
 * client, not the server, ends it: a server closing a connection as the
 * client reuses it is what makes a scrape fail. */
#define IDLE_TIMEOUT_MS 120000
#define CONNS_MAX 64
#define WINDOWS_MAX 8
/* Answers made and not yet taken by their clients, in bytes: beyond this
 * the answers whose clients stopped reading are given up, and if that is
 * not enough a new profile gets 503 (clients asking for big debug=1
 * profiles and never reading would otherwise hold the host's memory for
 * the send timeout). One answer may take it over the bound. */
#define HELD_MAX (32u << 20)
#define DRAIN_MS 2000
#define DRAIN_MAX (64u << 10) /* bytes read and dropped at most */
/* A response its client has taken nothing of for this long, while answers
 * held are over HELD_MAX, is given up for a new one. */
#define STALLED_MS 1000
#define MAX_SECONDS 300
#define TICK_MS 100 /* how soon http_stop is seen */

static int remote_allowed;
static int verbose;
static char served_host[64]; /* the bound address as a Host would name it */
static int served_port;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- connections ---- */

/* DRAIN: the last answer is sent and our side shut; what the client still
 * sends is read and dropped until it closes (DRAIN_MS at most), so that
 * closing with its bytes unread does not reset the connection and lose
 * the answer on the way (a 431, a 400). */
enum { C_FREE, C_HEAD, C_IDLE, C_WINDOW, C_SEND, C_DRAIN };

typedef struct conn {
  int fd, state;
  ino_t ino;        /* the socket's: checked where the table is shared */
  int64_t deadline; /* ms, CLOCK_MONOTONIC: what happens then is the state's */
  /* What the client sent: the request being read, and any after it. */
  char *in;
  size_t in_len, in_cap;
  size_t used;   /* bytes of `in` the request being answered took */
  int pending;   /* it can move on without waiting (progress) */
  int eof;       /* the client has sent all it will */
  size_t drained; /* bytes dropped in DRAIN */
  int64_t moved; /* ms: when the client last took part of the response */
  size_t taken;  /* bytes of it the client had taken then */
  /* The response: head[0..head_len) then body[0..body_len). */
  char head[640];
  size_t head_len, body_len, sent;
  const char *body;
  pprof_membuf_t profile; /* the body when it is a profile */
  char *text;             /* the body when it is a symbol answer */
  int keep;               /* read another request after this response */
  int head_only; /* the request is a HEAD: no body */
  int http10;    /* an HTTP/1.0 client: keep-alive only when said */
  /* An open ?seconds= window and what to answer when it closes. */
  pipeline_window_t window;
  heapprof_kind_t window_kind;
} conn_t;

static conn_t conns[CONNS_MAX];
static int windows_open;
static size_t held; /* bytes of profiles in answers being sent */

/* Whether `fd` is the socket with inode `ino`. */
static int socket_is(int fd, ino_t ino) {
  struct stat st;
  return fd >= 0 && fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
         st.st_ino == ino;
}

/* Whether `fd` is still the socket heapprof made (inode `ino`) and may be
 * used. Only a thread that shares the program's table (unshare refused)
 * needs to ask: the program may have closed that number and opened
 * something of its own there. */
static int ours(int fd, ino_t ino) {
  return fdtable_is_private() || socket_is(fd, ino);
}

static int conn_ours(const conn_t *c) { return ours(c->fd, c->ino); }

static void release_body(conn_t *c) {
  held -= c->profile.cap;
  pprof_membuf_free(&c->profile);
  free(c->text);
  c->text = NULL;
  c->body = NULL;
  c->body_len = 0;
}

static void conn_close(conn_t *c) {
  if (c->state == C_WINDOW) {
    pipeline_window_drop(&c->window);
    windows_open--;
  }
  release_body(c);
  if (conn_ours(c))
    close(c->fd); /* else the number is the program's now: left alone */
  free(c->in);
  memset(c, 0, sizeof *c);
}

/* ---- responses ---- */

/* Notes whether c's client has taken more of its answer since last seen
 * (bytes sent less those the kernel still holds unacknowledged): a slow,
 * steady reader behind a send buffer of megabytes leaves the server
 * nothing to send for seconds, yet is not stalled. */
static void note_taken(conn_t *c) {
  int queued = 0;
  if (!conn_ours(c) || ioctl(c->fd, SIOCOUTQ, &queued) != 0 || queued < 0)
    return;
  size_t taken = c->sent > (size_t)queued ? c->sent - (size_t)queued : 0;
  if (taken > c->taken) {
    c->taken = taken;
    c->moved = now_ms();
  }
}

/* Sends what is left of c's response without blocking: 1 when all of it
 * is sent, 0 when the socket is full, -1 when the client is gone. */
static int flush(conn_t *c) {
  while (c->sent < c->head_len + c->body_len) {
    /* Head and body in one call: two would wait out the client's delayed
     * ACK (Nagle) between them, 40 ms a response. */
    struct iovec iov[2];
    struct msghdr msg = {.msg_iov = iov};
    size_t body_sent = c->sent > c->head_len ? c->sent - c->head_len : 0;
    if (c->sent < c->head_len)
      iov[msg.msg_iovlen++] = (struct iovec){c->head + c->sent,
                                             c->head_len - c->sent};
    if (c->body_len > body_sent)
      iov[msg.msg_iovlen++] = (struct iovec){(char *)c->body + body_sent,
                                             c->body_len - body_sent};
    if (!conn_ours(c))
      return -1;
    ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return 0;
    if (w <= 0)
      return -1;
    c->sent += (size_t)w;
    note_taken(c);
  }
  return 1;
}

/* Starts c's response (the body is c->body[0..body_len), set by the
 * caller, or nothing for HEAD): the state is SEND from here. */
static void respond(conn_t *c, int status, const char *reason,
                    const char *type, const char *extra) {
  int n = snprintf(c->head, sizeof c->head,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                   "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n"
                   "%s%s\r\n",
                   status, reason, type, c->body_len, extra ? extra : "",
                   !c->keep    ? "Connection: close\r\n"
                   : c->http10 ? "Connection: keep-alive\r\n"
                               : "");
  c->head_len = n > 0 && (size_t)n < sizeof c->head ? (size_t)n : 0;
  if (c->head_only)
    c->body_len = 0; /* Content-Length says what a GET would get */
  c->sent = c->taken = 0;
  c->moved = now_ms();
  c->state = C_SEND;
  c->deadline = now_ms() + SEND_TIMEOUT_MS;
}

static void reply_static(conn_t *c, const char *type, const char *body,
                         size_t len) {
  c->body = body;
  c->body_len = len;
  respond(c, 200, "OK", type, NULL);
}

/* Errors are text, marked as Go's net/http/pprof marks them, so that a
 * scraper never takes one for a profile. */
static void reply_error(conn_t *c, int status, const char *reason,
                        const char *why) {
  enum { CAP = 256 };
  release_body(c);
  c->text = malloc(CAP);
  int n = c->text != NULL
              ? snprintf(c->text, CAP, "%d %s: %s\n", status, reason, why)
              : 0;
  c->body = c->text;
  c->body_len = n > 0 && n < CAP ? (size_t)n : 0;
  respond(c, status, reason, "text/plain; charset=utf-8",
          status == 405   ? "X-Go-Pprof: 1\r\nAllow: GET, HEAD\r\n"
          : status == 503 ? "X-Go-Pprof: 1\r\nRetry-After: 1\r\n"
                          : "X-Go-Pprof: 1\r\n");
}

/* An error after which the connection cannot go on (the request could
 * not be read, so where the next one starts is unknown). */
static void reply_fatal(conn_t *c, int status, const char *reason,
                        const char *why) {
  c->keep = 0;
  c->head_only = 0; /* the request could not be read: a GET's answer */
  reply_error(c, status, reason, why);
}

/* ---- the symbol service ---- */

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
    syms->lookup(syms->ctx, addr, 0, &fr);
    /* The linker's name of the function holding the code, as Go's
     * handler names it: pprof demangles it as its user asked. */
    const prof_line_t *fn = prof_frame_function(&fr);
    const char *name = fn ? prof_line_system_name(fn) : NULL;
    if (name == NULL || a->len + strlen(name) + 24 > a->cap)
      continue;
    a->len += (size_t)snprintf(a->out + a->len, a->cap - a->len, "%#llx %s\n",
                               addr, name);
  }
}

static void serve_symbols(conn_t *c, const request_t *rq) {
  static const char there[] = "num_symbols: 1\n";
  if (strcmp(rq->method, "POST") != 0)
    return reply_static(c, "text/plain; charset=utf-8", there,
                        sizeof there - 1);
  symbol_answer_t a = {malloc(rq->content_length + 1), NULL,
                       rq->content_length * 8 + 256, 0};
  a.out = malloc(a.cap);
  if (a.in != NULL)
    memcpy(a.in, rq->body, rq->content_length);
  if (a.in != NULL)
    a.in[rq->content_length] = '\0';
  if (a.in == NULL || a.out == NULL || pipeline_symbolize(answer_symbols, &a) != 0) {
    free(a.out);
    reply_error(c, 500, "Internal Server Error", "cannot answer the body");
  } else {
    release_body(c);
    c->text = a.out;
    c->body = a.out;
    c->body_len = a.len;
    respond(c, 200, "OK", "text/plain; charset=utf-8", NULL);
  }
  free(a.in);
}

/* ---- profiles ---- */

static const char index_html[] =
    "<!DOCTYPE html><html><head><title>/debug/pprof/</title></head><body>\n"
    "<h1>heapprof /debug/pprof/</h1>\n<ul>\n"
    "<li><a href=\"heap?debug=1\">heap</a>: in-use memory, by allocation site "
    "(<a href=\"heap\">proto</a>)</li>\n"
    "<li><a href=\"allocs?debug=1\">allocs</a>: everything allocated since start "
    "(<a href=\"allocs\">proto</a>)</li>\n"
    "<li><a href=\"delta_heap\">delta_heap</a>: allocated since the previous "
    "delta_heap request, and in use now (godeltaprof's)</li>\n"
    "<li><a href=\"peak\">peak</a>: in-use memory at its high-water mark "
    "(HEAPPROF_PEAK=1)</li>\n</ul>\n"
    "<p>go tool pprof http://HOST:PORT/debug/pprof/heap &mdash; add "
    "?seconds=N for what changed over N seconds.</p>\n</body></html>\n";

/* Answers a profile made into c->profile: rc is what the pipeline said. */
static void reply_profile(conn_t *c, int rc, const char *name, int text) {
  if (rc != 0) {
    int err = errno;
    pprof_membuf_free(&c->profile);
    if (err == ENODATA)
      reply_error(c, 404, "Not Found", "no peak kept: peak tracking is off "
                  "(set HEAPPROF_PEAK=1) or no high-water mark was reached yet");
    else if (err == EBUSY)
      reply_error(c, 503, "Service Unavailable",
                  "the profiler is not started, or the process is exiting");
    else
      reply_error(c, 500, "Internal Server Error",
                  err == ENOMEM ? "out of memory for the profile"
                                : "cannot make the profile");
    return;
  }
  c->body = (const char *)c->profile.data;
  c->body_len = c->profile.len;
  held += c->profile.cap;
  if (text)
    return respond(c, 200, "OK", "text/plain; charset=utf-8", NULL);
  char disp[96];
  snprintf(disp, sizeof disp,
           "Content-Disposition: attachment; filename=\"%s\"\r\n", name);
  respond(c, 200, "OK", "application/octet-stream", disp);
}

/* Whether another profile may be made: the answers being sent hold under
 * HELD_MAX, once those whose clients stopped reading (nothing taken for
 * STALLED_MS) are given up, the longest stalled first. */
static int room_for_answer(void) {
  while (held > HELD_MAX) {
    conn_t *worst = NULL;
    int64_t now = now_ms();
    for (int i = 0; i < CONNS_MAX; i++) {
      conn_t *c = &conns[i];
      if (c->state != C_SEND || c->profile.cap == 0)
        continue;
      note_taken(c); /* a reader the send buffer hides is still reading */
      if (now - c->moved >= STALLED_MS &&
          (worst == NULL || c->moved < worst->moved))
        worst = c;
    }
    if (worst == NULL)
      return 0;
    conn_close(worst);
  }
  return 1;
}

static const char *kind_name(heapprof_kind_t kind) {
  return kind == HEAPPROF_HEAP ? "heap" : kind == HEAPPROF_ALLOCS ? "allocs"
                                                                  : "peak";
}

static void serve_profile(conn_t *c, const request_t *rq, heapprof_kind_t kind) {
  long debug, seconds;
  if (httpreq_query_int(rq->query, "debug", &debug) < 0 || debug < 0 || debug > 2 ||
      httpreq_query_int(rq->query, "seconds", &seconds) < 0 || seconds < 0 ||
      seconds > MAX_SECONDS)
    return reply_error(c, 400, "Bad Request", "debug must be 0-2, seconds 0-300");
  if (seconds > 0 && (debug != 0 || kind == HEAPPROF_PEAK))
    return reply_error(c, 400, "Bad Request",
                       "seconds= needs the proto form of heap or allocs");
  c->profile = (pprof_membuf_t){.alloc = &pipeline_heap};
  if (seconds == 0 && !room_for_answer())
    return reply_error(c, 503, "Service Unavailable",
                       "too many answers are waiting to be read; try again later");
  if (seconds == 0)
    return reply_profile(c, pipeline_body(kind, debug != 0, &c->profile),
                         kind_name(kind), debug != 0);
  /* A window holds a snapshot, not an answer, until it closes. */
  if (windows_open >= WINDOWS_MAX)
    return reply_error(c, 503, "Service Unavailable",
                       "too many ?seconds= windows open; try again later");
  if (pipeline_window_open(&c->window) != 0)
    return reply_profile(c, -1, NULL, 0);
  windows_open++;
  c->window_kind = kind;
  c->state = C_WINDOW;
  /* From the moment the window opened, rounded up: never a window short
   * of what was asked. */
  c->deadline = (c->window.opened_ns + 999999) / 1000000 + seconds * 1000;
}

/* The window's time is up: its delta is the answer. */
static void close_window(conn_t *c) {
  windows_open--;
  c->profile = (pprof_membuf_t){.alloc = &pipeline_heap};
  int rc = pipeline_window_close(&c->window, c->window_kind, &c->profile);
  reply_profile(c, rc, c->window_kind == HEAPPROF_HEAP ? "heap-delta"
                                                       : "allocs-delta",
                0);
}

static void serve_delta_heap(conn_t *c, const request_t *rq) {
  long debug, seconds;
  if (httpreq_query_int(rq->query, "debug", &debug) < 0 || debug != 0 ||
      httpreq_query_int(rq->query, "seconds", &seconds) < 0 || seconds != 0)
    return reply_error(c, 400, "Bad Request",
                       "delta_heap is proto only, over the time since the "
                       "previous delta_heap request: no debug= or seconds=");
  if (!room_for_answer())
    return reply_error(c, 503, "Service Unavailable",
                       "too many answers are waiting to be read; try again later");
  c->profile = (pprof_membuf_t){.alloc = &pipeline_heap};
  /* HEAD says what a GET would get without taking it: the base stays. */
  reply_profile(c, pipeline_delta_heap(&c->profile, !c->head_only),
                "delta_heap", 0);
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

static void route(conn_t *c, const request_t *rq) {
  const char *p = rq->path;
  if (!httpreq_host_ok(rq->host, served_host, served_port, remote_allowed))
    return reply_error(c, 403, "Forbidden", "Host does not name this loopback server");
  if (strcmp(p, "/debug/pprof/symbol") == 0 && strcmp(rq->method, "POST") == 0)
    return serve_symbols(c, rq);
  if (!c->head_only && strcmp(rq->method, "GET") != 0)
    return reply_error(c, 405, "Method Not Allowed", "only GET and HEAD");
  if (strcmp(p, "/debug/pprof/") == 0 || strcmp(p, "/debug/pprof") == 0)
    reply_static(c, "text/html; charset=utf-8", index_html,
                 sizeof index_html - 1);
  else if (strcmp(p, "/debug/pprof/heap") == 0)
    serve_profile(c, rq, HEAPPROF_HEAP);
  else if (strcmp(p, "/debug/pprof/allocs") == 0)
    serve_profile(c, rq, HEAPPROF_ALLOCS);
  else if (strcmp(p, "/debug/pprof/peak") == 0)
    serve_profile(c, rq, HEAPPROF_PEAK);
  else if (strcmp(p, "/debug/pprof/delta_heap") == 0)
    serve_delta_heap(c, rq);
  else if (strcmp(p, "/debug/pprof/symbol") == 0)
    serve_symbols(c, rq);
  else if (go_only(p))
    reply_error(c, 404, "Not Found", "heapprof serves heap, allocs, delta_heap "
                "and peak profiles; this one is Go's runtime's (a scraper may "
                "leave it off)");
  else
    reply_error(c, 404, "Not Found", "unknown path; see /debug/pprof/");
}

/* ---- the listening socket and the thread ---- */

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
  int lfd, claim_fd;   /* the listening socket, the port's claim (or -1) */
  _Atomic int shared;  /* the thread shares the program's table */
  ino_t claim_ino;
  int any_port; /* port 0 asked for: the one picked is printed */
  _Atomic int quit; /* http_stop asks the thread to end */
  _Atomic int up;
  spawned_t thread;
} start = {.lfd = -1, .claim_fd = -1};


/* ---- reading requests ---- */

/* Reads what the socket holds into c->in (kept NUL-terminable): -1 when
 * the client failed (reset) or the descriptor is no longer ours; at the
 * end of its stream, c->eof is set. */
static int take_input(conn_t *c) {
  if (c->state == C_DRAIN) {
    char sink[4096];
    ssize_t r = recv(c->fd, sink, sizeof sink, MSG_DONTWAIT);
    if (r == 0 || (c->drained += r > 0 ? (size_t)r : 0) > DRAIN_MAX)
      c->eof = 1; /* done, or a client that would keep us reading */
    return r >= 0 || errno == EAGAIN || errno == EINTR ? 0 : -1;
  }
  if (c->in == NULL) {
    c->in = malloc(HEAD_MAX + 1);
    if (c->in == NULL)
      return -1;
    c->in_cap = HEAD_MAX + 1;
  }
  size_t room = c->in_cap - 1 - c->in_len;
  if (room == 0)
    return 0; /* the request decides: 431, or a body being read */
  if (!conn_ours(c))
    return -1;
  ssize_t r = recv(c->fd, c->in + c->in_len, room, MSG_DONTWAIT);
  if (r > 0)
    c->in_len += (size_t)r;
  else if (r == 0)
    c->eof = 1;
  else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
    return -1;
  return 0;
}

/* Answers the request at the start of c->in once all of it is there: 1
 * when an answer was begun (the state moved on), 0 while more bytes are
 * needed. */
static int try_request(conn_t *c) {
  static char head[HEAD_MAX + 1]; /* this thread's alone */
  size_t head_len = 0;
  c->in[c->in_len] = '\0';
  int end = httpreq_head_end(c->in, c->in_len, &head_len);
  if (end < 0)
    return reply_fatal(c, 400, "Bad Request", "malformed request head"), 1;
  if (end == 0 ? c->in_len >= HEAD_MAX : head_len > HEAD_MAX)
    return reply_fatal(c, 431, "Request Header Fields Too Large",
                       "the head is over 8 KiB"), 1;
  if (end == 0)
    return 0;
  memcpy(head, c->in, head_len);
  head[head_len] = '\0';
  request_t rq;
  if (httpreq_parse(head, &rq) != 0)
    return reply_fatal(c, 400, "Bad Request", "malformed request"), 1;
  size_t need = head_len + rq.content_length;
  if (c->in_len < need) {
    if (need + 1 > c->in_cap) {
      char *in = realloc(c->in, need + 1);
      if (in == NULL)
        return reply_fatal(c, 500, "Internal Server Error",
                           "out of memory for the body"), 1;
      c->in = in;
      c->in_cap = need + 1;
    }
    return 0;
  }
  rq.body = c->in + head_len;
  rq.body_have = rq.content_length;
  c->used = need;
  c->head_only = strcmp(rq.method, "HEAD") == 0;
  c->http10 = !rq.http11;
  /* A client that has sent all it will still gets every answer it asked
   * for; the last one says the connection ends. */
  c->keep = httpreq_keep_alive(&rq) && !(c->eof && c->in_len == need) &&
            fdtable_is_private(); /* see conn_ours: hold numbers briefly */
  route(c, &rq);
  return 1;
}

/* The response is sent: the connection waits for its next request, or
 * ends. */
static void finish(conn_t *c) {
  release_body(c);
  if (!c->keep) {
    /* Not where the table is shared: a number reused by the program
     * between the check and the shutdown would end the program's socket. */
    if (c->eof || !fdtable_is_private() || shutdown(c->fd, SHUT_WR) != 0) {
      conn_close(c);
    } else {
      c->state = C_DRAIN;
      c->deadline = now_ms() + DRAIN_MS;
    }
    return;
  }
  memmove(c->in, c->in + c->used, c->in_len - c->used);
  c->in_len -= c->used;
  c->used = 0;
  if (c->in_len > 0) { /* the client sent the next one already */
    c->state = C_HEAD;
    c->deadline = now_ms() + HEAD_TIMEOUT_MS;
    c->pending = 1;
  } else if (c->eof) {
    conn_close(c); /* answered all it asked, and gone */
  } else {
    free(c->in); /* an idle connection keeps no buffer */
    c->in = NULL;
    c->in_cap = 0;
    c->state = C_IDLE;
    c->deadline = now_ms() + IDLE_TIMEOUT_MS;
  }
}

/* Moves c on as far as it can go without waiting. */
static void progress(conn_t *c) {
  c->pending = 0;
  if (c->state == C_DRAIN) {
    if (c->eof)
      conn_close(c);
    return;
  }
  if (c->state == C_IDLE) {
    if (c->in_len == 0) {
      if (c->eof)
        conn_close(c);
      return;
    }
    c->state = C_HEAD; /* its next request has begun */
    c->deadline = now_ms() + HEAD_TIMEOUT_MS;
  }
  if (c->state == C_HEAD && !try_request(c)) {
    if (c->eof)
      conn_close(c); /* the client ended mid-request: nobody to answer */
    return;
  }
  if (c->state == C_SEND) {
    int done = flush(c);
    if (done < 0)
      conn_close(c);
    else if (done > 0)
      finish(c);
  }
}

/* c's deadline has come. */
static void expire(conn_t *c) {
  switch (c->state) {
  case C_HEAD:
    reply_fatal(c, 408, "Request Timeout", "the request head took too long");
    c->pending = 1;
    break;
  case C_WINDOW:
    close_window(c);
    c->pending = 1;
    break;
  default: /* idle too long, or a response nobody takes */
    conn_close(c);
  }
}

/* ---- the loop ---- */

/* Closes a spare connection (nothing more to answer) for a new one: one
 * being drained after its last answer, else the idle one that has waited
 * longest. Its slot, or NULL when every slot is answering. */
static conn_t *reclaim_spare(void) {
  conn_t *oldest = NULL;
  for (int pass = 0; pass < 2 && oldest == NULL; pass++)
    for (int i = 0; i < CONNS_MAX; i++)
      if (conns[i].state == (pass == 0 ? C_DRAIN : C_IDLE) &&
          (oldest == NULL || conns[i].deadline < oldest->deadline))
        oldest = &conns[i];
  if (oldest != NULL)
    conn_close(oldest);
  return oldest;
}

static conn_t *free_slot(void) {
  for (int i = 0; i < CONNS_MAX; i++)
    if (conns[i].state == C_FREE)
      return &conns[i];
  return reclaim_spare();
}

/* Every slot is busy with a request: this connection is told so at once
 * and closed, never queued. */
static void refuse(int fd) {
  static const char busy[] =
      "HTTP/1.1 503 Service Unavailable\r\n"
      "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 60\r\n"
      "Retry-After: 1\r\nX-Go-Pprof: 1\r\nX-Content-Type-Options: nosniff\r\n"
      "Connection: close\r\n\r\n"
      "503 Service Unavailable: every connection slot is answering\n";
  _Static_assert(sizeof "503 Service Unavailable: every connection slot is "
                        "answering\n" - 1 == 60, "Content-Length");
  send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
  close(fd);
}

/* Takes the connections waiting on the listener: 0, or -1 when the
 * process is short of descriptors or memory (the caller pauses). */
static int accept_all(int lfd) {
  for (int i = 0; i < CONNS_MAX; i++) {
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
      return errno == EMFILE || errno == ENFILE || errno == ENOMEM ||
                     errno == ENOBUFS
                 ? -1
                 : 0;
    fd = fdtable_move_high(fd);
    conn_t *c = free_slot();
    if (c == NULL) {
      refuse(fd);
      continue;
    }
    struct stat st;
    int one = 1; /* an answer goes out whole at once, never behind Nagle */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->ino = fstat(fd, &st) == 0 ? st.st_ino : 0;
    c->state = C_HEAD;
    c->deadline = now_ms() + HEAD_TIMEOUT_MS;
  }
  return 0;
}

static short events_of(const conn_t *c) {
  switch (c->state) {
  case C_SEND:
    return POLLOUT;
  case C_WINDOW:
    /* Only to see the client leave (close or shut down its side): the
     * window is dropped then, as Go's server cancels the request. */
    return POLLRDHUP;
  case C_DRAIN:
    return POLLIN;
  default:
    return c->eof || (c->in != NULL && c->in_len + 1 >= c->in_cap) ? 0 : POLLIN;
  }
}

static void serve_loop(int lfd) {
  struct pollfd pfd[CONNS_MAX + 1];
  conn_t *who[CONNS_MAX + 1];
  int64_t accept_again = 0; /* short of descriptors: wait till then */
  while (!atomic_load(&start.quit)) {
    if (!ours(lfd, start.ino)) {
      config_warn("heapprof: the program closed the /debug/pprof socket "
                  "(descriptor %d); no HTTP server from now on", lfd);
      break;
    }
    int64_t now = now_ms(), wake = now + TICK_MS;
    int n = 0, busy = 0;
    /* Wait in poll, not in accept: a blocked accept holds the number the
     * connection will get, which in a table shared with the program (no
     * unshare) is the program's lowest free one. */
    if (now >= accept_again)
      pfd[n] = (struct pollfd){lfd, POLLIN, 0}, who[n++] = NULL;
    for (int i = 0; i < CONNS_MAX; i++) {
      conn_t *c = &conns[i];
      if (c->state != C_FREE && now >= c->deadline)
        expire(c);
      if (c->state == C_FREE)
        continue;
      busy |= c->pending;
      pfd[n] = (struct pollfd){c->fd, events_of(c), 0};
      who[n++] = c;
      if (c->deadline < wake)
        wake = c->deadline;
    }
    int ready = poll(pfd, (nfds_t)n, busy ? 0 : (int)(wake > now ? wake - now : 0));
    if (ready < 0 && errno != EINTR)
      break; /* poll cannot fail on valid descriptors */
    int listener_ready = 0;
    for (int k = 0; ready > 0 && k < n; k++) {
      if (pfd[k].revents == 0)
        continue;
      conn_t *c = who[k];
      if (c == NULL) {
        listener_ready = 1; /* after the others: accepting may close one */
      } else if (c->state == C_WINDOW) {
        conn_close(c); /* the client left: the window is dropped */
      } else if (c->state == C_SEND || take_input(c) == 0) {
        c->pending = 1;
      } else {
        conn_close(c);
      }
    }
    /* Progress first: a connection that ended frees its slot, and one
     * whose next request came stops being idle, before a newcomer is
     * given a slot (or 503, or an idle connection's). */
    for (int i = 0; i < CONNS_MAX; i++)
      if (conns[i].state != C_FREE && conns[i].pending)
        progress(&conns[i]);
    if (listener_ready && accept_all(lfd) != 0)
      accept_again = now_ms() + TICK_MS;
  }
  for (int i = 0; i < CONNS_MAX; i++)
    if (conns[i].state != C_FREE)
      conn_close(&conns[i]);
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
  fd = fdtable_move_high(fd);
  struct stat st;
  if (start.claim_fd < 0) {
    start.claim_fd = fd;
    start.claim_ino = fstat(fd, &st) == 0 ? st.st_ino : 0;
  }
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

/* The sockets the thread holds: in a private table they go with the
 * thread; in the program's they must be closed. */
static void close_sockets(void) {
  if (!fdtable_is_private()) {
    if (socket_is(start.lfd, start.ino))
      close(start.lfd);
    if (socket_is(start.claim_fd, start.claim_ino))
      close(start.claim_fd);
  }
  start.lfd = start.claim_fd = -1;
}

static void *serve(void *arg) {
  (void)arg;
  start.lfd = start.claim_fd = -1;
  atomic_store(&start.shared, !fdtable_is_private());
  int lfd = start.lfd = open_listener();
  sem_post(&start.ready);
  if (lfd >= 0)
    serve_loop(lfd);
  close_sockets();
  return NULL;
}

void http_start(const char *addr, int remote_ok, int verbose_on) {
  snprintf(start.addr, sizeof start.addr, "%s", addr);
  remote_allowed = remote_ok;
  verbose = verbose_on;
  sem_init(&start.ready, 0, 0);
  atomic_store(&start.quit, 0);
  int rc = spawn_thread("heapprof-http", serve, NULL, &start.thread);
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
  spawn_join(&start.thread); /* its table, sockets and claim go with it */
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
/* Where the thread shared the program's table, the child holds copies of
 * its sockets: they are closed here (each checked by inode first), so
 * that a connection ends when the parent ends it and a child that does
 * not serve does not keep the port. In a private table those numbers
 * were never the child's: nothing to close, no system call made. Memory
 * the connections held is left (a few KiB): freeing in a fork handler is
 * not worth the risk. errno is the program's, kept. */
void http_fork_child(void) {
  atomic_store(&start.up, 0);
  if (atomic_load(&start.shared)) {
    int saved = errno;
    for (int i = 0; i < CONNS_MAX; i++)
      if (conns[i].state != C_FREE && socket_is(conns[i].fd, conns[i].ino))
        close(conns[i].fd);
    if (socket_is(start.lfd, start.ino))
      close(start.lfd);
    if (socket_is(start.claim_fd, start.claim_ino))
      close(start.claim_fd);
    errno = saved;
  }
  memset(conns, 0, sizeof conns);
  windows_open = 0;
  held = 0;
  start.lfd = start.claim_fd = -1;
  atomic_store(&start.shared, 0);
}
