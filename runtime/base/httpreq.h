/*
 * httpreq — the pure half of the /debug/pprof server: finding the end of a
 * request head, parsing it, judging its Host header, and parsing the
 * HEAPPROF_HTTP address. Functions over buffers, with no socket, so that
 * they can be tested and fuzzed alone (and so that config.c and the
 * heapprof command judge an address exactly as the server does).
 */
#ifndef HEAPPROF_HTTPREQ_H
#define HEAPPROF_HTTPREQ_H

#include <stddef.h>
#include <sys/socket.h>

/* The largest request body accepted (the symbol service's POST). */
#define HTTPREQ_BODY_MAX 65536

typedef struct request {
  size_t content_length;
  const char *body; /* what of the body arrived with the head */
  size_t body_have;
  char method[8];
  char path[256];
  char query[256];
  int http11;
  char host[256];     /* "" when absent */
  int seen_host;      /* a Host field was there (even an empty one) */
  int seen_length;    /* a Content-Length field was there */
  int conn_close;     /* Connection: close */
  int conn_keep_alive; /* Connection: keep-alive (HTTP/1.0) */
} request_t;

/* Where the head in buf[0..len) ends: 1 with `*head_len` the bytes up to
 * and including its CRLFCRLF; 0 when more bytes are needed; -1 when no
 * more bytes can make it a valid head: a NUL byte, a bare LF (not after a
 * CR) or a bare CR (not before an LF) before that end. Bytes after the
 * head (a body) are not looked at. */
int httpreq_head_end(const char *buf, size_t len, size_t *head_len);

/* Parses `head` (NUL-terminated, cut up in place) into `rq`: 0, or -1
 * with errno EINVAL (the server answers 400) for anything but exactly "METHOD SP /target SP HTTP/1.x CRLF", then
 * "Name: value" fields each ended by CRLF, then CRLF. A Host value must be
 * a host name or address with an optional all-digit port; Content-Length
 * all digits, at most HTTPREQ_BODY_MAX; neither may repeat; HTTP/1.1 needs
 * a Host; Transfer-Encoding is refused. */
int httpreq_parse(char *head, request_t *rq);

/* Whether the connection may carry another request after this one's
 * answer: HTTP/1.1 unless "Connection: close", HTTP/1.0 only with
 * "Connection: keep-alive". */
int httpreq_keep_alive(const request_t *rq);

/* Whether a Host header names the server at `served_host`:`served_port`
 * (or localhost): a port, when given, must be all digits and equal
 * `served_port`. Always true when `remote_ok` or the header is absent
 * (HTTP/1.0). */
int httpreq_host_ok(const char *host, const char *served_host, int served_port,
                    int remote_ok);

/* The integer value of `key` in a query string: 1 found, 0 absent (*out =
 * 0), -1 malformed. */
int httpreq_query_int(const char *query, const char *key, long *out);

/* Fills `ss` and `*len` from "HOST:PORT": HOST a numeric IPv4 address,
 * "localhost" or nothing (both 127.0.0.1), or a bracketed numeric IPv6
 * address ("[::1]"); PORT 0 to 65535, digits only. 0 or -1. */
int httpreq_parse_addr(const char *addr, struct sockaddr_storage *ss,
                       socklen_t *len);

/* Whether `ss` (from httpreq_parse_addr) is a loopback address. */
int httpreq_addr_loopback(const struct sockaddr_storage *ss);

#endif /* HEAPPROF_HTTPREQ_H */
