/*
 * alloc_redis — host contract B1 as a real program relies on it:
 * redis-server 7.0 (Debian's, on jemalloc) keeps string data in the
 * malloc_usable_size slack of its sds buffers, so under heapprof every
 * value must come back exactly as written.
 *
 * 60,000 keys are built by APPEND in 3–8 steps of 1–300 bytes (one step in
 * eight up to 2,000), interleaved across keys, and a third of them are
 * overwritten in part by SETRANGE, inside the value or past its end (redis
 * pads with zeros). This client computes every value itself; every reply
 * length must match it, and every value read back with GET must equal it
 * byte for byte. Commands are pipelined 1,000 at a time on one loopback
 * connection. redis-server runs with --save '' --appendonly no on a port
 * picked free, and is shut down at the end (exit status 0).
 *
 * Before the fix (d04722e) 4–11 keys in 30,000 came back with bytes lost
 * at the default rate (seeds 1–5), 413 at rate 4096: 60,000 keys make a
 * run that misses the defect at the default rate unlikely (about e^-16)
 * whatever the seed.
 *
 * usage: alloc_redis LIBHEAPPROF [RATE]   (RATE: HEAPPROF_RATE, else the
 *        default; HEAPPROF_SEED is fixed)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"

#define KEYS 60000
#define BATCH 1000
#define TIMEOUT_S 30 /* per reply: a hang detector, not a speed test */

static pid_t server;

static void stop_server(void) {
  if (server > 0)
    kill(server, SIGKILL), waitpid(server, NULL, 0);
}

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* ---- a small RESP client: requests out, replies parsed in order ---- */

static int sock;
static char *out;
static size_t out_len, out_cap;
static char in[1 << 16];
static size_t in_pos, in_len;

static void put(const void *p, size_t n) {
  if (out_len + n > out_cap) {
    out_cap = (out_len + n) * 2;
    out = realloc(out, out_cap);
    CHECK(out != NULL, "out of memory");
  }
  memcpy(out + out_len, p, n);
  out_len += n;
}

static void put_arg(const void *p, size_t n) {
  char head[32];
  put(head, (size_t)snprintf(head, sizeof head, "$%zu\r\n", n));
  put(p, n);
  put("\r\n", 2);
}

/* A command of `argc` arguments, the last `len` bytes long. */
static void command(int argc, const char *const *argv, const void *last,
                    size_t len) {
  char head[32];
  put(head, (size_t)snprintf(head, sizeof head, "*%d\r\n", argc));
  for (int i = 0; i < argc - 1; i++)
    put_arg(argv[i], strlen(argv[i]));
  put_arg(last, len);
}

static void flush_out(void) {
  for (size_t done = 0; done < out_len;) {
    ssize_t w = send(sock, out + done, out_len - done, MSG_NOSIGNAL);
    CHECK(w > 0 || (w < 0 && errno == EINTR), "send: %s", strerror(errno));
    done += w > 0 ? (size_t)w : 0;
  }
  out_len = 0;
}

static int get_byte(void) {
  if (in_pos == in_len) {
    ssize_t r;
    while ((r = recv(sock, in, sizeof in, 0)) < 0 && errno == EINTR)
      ;
    CHECK(r > 0, "redis closed the connection or gave no reply in %d s (%s)",
          TIMEOUT_S, r < 0 ? strerror(errno) : "EOF");
    in_pos = 0, in_len = (size_t)r;
  }
  return (unsigned char)in[in_pos++];
}

static void get_bytes(char *p, size_t n) {
  while (n > 0) {
    if (in_pos == in_len) {
      *p++ = (char)get_byte(), n--;
      continue;
    }
    size_t k = in_len - in_pos < n ? in_len - in_pos : n;
    memcpy(p, in + in_pos, k);
    in_pos += k, p += k, n -= k;
  }
}

/* One reply line (type byte included), without its CRLF. */
static void get_line(char *line, size_t cap) {
  size_t n = 0;
  for (int c; (c = get_byte()) != '\n';)
    if (n + 1 < cap)
      line[n++] = (char)c;
  CHECK(n > 0 && line[n - 1] == '\r', "malformed reply line");
  line[n - 1] = '\0';
}

static long long get_int(void) {
  char line[256];
  get_line(line, sizeof line);
  CHECK(line[0] == ':', "expected an integer reply, got: %s", line);
  return atoll(line + 1);
}

