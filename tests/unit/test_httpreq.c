/*
 * test_httpreq — the HTTP server's pure half, without a socket: where a
 * request head ends (and which bytes make it hopeless: NUL, bare LF, bare
 * CR), the strict request line and fields, the Host check (a port must be
 * all digits and the served one), and the HEAPPROF_HTTP address parser.
 * Each refused form is one a lenient parser has been seen to accept.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpreq.h"
#include "testlib.h"

#define GOOD_HEAD "GET /debug/pprof/heap HTTP/1.1\r\nHost: 127.0.0.1:6060\r\n\r\n"

static int head_end(const char *buf, size_t len, size_t *head_len) {
  *head_len = 0;
  return httpreq_head_end(buf, len, head_len);
}

static void framing(void) {
  size_t n, len = strlen(GOOD_HEAD);
  CHECK(head_end(GOOD_HEAD, len, &n) == 1 && n == len, "a whole head: %zu", n);
  for (size_t cut = 0; cut < len; cut++)
    CHECK(head_end(GOOD_HEAD, cut, &n) == 0, "a head cut at %zu is not waited for", cut);
  /* Whatever follows the head (a body) is not the head's business. */
  static const char body[] = GOOD_HEAD "0x1\n\0\r";
  CHECK(head_end(body, sizeof body - 1, &n) == 1 && n == len, "head with a body");
#define BYTES(s) {s, sizeof s - 1}
  static const struct {
    const char *bytes;
    size_t len;
  } hopeless[] = {
      BYTES("GET / HTTP/1.1\nHost: a\n\n"),        /* LF line ends */
      BYTES("GET / HTTP/1.1\r\nHost: a\n"),       /* bare LF, end not yet in */
      BYTES("\n"),
      BYTES("GET /\0 HTTP/1.1\r\n\r\n"),          /* NUL in the request line */
      BYTES("GET / HTTP/1.1\r\nHost: a\0"),       /* NUL, end not yet in */
      BYTES("GET / HTTP/1.1\rHost: a\r\n\r\n"),   /* bare CR */
      BYTES("GET / HTTP/1.1\r\r\n\r\n"),          /* CR CR LF */
  };
#undef BYTES
  for (size_t i = 0; i < sizeof hopeless / sizeof *hopeless; i++)
    CHECK(head_end(hopeless[i].bytes, hopeless[i].len, &n) == -1,
          "hopeless head %zu not refused at once", i);
  CHECK(head_end("GET / HTTP/1.1\r", 15, &n) == 0, "a CR at the end may get its LF");
  printf("ok: framing\n");
}

/* httpreq_parse on a copy of `head`. */
static int parse(const char *head, request_t *rq) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", head);
  return httpreq_parse(buf, rq);
}

static void good_requests(void) {
  request_t rq;
  CHECK(parse("GET /debug/pprof/heap?seconds=2&debug=1 HTTP/1.1\r\n"
              "Host: 127.0.0.1:6060\r\nUser-Agent: Go-http-client/1.1\r\n"
              "Accept-Encoding: gzip\r\n\r\n", &rq) == 0 &&
            strcmp(rq.method, "GET") == 0 &&
            strcmp(rq.path, "/debug/pprof/heap") == 0 &&
            strcmp(rq.query, "seconds=2&debug=1") == 0 && rq.http11 &&
            strcmp(rq.host, "127.0.0.1:6060") == 0, "go tool pprof's request");
  CHECK(parse("HEAD / HTTP/1.0\r\n\r\n", &rq) == 0 && !rq.http11 &&
            rq.host[0] == '\0', "HTTP/1.0 without Host");
  CHECK(parse("POST /debug/pprof/symbol HTTP/1.1\r\nHost: [::1]:6060\r\n"
              "content-length: 12\r\n\r\n0x1+0x2", &rq) == 0 &&
            rq.content_length == 12 && strcmp(rq.host, "[::1]:6060") == 0,
        "a POST with a length");
  CHECK(parse("GET / HTTP/1.1\r\nHost: \t localhost:6060 \t\r\nX-Empty:\r\n"
              "X-Latin: caf\xe9\r\n\r\n", &rq) == 0 &&
            strcmp(rq.host, "localhost:6060") == 0,
        "blanks around values, an empty value, obs-text");
  static const struct {
    const char *req;
    int keep;
  } conn[] = {
      {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 0},
      {"GET / HTTP/1.1\r\nHost: a\r\nconnection: Keep-Alive, CLOSE\r\n\r\n", 0},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n", 1},
      {"GET / HTTP/1.0\r\n\r\n", 0},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1},
      {"GET / HTTP/1.0\r\nConnection:  te ,keep-alive \r\n\r\n", 1},
      {"GET / HTTP/1.0\r\nConnection: keep-alived\r\n\r\n", 0},
  };
  for (size_t i = 0; i < sizeof conn / sizeof *conn; i++)
    CHECK(parse(conn[i].req, &rq) == 0 && httpreq_keep_alive(&rq) == conn[i].keep,
          "keep-alive of %s: want %d", conn[i].req, conn[i].keep);
  printf("ok: well-formed requests parse\n");
}

