/*
 * proc_common — what the process-contract tests (threads, cancellation,
 * fork, exec, signals, lifetime, names) share: a hang detector that says
 * where it hung, running a child program under a chosen environment with
 * a deadline, and the heapprof API found at run time.
 *
 * A hang is a failure here, never a blocked CI job: every wait has a
 * deadline of tens of seconds, which only a hang reaches.
 */
#ifndef HEAPPROF_PROC_COMMON_H
#define HEAPPROF_PROC_COMMON_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

/* Arms alarm(seconds): if it fires, the process prints "HANG: <stage>"
 * on stderr and _exits with status 2. */
void pc_deadline(unsigned seconds);

/* Names what the process is waiting for now (shown by the deadline). */
void pc_stage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

typedef struct pc_result {
  int exited;    /* WIFEXITED */
  int status;    /* the exit status, or the signal that ended it */
  int hung;      /* killed at the deadline */
  char *out;     /* stdout, malloc'd */
  char *err;     /* stderr, malloc'd */
} pc_result_t;

/* Runs argv with exactly `env` (NULL-terminated), in directory `cwd` (NULL:
 * ours), with signal mask `mask` (NULL: ours) and SIGUSR2 ignored when
 * `ignore_usr2`; kills its process group after `deadline_s` seconds. */
void pc_run(char *const argv[], char *const env[], const char *cwd,
            const sigset_t *mask, int ignore_usr2, unsigned deadline_s,
            pc_result_t *r);
void pc_result_free(pc_result_t *r);

/* Waits for `pid` for at most `deadline_s` seconds; 0 and *status, or -1
 * when the deadline passed (the process is then SIGKILLed and reaped). */
int pc_wait(pid_t pid, unsigned deadline_s, int *status);

/* A child environment: PATH, TMPDIR, LD_PRELOAD=lib (if lib) and vars. */
char **pc_env(const char *lib, char *const vars[], size_t nvars);

/* "exit 0", "signal 9 (Killed)", "hung (killed after the deadline)". */
const char *pc_describe(const pc_result_t *r);

/* The heapprof API by name; NULL when heapprof is not loaded. */
void *pc_api(const char *name);

/* The number of lines in `s` (a last line without '\n' counts). */
int pc_lines(const char *s);

/* Waits up to `deadline_s` seconds for `path` to exist; 0 when it does. */
int pc_wait_file(const char *path, unsigned deadline_s);

/* 1 when thread `tid` of this process sleeps in write(fd, ...): a write
 * to a full pipe stays there until someone reads (/proc's syscall and
 * stat files, looked at twice, 2 ms apart). */
int pc_blocked_in_write(pid_t tid, int fd);

/* Soft checks: print every failure, fail at the end (pc_finish). */
void pc_expect(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int pc_finish(const char *what); /* exit status: 0 if every expect held */

#endif /* HEAPPROF_PROC_COMMON_H */