/* A bulk reply into a malloc'd buffer; its length in *len. */
static char *get_bulk(size_t *len) {
  char line[256];
  get_line(line, sizeof line);
  CHECK(line[0] == '$' && line[1] != '-', "expected a bulk reply, got: %s", line);
  *len = (size_t)atoll(line + 1);
  char *v = malloc(*len + 2);
  CHECK(v != NULL, "out of memory");
  get_bytes(v, *len + 2);
  CHECK(v[*len] == '\r' && v[*len + 1] == '\n', "bulk reply not terminated");
  return v;
}

/* ---- the server ---- */

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
            getsockname(fd, (struct sockaddr *)&a, &len) == 0,
        "no free loopback port: %s", strerror(errno));
  close(fd);
  return ntohs(a.sin_port);
}

static void start_server(const char *lib, const char *rate, int port) {
  char port_s[16], preload[1100], out_env[1100], rate_env[64], log[1100];
  snprintf(port_s, sizeof port_s, "%d", port);
  snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lib);
  snprintf(out_env, sizeof out_env, "HEAPPROF_OUT=%s/redis.%%p.%%n.pb.gz",
           tl_tmpdir());
  snprintf(log, sizeof log, "%s/redis.log", tl_tmpdir());
  snprintf(rate_env, sizeof rate_env, "HEAPPROF_RATE=%s", rate ? rate : "");
  char *env[] = {"PATH=/usr/bin:/bin", preload, out_env, "HEAPPROF_SEED=11",
                 rate ? rate_env : NULL, NULL};
  char *args[] = {"/usr/bin/redis-server", "--port", port_s, "--bind",
                  "127.0.0.1", "--save", "", "--appendonly", "no",
                  "--daemonize", "no", "--loglevel", "warning", "--logfile",
                  log, NULL};
  CHECK(access(args[0], X_OK) == 0, "%s is missing: run scripts/setup.sh",
        args[0]);
  server = fork();
  CHECK(server >= 0, "fork: %s", strerror(errno));
  if (server == 0) {
    alarm(300); /* never outlive the test */
    if (chdir(tl_tmpdir()) != 0)
      _exit(126);
    execve(args[0], args, env);
    _exit(127);
  }
  static int registered;
  if (!registered++)
    atexit(stop_server);
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

/* Connects to the server on `port`; false if it exited first (the port
 * was taken between free_port and its bind: the caller tries another). */
static int connect_server(int port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < 400; i++, sleep_ms(50)) {
    sock = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(sock >= 0, "socket: %s", strerror(errno));
    if (connect(sock, (struct sockaddr *)&a, sizeof a) == 0) {
      struct timeval tv = {TIMEOUT_S, 0};
      setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      return 1;
    }
    close(sock);
    if (waitpid(server, NULL, WNOHANG) == server) {
      server = 0;
      return 0;
    }
  }
  CHECK(0, "redis-server did not accept connections in 20 s");
}

/* The server is the one this test claims: heapprof in it, jemalloc under. */
static void check_server(const char *lib) {
  char path[64], line[4096];
  snprintf(path, sizeof path, "/proc/%d/maps", (int)server);
  FILE *maps = fopen(path, "r");
  CHECK(maps != NULL, "%s: %s", path, strerror(errno));
  int found = 0;
  const char *base = strrchr(lib, '/') ? strrchr(lib, '/') + 1 : lib;
  char stem[256];
  snprintf(stem, sizeof stem, "%.*s", (int)strcspn(base, "."), base);
  while (fgets(line, sizeof line, maps))
    found |= strstr(line, stem) != NULL;
  fclose(maps);
  CHECK(found, "%s is not mapped in redis-server: this run proves nothing", stem);
  const char *info[] = {"INFO", "memory"};
  command(2, info, "memory", 6);
  flush_out();
  size_t len;
  char *v = get_bulk(&len);
  CHECK(strstr(v, "mem_allocator:jemalloc") != NULL,
        "redis-server does not run on jemalloc:\n%.*s", (int)len, v);
  free(v);
}

/* ---- the data ---- */

typedef struct value {
  unsigned char *v;
  size_t len, cap;
  int steps;
} value_t;

static value_t values[KEYS];
static int pending_ints; /* replies to read: APPEND/SETRANGE lengths */
static size_t expect_len[BATCH];