static void bad_requests(void) {
  static const char *const bad[] = {
      /* the request line */
      "GET / HTTP/1.1junk\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.1 junk\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
      "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET /  HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n",
      " GET / HTTP/1.1\r\nHost: a\r\n\r\n",
      "get / HTTP/1.1\r\nHost: a\r\n\r\n",
      "GETTINGS / HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET x HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.10\r\nHost: a\r\n\r\n",
      "GET / http/1.1\r\nHost: a\r\n\r\n",
      "GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET /\xe9 HTTP/1.1\r\nHost: a\r\n\r\n",
      "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
      /* Host */
      "GET / HTTP/1.1\r\nHost: 127.0.0.1:6060junk\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: 127.0.0.1:\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: 127.0.0.1:+6060\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: 127.0.0.1:-6060\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: 127.0.0.1: 6060\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: 127.0.0.1 :6060\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: 127.0.0.1:65536\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: 127.0.0.1:99999999999\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: 127.0.0.1:60:60\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: [::1]6060\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a@127.0.0.1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost:\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost:\r\n\r\n",
      "GET / HTTP/1.1\r\n\r\n",
      /* Content-Length and Transfer-Encoding */
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5x\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 65537\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
      /* field syntax */
      "GET / HTTP/1.1\r\nHost: a\r\nX-No-Colon\r\n\r\n",
      "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n folded\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\n: empty name\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX(: b\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01z\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fz\r\n\r\n",
      /* the end of the head */
      "GET / HTTP/1.0\r\n",
      "GET / HTTP/1.0\r\nX: y\r\n",
      "GET / HTTP/1.0",
      "",
  };
  request_t rq;
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    CHECK(parse(bad[i], &rq) == -1 && errno == EINVAL, "accepted: \"%s\"", bad[i]);
  char longpath[600] = "GET /";
  memset(longpath + 5, 'p', 300);
  strcpy(longpath + 305, " HTTP/1.0\r\n\r\n");
  CHECK(parse(longpath, &rq) == -1 && errno == EINVAL, "a path over 255 bytes");
  printf("ok: %zu malformed heads refused\n", sizeof bad / sizeof *bad + 1);
}

/* Every head httpreq_parse accepts is one httpreq_head_end finds whole,
 * ending where the parser stopped. */
static void parse_agrees_with_framing(void) {
  static const char *const heads[] = {
      GOOD_HEAD, "HEAD / HTTP/1.0\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: localhost\r\nX: \t y\r\n\r\nbody\n",
  };
  for (size_t i = 0; i < sizeof heads / sizeof *heads; i++) {
    request_t rq;
    size_t n;
    const char *end = strstr(heads[i], "\r\n\r\n") + 4;
    CHECK(parse(heads[i], &rq) == 0 &&
              head_end(heads[i], strlen(heads[i]), &n) == 1 &&
              n == (size_t)(end - heads[i]), "head %zu", i);
  }
  printf("ok: the parser and the framing agree\n");
}

