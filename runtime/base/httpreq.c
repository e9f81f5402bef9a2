/*
 * httpreq — the request-head parser behind /debug/pprof.
 *
 * Strict by design: one request line "METHOD SP /target SP HTTP/1.x", then
 * "Name: value" lines, each ended by CRLF, then CRLF. Anything else is a
 * 400, never a guess: a lenient parser is where request smuggling and
 * crashes live. The framing check (httpreq_head_end) and the parser agree:
 * a head the parser accepts is one httpreq_head_end finds complete, and a
 * byte that makes httpreq_head_end give up (NUL, bare LF, bare CR) is one
 * the parser would refuse, so the server can answer 400 at once.
 * Only Host and Content-Length are kept, and neither may repeat. Nothing
 * here depends on the program's locale: character classes are ASCII.
 */
#define _GNU_SOURCE
#include "httpreq.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define DIGITS "0123456789"
#define HEXDIGITS DIGITS "abcdefABCDEF"
#define ALNUM DIGITS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
/* RFC 9110 tchar: what a method or a field name is made of. */
#define TOKEN ALNUM "!#$%&'*+-.^_`|~"
/* A host name in a Host header or an address: letters, digits, "-._~". */
#define HOSTNAME ALNUM "-._~"

/* ---- small ASCII helpers ---- */