static void grow(value_t *v, size_t len) {
  if (len > v->cap) {
    v->cap = len * 2;
    v->v = realloc(v->v, v->cap);
    CHECK(v->v != NULL, "out of memory");
  }
  if (len > v->len)
    memset(v->v + v->len, 0, len - v->len); /* SETRANGE pads with zeros */
  if (len > v->len)
    v->len = len;
}

static void read_ints(void) {
  flush_out();
  for (int i = 0; i < pending_ints; i++) {
    long long got = get_int();
    CHECK(got == (long long)expect_len[i],
          "reply %d of a batch: length %lld, want %zu", i, got, expect_len[i]);
  }
  pending_ints = 0;
}

/* APPEND (or, with `at` >= 0, SETRANGE at `at`) of fresh bytes to key k. */
static void write_op(int k, long at, size_t n) {
  static unsigned char chunk[2048];
  for (size_t i = 0; i < n; i++)
    chunk[i] = (unsigned char)(1 + next() % 255);
  char key[32], off[32];
  snprintf(key, sizeof key, "k:%d", k);
  value_t *v = &values[k];
  if (at < 0) {
    const char *argv[] = {"APPEND", key};
    command(3, argv, chunk, n);
    at = (long)v->len;
  } else {
    snprintf(off, sizeof off, "%ld", at);
    const char *argv[] = {"SETRANGE", key, off};
    command(4, argv, chunk, n);
  }
  grow(v, (size_t)at + n);
  memcpy(v->v + at, chunk, n);
  expect_len[pending_ints++] = v->len;
  if (pending_ints == BATCH)
    read_ints();
}

static size_t chunk_size(void) {
  return next() % 8 == 0 ? 1 + next() % 2000 : 1 + next() % 300;
}

int main(int argc, char **argv) {
  CHECK(argc == 2 || argc == 3, "usage: alloc_redis LIBHEAPPROF [RATE]");
  alarm(240); /* hang detector */
  int up = 0;
  for (int attempt = 0; attempt < 3 && !up; attempt++) {
    int port = free_port();
    start_server(argv[1], argc == 3 ? argv[2] : NULL, port);
    up = connect_server(port);
  }
  CHECK(up, "redis-server exited at start three times (see %s/redis.log)",
        tl_tmpdir());
  check_server(argv[1]);

  for (int k = 0; k < KEYS; k++)
    values[k].steps = 3 + (int)(next() % 6);
  long ops = 0;
  for (int round = 0; round < 8; round++)
    for (int k = 0; k < KEYS; k++) {
      if (round < values[k].steps)
        write_op(k, -1, chunk_size()), ops++;
      if (round == 4 && k % 3 == 0) /* inside the value or past its end */
        write_op(k, (long)(next() % (values[k].len + 64)), chunk_size()), ops++;
    }
  read_ints();

  long bad = 0, bytes = 0;
  char first[512] = "";
  for (int k0 = 0; k0 < KEYS; k0 += BATCH) {
    int k1 = k0 + BATCH < KEYS ? k0 + BATCH : KEYS;
    for (int k = k0; k < k1; k++) {
      char key[32];
      const char *get[] = {"GET"};
      command(2, get, key, (size_t)snprintf(key, sizeof key, "k:%d", k));
    }
    flush_out();
    for (int k = k0; k < k1; k++) {
      size_t len, at = 0;
      char *got = get_bulk(&len);
      const value_t *v = &values[k];
      size_t same = len < v->len ? len : v->len;
      while (at < same && (unsigned char)got[at] == v->v[at])
        at++;
      bytes += (long)len;
      if (len != v->len || at < same) {
        if (bad++ == 0)
          snprintf(first, sizeof first,
                   "k:%d (%zu bytes, %zu long): byte %zu is 0x%02x, want 0x%02x",
                   k, len, v->len, at, at < len ? (unsigned char)got[at] : 0,
                   at < v->len ? v->v[at] : 0);
      }
      free(got);
    }
  }
  CHECK(bad == 0, "%ld of %d keys came back different; the first: %s", bad,
        KEYS, first);

  const char *shutdown[] = {"SHUTDOWN"};
  command(2, shutdown, "NOSAVE", 6);
  flush_out();
  int status = -1;
  for (int i = 0; i < 400 && waitpid(server, &status, WNOHANG) == 0; i++)
    sleep_ms(50);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "redis-server did not exit 0 after SHUTDOWN (status %d)", status);
  server = 0;
  printf("ok: %d keys, %ld APPEND/SETRANGE, %ld bytes read back, all equal\n",
         KEYS, ops, bytes);
  return 0;
}
