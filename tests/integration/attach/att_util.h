/*
 * att_util — what the attach tests (tests/integration/attach/) share:
 * starting a target with pipes on its stdin and stdout, running the
 * heapprof command under a hang detector, reading a target's /proc facts
 * (threads, descriptors, handlers, maps, tracer) without heapprof's own
 * code, and looking for a stray gdb.
 *
 * Hang detectors only: every wait has a deadline of tens of seconds and a
 * missed deadline fails the test as a hang; nothing here asserts on time.
 */
#ifndef HEAPPROF_ATT_UTIL_H
#define HEAPPROF_ATT_UTIL_H

#include <stdint.h>
#include <sys/types.h>

#include "testlib.h"

#define ATT_DEADLINE_S 120

/* Fails the test loudly unless `path` is an executable file: a missing
 * prerequisite (gdb, redis-server, python3 ...) is never a silent skip. */
void att_require(const char *path, const char *what);

/* The environment the heapprof command runs with: PATH, TMPDIR, and
 * XDG_RUNTIME_DIR pointing at a 0700 directory of this test's (the attach
 * records live there, not in a directory other tests share). `path`
 * replaces PATH when not NULL. NULL-terminated, static. */
char **att_cli_env(const char *path);

typedef struct att_result {
  int status; /* exit status, -1 if killed by a signal */
  char *out, *err;
} att_result_t;

/* Runs argv with env (stdin /dev/null), output captured; a run past
 * ATT_DEADLINE_S is a hang and fails the test. */
att_result_t att_run(char *const argv[], char *const env[]);

/* att_run with stdin read from the file `in`. */
att_result_t att_run_stdin(char *const argv[], char *const env[], const char *in);

/* The heapprof command with the arguments given up to NULL, att_cli_env. */
void att_set_cli(const char *cli);
att_result_t att_cli(const char *first, ...) __attribute__((sentinel));

/* attach (rate and out as given, extra arguments up to NULL), dump and
 * detach, each required to succeed (status 0, the expected line). The
 * dump's profile path is returned (malloc'd). */
void att_attach(pid_t pid, const char *rate, const char *out, ...) __attribute__((sentinel));
char *att_dump(pid_t pid);
void att_detach(pid_t pid);

typedef struct att_proc {
  pid_t pid;
  int in;      /* its stdin, write end (-1 once closed) */
  int out;     /* its stdout, read end */
  char errpath[512]; /* its stderr, a file */
  char buf[1 << 16];
  size_t len;  /* bytes of buf not yet returned as lines */
} att_proc_t;

/* Starts argv with env; stdin and stdout are pipes, stderr a file. The
 * child dies with the test (PR_SET_PDEATHSIG). */
void att_start(att_proc_t *p, char *const argv[], char *const env[]);

/* The next line of p's stdout without its newline (static buffer), or
 * NULL at EOF; no line within ATT_DEADLINE_S fails the test. */
const char *att_line(att_proc_t *p);

/* Writes `s` to p's stdin. */
void att_say(att_proc_t *p, const char *s);

/* Waits (hang-detected) for p to end; its wait status. */
int att_wait(att_proc_t *p);

/* Everything p wrote on stderr so far (malloc'd). */
char *att_stderr(const att_proc_t *p);

/* /proc facts, read directly. */
long att_threads(pid_t pid);
uint64_t att_sigcgt(pid_t pid);     /* SigCgt of the thread group */
long att_tracer(pid_t pid);
char att_state(pid_t pid);
int att_has_heapprof(pid_t pid);    /* libheapprof in /proc/PID/maps */
/* "N -> TARGET\n" per entry of /proc/PID/fd, sorted by N (malloc'd). */
char *att_fds(pid_t pid);

/* The pids of running gdb processes whose command line names `pid` after
 * -p; 0 if none. */
int att_gdb_for(pid_t pid);

/* The first process whose command line (`n` bytes of NUL-separated
 * arguments, NUL-terminated) `match` accepts: its pid, or 0. */
int att_find_process(int (*match)(const char *cmd, size_t n, void *ctx), void *ctx);

/* Every thread of the process at nice 10 (threads it starts later, the
 * library's among them, inherit it): targets whose threads never rest
 * would otherwise starve gdb on the suite's two shared cores. */
void att_nice(pid_t pid);

/* A file of `tag` in the test's directory, open for reading and writing
 * and already unlinked (captured output). */
int att_tmp_fd(const char *tag);

/* Samples of the profile's raw text (go tool pprof -raw) that have at
 * least one location in a mapping whose file name ends with `module`. */
size_t att_samples_in_module(const tl_profile_t *p, const char *module);

/* Samples that have a frame whose function name starts with `prefix`. */
size_t att_samples_with_prefix(const tl_profile_t *p, const char *prefix);

#endif /* HEAPPROF_ATT_UTIL_H */
