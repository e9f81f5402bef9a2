/*
 * fds_daemon — a daemon that closes every descriptor above 2 and opens its
 * own keeps them: heapprof never reads, writes, closes, replaces or
 * accepts on a descriptor of the program's, and still writes a profile on
 * SIGUSR2 and serves HTTP afterwards (behaviour B2, B3).
 *
 * usage: fds_daemon LIBHEAPPROF close|range
 *   close: the program closes 3..1023 one by one, as daemons do;
 *   range: it calls close_range(3, ~0U, 0).
 *
 * The program (this executable again, preloaded with HEAPPROF_RATE=1,
 * HEAPPROF_HTTP=127.0.0.1:0 and the default SIGUSR2) then opens two
 * regular files with known contents and offsets, a pipe holding known
 * bytes and a listening TCP socket on loopback, and makes heapprof act:
 * allocations from 512 new call stacks, raise(SIGUSR2), and HTTP requests
 * from the driver to heapprof's server (whose port the driver read from
 * the "serving http://..." line before the close). Afterwards: the files'
 * contents, sizes, offsets and identities are unchanged, the pipe holds
 * exactly its bytes, every connection to the program's own listening
 * socket reaches the program (and nobody else answers it), a profile file
 * appeared for the signal, and heapprof's server still answers.
 *
 * The old code failed each of these: libunwind's cached validation pipe
 * was the program's files, the wake pipe's write end was the program's
 * pipe, and heapprof's HTTP thread accepted on the program's socket.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"
#include "fds_util.h"

#define TEXT_A "program file A: the daemon's configuration, 0123456789\n"
#define TEXT_B "program file B: the daemon's journal, which must not grow\n"
#define OFF_A 17
#define OFF_B 29
#define PIPE_BYTES "bytes the program put in its own pipe"
#define ROUNDS 10

/* ---- the program ---- */

/* Sixteen leaves times 32 depths: 512 call stacks heapprof has not seen. */
#define LEAF(i)                                                                \
  __attribute__((noinline, noipa)) static void *leaf##i(size_t n) {            \
    void *p = malloc(n + i);                                                   \
    __asm__ volatile("" : : "r"(p) : "memory");                                \
    return p;                                                                  \
  }
LEAF(0) LEAF(1) LEAF(2) LEAF(3) LEAF(4) LEAF(5) LEAF(6) LEAF(7)
LEAF(8) LEAF(9) LEAF(10) LEAF(11) LEAF(12) LEAF(13) LEAF(14) LEAF(15)
static void *(*const leaves[16])(size_t) = {
    leaf0, leaf1, leaf2,  leaf3,  leaf4,  leaf5,  leaf6,  leaf7,
    leaf8, leaf9, leaf10, leaf11, leaf12, leaf13, leaf14, leaf15};

__attribute__((noinline, noipa)) static void *descend(int depth, int leaf,
                                                      size_t n) {
  void *p = depth == 0 ? leaves[leaf](n) : descend(depth - 1, leaf, n);
  __asm__ volatile("" : : "r"(p) : "memory"); /* no tail call: a real frame */
  return p;
}

static void new_call_sites(void) {
  for (int depth = 0; depth < 32; depth++)
    for (int leaf = 0; leaf < 16; leaf++)
      free(descend(depth, leaf, 64 + (size_t)depth * 8));
}

typedef struct owned {
  int fd;
  const char *what;
  dev_t dev;
  ino_t ino;
} owned_t;

static owned_t own(int fd, const char *what) {
  struct stat st;
  FU_EXPECT(fd >= 0 && fstat(fd, &st) == 0, "cannot open %s: %s", what,
            strerror(errno));
  return (owned_t){fd, what, st.st_dev, st.st_ino};
}

static int make_file(const char *dir, const char *name, const char *text,
                     off_t off) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600); /* inheritable */
  FU_EXPECT(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text) &&
                lseek(fd, off, SEEK_SET) == off,
            "cannot make %s: %s", path, strerror(errno));
  return fd;
}

static int make_listener(struct sockaddr_in *addr) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  addr->sin_family = AF_INET;
  addr->sin_port = 0;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof *addr;
  FU_EXPECT(fd >= 0 && bind(fd, (struct sockaddr *)addr, sizeof *addr) == 0 &&
                listen(fd, 16) == 0 &&
                getsockname(fd, (struct sockaddr *)addr, &len) == 0,
            "cannot listen: %s", strerror(errno));
  return fd; /* blocking, as most servers' listening sockets are */
}

/* Accepts one connection on lst within 3 s, answers "PROGRAM\n": 1 if the
 * program got it. */