static void hosts(void) {
  static const struct {
    const char *host, *served;
    int ok;
  } cases[] = {
      {"127.0.0.1:6060", "127.0.0.1", 1},  {"localhost:6060", "127.0.0.1", 1},
      {"LocalHost:6060", "127.0.0.1", 1},  {"127.0.0.1", "127.0.0.1", 1},
      {"localhost", "[::1]", 1},           {"[::1]:6060", "[::1]", 1},
      {"", "127.0.0.1", 1},                {"127.0.0.1:06060", "127.0.0.1", 1},
      {"127.0.0.1:6060junk", "127.0.0.1", 0}, {"127.0.0.1:", "127.0.0.1", 0},
      {"127.0.0.1:+6060", "127.0.0.1", 0}, {"127.0.0.1: 6060", "127.0.0.1", 0},
      {"127.0.0.1:6060 ", "127.0.0.1", 0}, {"127.0.0.1:6061", "127.0.0.1", 0},
      {"127.0.0.1:71596", "127.0.0.1", 0}, /* 71596 - 65536 = 6060 */
      {"127.0.0.1:4294973356", "127.0.0.1", 0}, /* 6060 + 2^32 */
      {"evil.example:6060", "127.0.0.1", 0},
      {"127.0.0.1.evil.example:6060", "127.0.0.1", 0},
      {"[::1]:6060", "127.0.0.1", 0},      {"127.0.0.1:6060", "[::1]", 0},
      {"[::1]6060", "[::1]", 0},           {"localhost.:6060", "127.0.0.1", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    CHECK(httpreq_host_ok(cases[i].host, cases[i].served, 6060, 0) == cases[i].ok,
          "Host \"%s\" for %s:6060: want %s", cases[i].host, cases[i].served,
          cases[i].ok ? "ok" : "refused");
  CHECK(httpreq_host_ok("evil.example", "127.0.0.1", 6060, 1),
        "remote access allows any Host");
  printf("ok: Host checks\n");
}

static void addresses(void) {
  struct sockaddr_storage ss;
  socklen_t len;
  CHECK(httpreq_parse_addr("127.0.0.1:6060", &ss, &len) == 0 &&
            ss.ss_family == AF_INET && len == sizeof(struct sockaddr_in) &&
            ntohs(((struct sockaddr_in *)&ss)->sin_port) == 6060 &&
            httpreq_addr_loopback(&ss), "127.0.0.1:6060");
  CHECK(httpreq_parse_addr("[::1]:0", &ss, &len) == 0 && ss.ss_family == AF_INET6 &&
            len == sizeof(struct sockaddr_in6) && httpreq_addr_loopback(&ss),
        "[::1]:0");
  const char *loop[] = {":0", "localhost:1", "LOCALHOST:65535", "127.9.8.7:80"};
  for (size_t i = 0; i < sizeof loop / sizeof *loop; i++)
    CHECK(httpreq_parse_addr(loop[i], &ss, &len) == 0 && ss.ss_family == AF_INET &&
              httpreq_addr_loopback(&ss), "%s", loop[i]);
  const char *remote[] = {"10.0.0.1:80", "0.0.0.0:80", "[::]:80", "[2001:db8::1]:80"};
  for (size_t i = 0; i < sizeof remote / sizeof *remote; i++)
    CHECK(httpreq_parse_addr(remote[i], &ss, &len) == 0 && !httpreq_addr_loopback(&ss),
          "%s: parsed, not loopback", remote[i]);
  const char *bad[] = {"foo:bar", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
                       "127.0.0.1:+1", "127.0.0.1:-1", "127.0.0.1: 1",
                       "127.0.0.1:1 ", "127.0.0.1:80x", "::1:80", "[::1]",
                       "[::1]:", "[::1]x:80", "[localhost]:80", "[127.0.0.1]:80",
                       " 127.0.0.1:80", "127.0.0.1 :80", "example.com:80", "",
                       "1111111111111111111111111111111111111111111111111111111111111111111:80"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    CHECK(httpreq_parse_addr(bad[i], &ss, &len) == -1, "\"%s\" taken", bad[i]);
  printf("ok: addresses\n");
}

static void queries(void) {
  long v;
  CHECK(httpreq_query_int("debug=1&seconds=30", "seconds", &v) == 1 && v == 30, "found");
  CHECK(httpreq_query_int("debug=1", "seconds", &v) == 0 && v == 0, "absent");
  CHECK(httpreq_query_int("seconds=3x", "seconds", &v) == -1, "junk");
  CHECK(httpreq_query_int("seconds=", "seconds", &v) == -1, "empty");
  printf("ok: query values\n");
}

int main(void) {
  framing();
  good_requests();
  bad_requests();
  parse_agrees_with_framing();
  hosts();
  addresses();
  queries();
  printf("ok\n");
  return 0;
}
