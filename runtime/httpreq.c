/*
 * httpreq — the request-head parser behind /debug/pprof.
 *
 * Strict by design: one request line "METHOD SP /target SP HTTP/1.x", then
 * "Name: value" lines, each ended by CRLF. Anything else is a 400, never a
 * guess: a lenient parser is where request smuggling and crashes live.
 * Only Host and Content-Length are kept; a second Host is refused.
 */
#define _GNU_SOURCE
#include "httpreq.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


/* Parses the request line and the Host header. 0 or 400. */
int httpreq_parse(char *head, request_t *rq) {
  memset(rq, 0, sizeof *rq);
  char *eol = strstr(head, "\r\n");
  if (eol == NULL)
    return 400;
  *eol = '\0';
  char target[512], version[16];
  if (sscanf(head, "%7[A-Z] %511[^ ] %15s", rq->method, target, version) != 3 ||
      target[0] != '/')
    return 400;
  if (strcmp(version, "HTTP/1.1") == 0)
    rq->http11 = 1;
  else if (strcmp(version, "HTTP/1.0") != 0)
    return 400;
  char *q = strchr(target, '?');
  if (q != NULL)
    *q++ = '\0';
  if (strlen(target) >= sizeof rq->path || (q && strlen(q) >= sizeof rq->query))
    return 400;
  strcpy(rq->path, target);
  strcpy(rq->query, q ? q : "");
  for (char *line = eol + 2; *line != '\0' && strncmp(line, "\r\n", 2) != 0;) {
    char *end = strstr(line, "\r\n");
    if (end == NULL)
      return 400;
    *end = '\0';
    if (strncasecmp(line, "Content-Length:", 15) == 0) {
      char *e;
      unsigned long long v = strtoull(line + 15, &e, 10);
      if (*e != '\0' || v > HTTPREQ_BODY_MAX)
        return 400;
      rq->content_length = (size_t)v;
    } else if (strncasecmp(line, "Host:", 5) == 0) {
      char *v = line + 5;
      while (*v == ' ' || *v == '\t')
        v++;
      if (rq->host[0] != '\0' || strlen(v) >= sizeof rq->host)
        return 400; /* two Host headers, or an absurd one */
      strcpy(rq->host, v);
      for (size_t k = strlen(rq->host); k > 0 && rq->host[k - 1] == ' ';)
        rq->host[--k] = '\0';
    } else if (strchr(line, ':') == NULL) {
      return 400;
    }
    line = end + 2;
  }
  return rq->http11 && rq->host[0] == '\0' ? 400 : 0;
}

int httpreq_host_ok(const char *host, const char *served_host, int served_port,
                    int remote_ok) {
  if (remote_ok || host[0] == '\0')
    return 1;
  char name[256];
  snprintf(name, sizeof name, "%s", host);
  char *colon = name[0] == '[' ? strstr(name, "]:") : strrchr(name, ':');
  if (colon != NULL) {
    if (name[0] == '[')
      colon++;
    if (atoi(colon + 1) != served_port)
      return 0;
    *colon = '\0';
  }
  return strcasecmp(name, "localhost") == 0 || strcmp(name, served_host) == 0;
}

int httpreq_query_int(const char *query, const char *key, long *out) {
  size_t klen = strlen(key);
  *out = 0;
  for (const char *p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
    if (strncmp(p, key, klen) != 0 || p[klen] != '=')
      continue;
    char *end;
    errno = 0;
    *out = strtol(p + klen + 1, &end, 10);
    if (errno != 0 || end == p + klen + 1 || (*end != '&' && *end != '\0'))
      return -1;
    return 1;
  }
  return 0;
}