static int serve_one(int lst) {
  long long deadline = fu_now_ms() + 3000;
  while (fu_now_ms() < deadline) {
    struct pollfd p = {lst, POLLIN, 0};
    if (poll(&p, 1, (int)(deadline - fu_now_ms())) <= 0)
      continue;
    /* Non-blocking only for this call, so that a connection someone else
     * took between our poll and our accept cannot hang the program. */
    fcntl(lst, F_SETFL, O_NONBLOCK);
    int s = accept(lst, NULL, NULL);
    fcntl(lst, F_SETFL, 0);
    if (s < 0)
      continue; /* someone else took it: wait until the deadline */
    char req[2048];
    struct pollfd q = {s, POLLIN, 0};
    if (poll(&q, 1, 3000) == 1) {
      ssize_t ignored = read(s, req, sizeof req);
      (void)ignored;
    }
    ssize_t ignored = write(s, "PROGRAM\n", 8);
    (void)ignored;
    close(s);
    return 1;
  }
  return 0;
}

/* The program's clients talk to the program's own server. */
static void own_clients(int lst, const struct sockaddr_in *addr) {
  int port = ntohs(addr->sin_port), lost = 0;
  char first[160] = "";
  for (int i = 0; i < ROUNDS; i++) {
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (!FU_EXPECT(connect(c, (const struct sockaddr *)addr, sizeof *addr) == 0,
                   "connect to the program's own socket: %s", strerror(errno)))
      return;
    char req[256];
    int n = snprintf(req, sizeof req,
                     "GET /debug/pprof/heap HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
                     port);
    ssize_t ignored = write(c, req, (size_t)n);
    (void)ignored;
    int mine = serve_one(lst);
    char *answer = fu_slurp(c, 6000, NULL);
    close(c);
    if (!mine || strcmp(answer, "PROGRAM\n") != 0) {
      if (lost++ == 0)
        snprintf(first, sizeof first, "%.*s", (int)strcspn(answer, "\r\n"),
                 answer);
    }
    free(answer);
  }
  FU_EXPECT(lost == 0,
            "%d of %d connections to the program's listening socket did not "
            "reach the program; the first client was answered \"%s\"",
            lost, ROUNDS, first);
}

static void check_file(const owned_t *o, const char *text, off_t off) {
  struct stat st;
  char buf[512] = "";
  ssize_t got = fstat(o->fd, &st) == 0 ? pread(o->fd, buf, sizeof buf - 1, 0) : -1;
  off_t at = lseek(o->fd, 0, SEEK_CUR);
  if (got >= 0)
    buf[got] = '\0';
  FU_EXPECT(got == (ssize_t)strlen(text) && strcmp(buf, text) == 0,
            "%s (fd %d) holds %zd bytes \"%.80s\", not its own text", o->what,
            o->fd, got, buf);
  FU_EXPECT(at == off, "%s (fd %d) is at offset %lld, not %lld", o->what, o->fd,
            (long long)at, (long long)off);
}

static void check_same(const owned_t *o) {
  struct stat st;
  int ok = fstat(o->fd, &st) == 0;
  FU_EXPECT(ok && st.st_dev == o->dev && st.st_ino == o->ino,
            "fd %d is no longer the program's %s (%s)", o->fd, o->what,
            ok ? "another file" : strerror(errno));
}

static void check_pipe(int rd) {
  fcntl(rd, F_SETFL, O_NONBLOCK);
  char buf[256] = "";
  ssize_t got = read(rd, buf, sizeof buf - 1);
  if (got >= 0)
    buf[got] = '\0';
  FU_EXPECT(got == (ssize_t)strlen(PIPE_BYTES) && strcmp(buf, PIPE_BYTES) == 0,
            "the program's pipe held %zd bytes \"%s\", not \"%s\"", got, buf,
            PIPE_BYTES);
  FU_EXPECT(got <= 0 || read(rd, buf, 1) < 0, "more bytes in the pipe");
}

