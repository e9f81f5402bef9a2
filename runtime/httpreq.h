/*
 * httpreq — parsing an HTTP/1.x request head, for http.c. Pure functions
 * over a NUL-terminated buffer, so that they can be tested and fuzzed
 * without a socket.
 */
#ifndef HEAPPROF_HTTPREQ_H
#define HEAPPROF_HTTPREQ_H

#include <stddef.h>

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
  char host[256]; /* "" when absent */
} request_t;

/* Parses `head` (cut up in place) into `rq`: 0, or 400 for anything that
 * is not a well-formed GET-style HTTP/1.0 or 1.1 request head. */
int httpreq_parse(char *head, request_t *rq);

/* Whether a Host header names the server at `served_host`:`served_port`
 * (or localhost); always true when `remote_ok` or the header is absent
 * (HTTP/1.0). */
int httpreq_host_ok(const char *host, const char *served_host, int served_port,
                    int remote_ok);

/* The integer value of `key` in a query string: 1 found, 0 absent (*out =
 * 0), -1 malformed. */
int httpreq_query_int(const char *query, const char *key, long *out);

#endif /* HEAPPROF_HTTPREQ_H */
