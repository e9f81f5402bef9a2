/*
 * leaky_service — a small loopback server whose memory grows for one of
 * its tenants, and a profile that can say which.
 *
 *   leaky_service [HOST:PORT]                 serve (default 127.0.0.1:7070)
 *   leaky_service --load HOST:PORT SECONDS    send requests for SECONDS
 *
 * The protocol is one line per request, "GET <tenant> /<endpoint>/<id>\n",
 * answered with one line. The service hosts four tenants. Each answer is
 * rendered into a temporary buffer (freed: no leak) and remembered in its
 * tenant's response cache, which evicts its oldest answers once it holds
 * the tenant's configured limit. globex's limit is 0, which the cache reads
 * as "unlimited": a configuration mistake, and globex's cache grows with
 * every new key while the others stay flat. The load generator asks every
 * tenant in turn for ever new keys, so the service's memory grows
 * steadily, as a real one's would.
 *
 * Every tenant's answers are cached by the same code, so a profile of
 * stacks alone says only "cache_remember holds it", never whose it is.
 * handle_request therefore labels each request's work with its tenant and
 * endpoint (heapprof_label_push/pop): heapprof samples the allocations
 * under those labels, and `go tool pprof -tags`, `-tagfocus=tenant=…` or
 * `-tagroot=tenant` break the heap down by tenant.
 *
 * The label functions are declared weak: the service neither links
 * libheapprof nor needs it. Run alone, the functions are NULL and nothing
 * is labelled; under `heapprof run` (LD_PRELOAD) they resolve to the
 * preloaded library's.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <heapprof.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Only the two calls this program makes; NULL when heapprof is absent. */
#pragma weak heapprof_label_push
#pragma weak heapprof_label_pop

#define NOINLINE __attribute__((noinline, noclone))
#define BUCKETS 4096

typedef struct entry {
  struct entry *next;  /* in its hash chain */
  struct entry *newer; /* the eviction order: oldest first */
  char *key;
  char *response;
} entry_t;

typedef struct tenant {
  const char *name;
  unsigned limit; /* answers kept in the cache; 0 = unlimited */
  unsigned entries;
  entry_t *oldest, *newest;
  entry_t *bucket[BUCKETS];
} tenant_t;

/* The service's configuration. Names are labels, so they are words: a
 * value that looks like a number is a range to `go tool pprof -tagfocus`. */
static tenant_t tenants[] = {
    {.name = "acme", .limit = 2000},
    {.name = "globex", .limit = 0}, /* meant to be 2000 */
    {.name = "initech", .limit = 2000},
    {.name = "umbrella", .limit = 2000},
};
#define NTENANTS (sizeof tenants / sizeof tenants[0])

/* The endpoints; a label takes only these values, whatever a client
 * sends, so that the number of label sets stays small. */
static const char *const endpoints[] = {"users", "orders"};
#define NENDPOINTS (sizeof endpoints / sizeof endpoints[0])

static unsigned hash(const char *s) {
  unsigned h = 2166136261u;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h % BUCKETS;
}

/* Renders the answer for `key` into a fresh buffer. */
static NOINLINE char *render_response(const char *key) {
  char *r = malloc(2048);
  if (r != NULL)
    snprintf(r, 2048, "value-of-%s:%0*d\n", key, 1500, 0);
  return r;
}

static void cache_evict_oldest(tenant_t *t) {
  entry_t *e = t->oldest, **p = &t->bucket[hash(e->key)];
  while (*p != e)
    p = &(*p)->next;
  *p = e->next;
  t->oldest = e->newer;
  if (t->oldest == NULL)
    t->newest = NULL;
  t->entries--;
  free(e->key);
  free(e->response);
  free(e);
}

/* Remembers an answer in the tenant's cache, evicting the oldest past
 * the tenant's limit (a limit of 0 never evicts). */
static NOINLINE void cache_remember(tenant_t *t, const char *key, const char *response) {
  entry_t *e = malloc(sizeof *e);
  if (e == NULL)
    return;
  e->key = strdup(key);
  e->response = strdup(response);
  if (e->key == NULL || e->response == NULL) {
    free(e->key);
    free(e->response);
    free(e);
    return;
  }
  unsigned h = hash(key);
  e->next = t->bucket[h];
  t->bucket[h] = e;
  e->newer = NULL;
  if (t->newest != NULL)
    t->newest->newer = e;
  else
    t->oldest = e;
  t->newest = e;
  t->entries++;
  while (t->limit != 0 && t->entries > t->limit)
    cache_evict_oldest(t);
}

static const char *cache_lookup(const tenant_t *t, const char *key) {
  for (const entry_t *e = t->bucket[hash(key)]; e != NULL; e = e->next)
    if (strcmp(e->key, key) == 0)
      return e->response;
  return NULL;
}

static NOINLINE void handle_request(int fd, tenant_t *t, const char *endpoint,
                                    const char *key) {
  /* Whose work this is: until the pops, every allocation of this thread
   * is sampled under these labels, and keeps them until it is freed.
   * Pop only what was pushed (a push can fail at a limit). */
  int pushed = 0;
  if (heapprof_label_push != NULL) {
    pushed += heapprof_label_push("tenant", t->name) == 0;
    pushed += heapprof_label_push("endpoint", endpoint) == 0;
  }
  const char *hit = cache_lookup(t, key);
  if (hit != NULL) {
    send(fd, hit, strlen(hit), MSG_NOSIGNAL);
  } else {
    char *r = render_response(key);
    if (r != NULL) {
      cache_remember(t, key, r);
      send(fd, r, strlen(r), MSG_NOSIGNAL);
      free(r);
    }
  }
  while (pushed-- > 0)
    heapprof_label_pop();
}

/* "GET <tenant> /<endpoint>/<id>": a known tenant and endpoint, or an
 * error line. */
static void dispatch(int fd, char *req) {
  static const char bad[] = "ERR unknown tenant or endpoint\n";
  char *tenant = req, *key = strchr(req, ' ');
  if (key != NULL) {
    *key++ = '\0';
    for (size_t i = 0; i < NTENANTS; i++) {
      if (strcmp(tenant, tenants[i].name) != 0)
        continue;
      for (size_t j = 0; j < NENDPOINTS; j++) {
        size_t n = strlen(endpoints[j]);
        if (key[0] == '/' && strncmp(key + 1, endpoints[j], n) == 0 && key[1 + n] == '/') {
          handle_request(fd, &tenants[i], endpoints[j], key);
          return;
        }
      }
    }
  }
  send(fd, bad, sizeof bad - 1, MSG_NOSIGNAL);
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
        dispatch(fd, line + 4);
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

/* Every tenant in turn, each endpoint in turn, a new id each time. */
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
  char req[96], reply[4096];
  long n = 0;
  while (time(NULL) < end) {
    int len = snprintf(req, sizeof req, "GET %s /%s/%ld\n", tenants[n % NTENANTS].name,
                       endpoints[n / NTENANTS % NENDPOINTS], n);
    n++;
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