static int program(const char *mode, const char *dir) {
  alarm(150); /* a hang fails */
  if (strcmp(mode, "range") == 0)
    FU_EXPECT(close_range(3, ~0U, 0) == 0, "close_range: %s", strerror(errno));
  else
    for (int fd = 3; fd < 1024; fd++)
      close(fd);

  owned_t a = own(make_file(dir, "prog-a.txt", TEXT_A, OFF_A), "file A");
  owned_t b = own(make_file(dir, "prog-b.txt", TEXT_B, OFF_B), "file B");
  int p[2];
  FU_EXPECT(pipe(p) == 0 && write(p[1], PIPE_BYTES, strlen(PIPE_BYTES)) ==
                                (ssize_t)strlen(PIPE_BYTES),
            "pipe: %s", strerror(errno));
  owned_t pr = own(p[0], "pipe (read end)"), pw = own(p[1], "pipe (write end)");
  struct sockaddr_in addr;
  owned_t l = own(make_listener(&addr), "listening socket");
  printf("program: file A %d, file B %d, pipe %d/%d, listening socket %d\n",
         a.fd, b.fd, pr.fd, pw.fd, l.fd);

  new_call_sites();
  char prefix[64];
  snprintf(prefix, sizeof prefix, "d.%d.", (int)getpid());
  int before = fu_count_files(dir, prefix);
  raise(SIGUSR2);
  FU_EXPECT(fu_wait_files(dir, prefix, before + 1, 30000) == 0,
            "no profile in %s 30 s after SIGUSR2", dir);
  new_call_sites();

  printf("@http\n"); /* the driver asks heapprof's server now */
  fflush(stdout);
  char line[64];
  FU_EXPECT(fu_line(0, line, sizeof line, 90000) >= 0, "no word from the driver");

  own_clients(l.fd, &addr);
  check_file(&a, TEXT_A, OFF_A);
  check_file(&b, TEXT_B, OFF_B);
  check_pipe(pr.fd);
  const owned_t *all[] = {&a, &b, &pr, &pw, &l};
  for (size_t i = 0; i < 5; i++)
    check_same(all[i]);
  int failed = fu_finish("the program's descriptors");
  printf("@done\n");
  fflush(stdout);
  free(fu_slurp(0, 90000, NULL)); /* until the driver is finished with us */
  return failed;
}

/* ---- the driver ---- */

static int gz_ok(int status, const char *body, size_t len) {
  return status == 200 && len > 2 && (unsigned char)body[0] == 0x1f &&
         (unsigned char)body[1] == 0x8b;
}

static void ask_heapprof(int port, const char *when) {
  for (int i = 0; i < 3; i++) {
    char *body = NULL;
    size_t len = 0;
    int status = fu_get(port, "/debug/pprof/heap", &body, &len);
    FU_EXPECT(gz_ok(status, body, len),
              "%s: GET /debug/pprof/heap on heapprof's port %d: status %d "
              "(-1: refused, 0: no answer), %zu bytes",
              when, port, status, len);
    free(body);
  }
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--child") == 0)
    return program(argv[2], argv[3]);
  CHECK(argc == 3, "usage: fds_daemon LIBHEAPPROF close|range");
  const char *dir = tl_tmpdir();
  char out[1024];
  snprintf(out, sizeof out, "HEAPPROF_OUT=%s/d.%%p.%%n.pb.gz", dir);
  char **env = fu_env(argv[1], "HEAPPROF_RATE=1", "HEAPPROF_HTTP=127.0.0.1:0",
                      out, (char *)NULL);
  char *args[] = {(char *)fu_self(), "--child", argv[2], (char *)dir, NULL};
  fu_proc_t p = fu_start(args, env, FU_IN | FU_OUT | FU_ERR);

  char early[4096];
  int port = fu_port_line(p.err, 30000, early, sizeof early);
  FU_EXPECT(port > 0, "no \"serving http://\" line on the program's stderr:\n%s",
            early);
  fu_collect_t *errs = fu_collect(p.err);
  FU_EXPECT(fu_expect_line(p.out, "@http", 90000) == 0,
            "the program did not get as far as the HTTP step");
  if (port > 0)
    ask_heapprof(port, "after the program's close and opens");
  ssize_t ignored = write(p.in, "go\n", 3);
  (void)ignored;
  FU_EXPECT(fu_expect_line(p.out, "@done", 90000) == 0,
            "the program did not finish its checks");
  if (port > 0)
    ask_heapprof(port, "at the end");
  close(p.in);
  int status = fu_wait(p.pid, 90);
  char *rest = fu_slurp(p.out, 1000, NULL), *err = fu_collected(errs, 5000);
  printf("%s", rest);
  FU_EXPECT(status == 0, "the program's exit status %d (its checks above); "
                         "its stderr:\n%s", status, err);

  /* The signal's profile is a real one. */
  char path[1100];
  snprintf(path, sizeof path, "%s/d.%d.1.pb.gz", dir, (int)p.pid);
  if (FU_EXPECT(access(path, R_OK) == 0, "no %s", path)) {
    tl_profile_t prof;
    tl_read_profile(path, &prof);
    FU_EXPECT(prof.nsamples > 0, "%s has no samples", path);
    tl_free_profile(&prof);
  }
  return fu_finish(argv[2][0] == 'r' ? "daemon-style close_range(3, ~0U)"
                                     : "daemon-style close of 3..1023");
}
