/*
 * fds_util — what the descriptor and stdio contract tests (fds_*.c) share.
 *
 * Each of those tests is one executable that plays two parts: run by CTest
 * with the library's path, it is the *driver* (never preloaded); it then
 * runs itself with "--child ..." under LD_PRELOAD in an environment it
 * builds, and that child is the *program* whose contract is checked. The
 * driver talks to the program over pipes, with a deadline on every wait, so
 * a hang fails the test instead of blocking CI.
 *
 * Checks are not fatal (FU_EXPECT): one run reports every clause it saw
 * broken, each on a line starting with "FAIL", and the process's exit
 * status is the number of failures (capped at 100).
 */
#ifndef HEAPPROF_FDS_UTIL_H
#define HEAPPROF_FDS_UTIL_H

#include <stddef.h>
#include <sys/types.h>

extern int fu_failures;

void fu_fail(const char *file, int line, const char *cond, const char *fmt,
             ...) __attribute__((format(printf, 4, 5)));

#define FU_EXPECT(cond, ...)                                                   \
  ((cond) ? 1 : (fu_fail(__FILE__, __LINE__, #cond, __VA_ARGS__), 0))

/* Prints "ok: what" or the failure count; returns the exit status. */
int fu_finish(const char *what);

/* ---- running the program ---- */

enum {
  FU_IN = 1,      /* the child's stdin is a pipe from us */
  FU_OUT = 2,     /* its stdout is a pipe to us */
  FU_ERR = 4,     /* its stderr is a pipe to us */
  FU_CLOSE0 = 8,  /* its descriptor 0 is closed (overrides FU_IN) */
};

typedef struct fu_proc {
  pid_t pid;
  int in, out, err; /* our ends, -1 when not a pipe */
} fu_proc_t;

/* Starts argv[0] with exactly `env`. Every descriptor above 2 is closed in
 * the child, so it starts with 0, 1 and 2 only. */
fu_proc_t fu_start(char *const argv[], char *const env[], int flags);

/* Waits up to timeout_s for pid: its exit status, 128 + the signal that
 * killed it, or -1 after killing it at the deadline. */
int fu_wait(pid_t pid, int timeout_s);

/* Reads one line (without its '\n') within timeout_ms: its length, or -1 at
 * EOF or the deadline. */
int fu_line(int fd, char *buf, size_t cap, int timeout_ms);

/* Reads lines from the program's stdout, echoing them to ours, until one
 * equals `want`: 0, or -1 (EOF or deadline). */
int fu_expect_line(int fd, const char *want, int timeout_ms);

/* Echoes the program's stdout lines to ours until EOF or the deadline:
 * 0 at EOF, -1 at the deadline. */
int fu_relay(int fd, int timeout_ms);

/* Reads fd to EOF on a thread of its own, so that a program that writes a
 * lot there (heapprof's stderr lines) never blocks on a full pipe while we
 * wait for something else. fu_collected() waits up to timeout_ms for EOF
 * and returns what came (malloc'd). */
typedef struct fu_collect fu_collect_t;
fu_collect_t *fu_collect(int fd);
char *fu_collected(fu_collect_t *c, int timeout_ms);

/* Reads all of fd until EOF or the deadline into a malloc'd string. */
char *fu_slurp(int fd, int timeout_ms, size_t *len);

/* Reads stderr lines until "heapprof: serving http://127.0.0.1:PORT/...":
 * the port, or -1. Lines before it are kept in `before` (may be NULL). */
int fu_port_line(int errfd, int timeout_ms, char *before, size_t cap);

/* ---- HTTP, as a client ---- */

/* Sends req raw to 127.0.0.1:port and reads the answer until the server
 * closes (or the deadline): the status code, 0 for no answer, -1 when the
 * connection is refused. *resp (if given) gets the whole answer. */
int fu_http(int port, const char *req, size_t len, char **resp, size_t *rlen,
            int timeout_ms);

/* GET path with a correct Host header; the status, *body its body. */
int fu_get(int port, const char *path, char **body, size_t *blen);

/* POST body to path; the status. */
int fu_post(int port, const char *path, const char *body, char **resp_body);

/* A loopback TCP port that was free a moment ago. */
int fu_free_port(void);

/* ---- the program's own view ---- */

/* The open descriptors of this process, sorted, without the one used to
 * list them: their count (at most cap). */
int fu_list_fds(int *fds, int cap);

/* "0 1 2" for a list. */
const char *fu_fds_text(const int *fds, int n, char *buf, size_t cap);

/* Files in dir whose names start with prefix. */
int fu_count_files(const char *dir, const char *prefix);

/* Waits until dir holds at least `n` such files: 0, or -1 at the deadline. */
int fu_wait_files(const char *dir, const char *prefix, int n, int timeout_ms);

/* /proc/self/exe, resolved. */
const char *fu_self(void);

/* An environment: PATH, LC_ALL=C, TMPDIR (ours), LD_PRELOAD=lib when lib
 * is not NULL, then the NULL-terminated extra "NAME=value" strings. */
char **fu_env(const char *lib, ...);

/* malloc() out of line, so that the compiler cannot elide an allocation
 * the test needs heapprof to see. */
void *fu_malloc(size_t n);

/* Milliseconds on the monotonic clock. */
long long fu_now_ms(void);

#endif /* HEAPPROF_FDS_UTIL_H */