static int lower(int ch) {
  return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

/* strcasecmp(a, b) == 0 over ASCII only, whatever the locale. */
static int caseeq(const char *a, const char *b) {
  for (; *a != '\0' && lower((unsigned char)*a) == lower((unsigned char)*b); a++, b++)
    ;
  return *a == *b;
}

/* Bytes of `s` that are visible ASCII (0x21-0x7e). */
static size_t visible_span(const char *s) {
  size_t n = 0;
  while ((unsigned char)s[n] > 0x20 && (unsigned char)s[n] < 0x7f)
    n++;
  return n;
}

/* A port: 1-5 digits and nothing after them, at most 65535. 0 or -1. */
static int parse_port(const char *s, int *port) {
  size_t n = strspn(s, DIGITS);
  if (n == 0 || n > 5 || s[n] != '\0')
    return -1;
  long v = strtol(s, NULL, 10);
  if (v > 65535)
    return -1;
  *port = (int)v;
  return 0;
}

/* ---- framing ---- */

int httpreq_head_end(const char *buf, size_t len, size_t *head_len) {
  for (size_t i = 0; i < len; i++) {
    int after_cr = i > 0 && buf[i - 1] == '\r';
    /* An LF must follow a CR, and a CR must be followed by an LF. */
    if (buf[i] == '\0' || (buf[i] == '\n') != after_cr)
      return -1;
    /* buf[i - 2] is an LF already checked to follow its CR. */
    if (buf[i] == '\n' && i >= 3 && buf[i - 2] == '\n') {
      *head_len = i + 1;
      return 1;
    }
  }
  return 0;
}

/* ---- the request line ---- */

/* Cuts the line at `*at` off at its CRLF: the line, NUL-terminated, with
 * `*at` moved past the CRLF; NULL when there is no CRLF. */
static char *next_line(char **at) {
  char *line = *at, *end = strstr(line, "\r\n");
  if (end == NULL)
    return NULL;
  *end = '\0';
  *at = end + 2;
  return line;
}

/* What the parser answers to a malformed head. */
static int invalid(void) {
  errno = EINVAL;
  return -1;
}

static int split_target(char *target, request_t *rq) {
  char *q = strchr(target, '?');
  if (q != NULL)
    *q++ = '\0';
  if (strlen(target) >= sizeof rq->path ||
      (q != NULL && strlen(q) >= sizeof rq->query))
    return invalid();
  strcpy(rq->path, target);
  strcpy(rq->query, q != NULL ? q : "");
  return 0;
}

/* "METHOD SP /target SP HTTP/1.x", single spaces, nothing after. */
static int parse_request_line(char *line, request_t *rq) {
  size_t m = strspn(line, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
  if (m == 0 || m >= sizeof rq->method || line[m] != ' ')
    return invalid();
  memcpy(rq->method, line, m);
  char *target = line + m + 1;
  size_t t = visible_span(target);
  if (target[0] != '/' || target[t] != ' ')
    return invalid();
  target[t] = '\0';
  const char *version = target + t + 1;
  if (strcmp(version, "HTTP/1.1") == 0)
    rq->http11 = 1;
  else if (strcmp(version, "HTTP/1.0") != 0)
    return invalid();
  return split_target(target, rq);
}

/* ---- fields ---- */

/* Splits a Host value into its name (a bracketed IPv6 literal, or letters,
 * digits and "-._~") and its port (-1 when there is none). 0 or -1. */
static int host_split(const char *host, char *name, size_t cap, int *port) {
  size_t n;
  if (host[0] == '[') {
    n = 1 + strspn(host + 1, HEXDIGITS ":.");
    if (host[n++] != ']')
      return -1;
  } else {
    n = strspn(host, HOSTNAME);
  }
  if (n == 0 || n >= cap || (host[n] != '\0' && host[n] != ':'))
    return -1;
  memcpy(name, host, n);
  name[n] = '\0';
  *port = -1;
  return host[n] == ':' ? parse_port(host + n + 1, port) : 0;
}

/* "Name: value": a token, a colon, then visible characters, blanks and
 * bytes above 0x7f (no other control byte). `*value` is the value without
 * its surrounding blanks. 0, or -1 with errno EINVAL. */
static int split_field(char *line, char **value) {
  size_t n = strspn(line, TOKEN);
  if (n == 0 || line[n] != ':')
    return invalid(); /* also a folded line, which starts with a blank */
  line[n] = '\0';
  char *v = line + n + 1;
  for (const char *p = v; *p != '\0'; p++)
    if ((unsigned char)*p < 0x20 ? *p != '\t' : *p == 0x7f)
      return invalid();
  v += strspn(v, " \t");
  size_t len = strlen(v);
  while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
    v[--len] = '\0';
  *value = v;
  return 0;
}

static int take_length(const char *v, request_t *rq) {
  size_t n = strspn(v, DIGITS);
  if (rq->seen_length || n == 0 || n > 6 || v[n] != '\0')
    return invalid();
  unsigned long len = strtoul(v, NULL, 10);
  if (len > HTTPREQ_BODY_MAX)
    return invalid();
  rq->content_length = len;
  rq->seen_length = 1;
  return 0;
}

static int take_host(const char *v, request_t *rq) {
  char name[sizeof rq->host];
  int port;
  if (rq->seen_host || strlen(v) >= sizeof rq->host ||
      (*v != '\0' && host_split(v, name, sizeof name, &port) != 0))
    return invalid();
  strcpy(rq->host, v);
  rq->seen_host = 1;
  return 0;
}

/* Connection: a comma-separated list of options; only "close" and
 * "keep-alive" mean something here. */
static void take_connection(char *v, request_t *rq) {
  for (char *tok = v, *end; *tok != '\0'; tok = end) {
    tok += strspn(tok, " \t,");
    end = tok + strcspn(tok, ",");
    char *last = end;
    while (last > tok && (last[-1] == ' ' || last[-1] == '\t'))
      last--;
    char saved = *last;
    *last = '\0';
    if (caseeq(tok, "close"))
      rq->conn_close = 1;
    else if (caseeq(tok, "keep-alive"))
      rq->conn_keep_alive = 1;
    *last = saved;
  }
}

static int take_field(char *line, request_t *rq) {
  char *value;
  if (split_field(line, &value) != 0)
    return invalid();
  if (caseeq(line, "Content-Length"))
    return take_length(value, rq);
  if (caseeq(line, "Host"))
    return take_host(value, rq);
  if (caseeq(line, "Transfer-Encoding"))
    return invalid(); /* bodies come with a Content-Length or not at all */
  if (caseeq(line, "Connection"))
    take_connection(value, rq);
  return 0;
}

int httpreq_parse(char *head, request_t *rq) {
  memset(rq, 0, sizeof *rq);
  char *at = head, *line = next_line(&at);
  if (line == NULL || parse_request_line(line, rq) != 0)
    return invalid();
  while ((line = next_line(&at)) != NULL && *line != '\0')
    if (take_field(line, rq) != 0)
      return invalid();
  if (line == NULL)
    return invalid(); /* no blank line: the head never ended */
  return rq->http11 && rq->host[0] == '\0' ? invalid() : 0;
}

/* ---- judging ---- */

int httpreq_keep_alive(const request_t *rq) {
  return !rq->conn_close && (rq->http11 || rq->conn_keep_alive);
}

int httpreq_host_ok(const char *host, const char *served_host, int served_port,
                    int remote_ok) {
  char name[256];
  int port;
  if (remote_ok || host[0] == '\0')
    return 1;
  if (host_split(host, name, sizeof name, &port) != 0 ||
      (port >= 0 && port != served_port))
    return 0;
  return caseeq(name, "localhost") || caseeq(name, served_host);
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

/* ---- the server's address ---- */

int httpreq_parse_addr(const char *addr, struct sockaddr_storage *ss,
                       socklen_t *len) {
  int bracketed = addr[0] == '[', port;
  const char *colon = bracketed ? strstr(addr, "]:") : strrchr(addr, ':');
  char host[64];
  memset(ss, 0, sizeof *ss);
  if (colon == NULL || colon - addr - bracketed >= (long)sizeof host ||
      parse_port(colon + 1 + bracketed, &port) != 0)
    return -1;
  memcpy(host, addr + bracketed, (size_t)(colon - addr - bracketed));
  host[colon - addr - bracketed] = '\0';
  if (!bracketed && (host[0] == '\0' || caseeq(host, "localhost")))
    strcpy(host, "127.0.0.1");
  struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  if (!bracketed && inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)port);
    *len = sizeof *in4;
  } else if (bracketed && inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    *len = sizeof *in6;
  } else {
    return -1;
  }
  return 0;
}

int httpreq_addr_loopback(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET)
    return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
  return ss->ss_family == AF_INET6 &&
         IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}
