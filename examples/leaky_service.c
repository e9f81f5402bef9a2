/*
 * leaky_service — a small loopback server with a memory leak to find.
 *
 *   leaky_service [HOST:PORT]                 serve (default 127.0.0.1:7070)
 *   leaky_service --load HOST:PORT SECONDS    send requests for SECONDS
 *
 * The protocol is one line per request, "GET <key>\n", answered with one
 * line. Each answer is rendered into a temporary buffer (freed: no leak)
 * and remembered in a response cache that nothing ever evicts (the leak:
 * it grows with every new key). The load generator asks for ever new keys,
 * so the service's memory grows steadily, as a real one's would.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noclone))

typedef struct entry {
  struct entry *next;
  char *key;
  char *response;
} entry_t;

static entry_t *cache[4096]; /* the response cache: it only ever grows */

static unsigned hash(const char *s) {
  unsigned h = 2166136261u;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h % 4096;
}

/* Renders the answer for `key` into a fresh buffer. */
static NOINLINE char *render_response(const char *key) {
  char *r = malloc(2048);
  if (r != NULL)
    snprintf(r, 2048, "value-of-%s:%0*d\n", key, 1500, 0);
  return r;
}

/* Remembers an answer forever: the leak. */
static NOINLINE void cache_remember(const char *key, const char *response) {
  entry_t *e = malloc(sizeof *e);
  if (e == NULL)
    return;
  e->key = strdup(key);
  e->response = strdup(response);
  unsigned h = hash(key);
  e->next = cache[h];
  cache[h] = e;
}

static const char *cache_lookup(const char *key) {
  for (entry_t *e = cache[hash(key)]; e != NULL; e = e->next)
    if (strcmp(e->key, key) == 0)
      return e->response;
  return NULL;
}

static NOINLINE void handle_request(int fd, const char *key) {
  const char *hit = cache_lookup(key);
  if (hit != NULL) {
    send(fd, hit, strlen(hit), MSG_NOSIGNAL);
    return;
  }
  char *r = render_response(key);
  if (r == NULL)
    return;
  cache_remember(key, r);
  send(fd, r, strlen(r), MSG_NOSIGNAL);
  free(r);
}

static void serve_client(int fd) {
  char line[512];
  size_t have = 0;
  for (;;) {
    ssize_t n = recv(fd, line + have, sizeof line - 1 - have, 0);
    if (n <= 0)
      return;
    have += (size_t)n;
    line[have] = '\0';
    char *nl;
    while ((nl = strchr(line, '\n')) != NULL) {
      *nl = '\0';
      if (strncmp(line, "GET ", 4) == 0)
        handle_request(fd, line + 4);
      have -= (size_t)(nl + 1 - line);
      memmove(line, nl + 1, have + 1);
    }
    if (have == sizeof line - 1)
      return; /* an overlong line: drop the client */
  }
}

static int parse_addr(const char *s, struct sockaddr_in *a) {
  char host[64];
  int port;
  memset(a, 0, sizeof *a);
  if (sscanf(s, "%63[^:]:%d", host, &port) != 2 || port < 1 || port > 65535)
    return -1;
  a->sin_family = AF_INET;
  a->sin_port = htons((uint16_t)port);
  return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static int serve(const char *addr) {
  struct sockaddr_in a;
  if (parse_addr(addr, &a) != 0 || (ntohl(a.sin_addr.s_addr) >> 24) != 127) {
    fprintf(stderr, "leaky_service: %s: expected a loopback HOST:PORT\n", addr);
    return 2;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 8) != 0) {
    perror("leaky_service: bind");
    return 1;
  }
  fprintf(stderr, "leaky_service: serving on %s\n", addr);
  for (;;) {
    int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (c >= 0) {
      serve_client(c);
      close(c);
    }
  }
}

static int load(const char *addr, int seconds) {
  struct sockaddr_in a;
  if (parse_addr(addr, &a) != 0 || seconds < 1 || seconds > 3600) {
    fprintf(stderr, "leaky_service: --load HOST:PORT SECONDS (1-3600)\n");
    return 2;
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    perror("leaky_service: connect");
    return 1;
  }
  time_t end = time(NULL) + seconds;
  char req[64], reply[4096];
  long n = 0;
  while (time(NULL) < end) {
    int len = snprintf(req, sizeof req, "GET user-%ld\n", n++);
    if (send(fd, req, (size_t)len, MSG_NOSIGNAL) != len ||
        recv(fd, reply, sizeof reply, 0) <= 0)
      break;
    struct timespec pause = {0, 200000}; /* ~5,000 requests a second */
    nanosleep(&pause, NULL);
  }
  printf("leaky_service: sent %ld requests\n", n);
  close(fd);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--load") == 0)
    return load(argv[2], atoi(argv[3]));
  if (argc <= 2)
    return serve(argc == 2 ? argv[1] : "127.0.0.1:7070");
  fprintf(stderr, "usage: leaky_service [HOST:PORT] | --load HOST:PORT SECONDS\n");
  return 2;
}
