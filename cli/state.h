/*
 * state — what `heapprof attach` records about an attached process so that
 * `heapprof dump PID` finds its profiles (the process's environment, which
 * dump reads otherwise, does not change when heapprof is attached):
 * DIR/PID.attach with the pid, the process's start time, the dump signal
 * and the profile template. DIR is $XDG_RUNTIME_DIR/heapprof, or
 * /tmp/heapprof-UID without XDG_RUNTIME_DIR; it must be a directory of
 * this user's, mode 0700, and not a symbolic link, and its files are
 * created 0600 without following links. A record counts only for the
 * process that has the same pid AND start time, so a reused pid never
 * finds another process's record.
 */
#ifndef HEAPPROF_CLI_STATE_H
#define HEAPPROF_CLI_STATE_H

#include <stddef.h>
#include <sys/types.h>

#include "config.h"

typedef struct attach_state {
  pid_t pid;
  unsigned long long start;   /* /proc/PID/stat field 22 */
  int signal;                 /* the dump signal, 0 = none */
  char out[CONFIG_PATH_MAX];  /* the absolute profile template */
} attach_state_t;

/* Opens the state directory (creating it if absent and `create`) and
 * checks it: a directory fd, or -1 with `why` saying what is wrong with
 * `dir`. */
int state_dir_open(char *dir, size_t dircap, int create, char *why, size_t whycap);

/* Records `s`, replacing any record for the same pid. 0 or -1 (errno). */
int state_write(int dirfd, const attach_state_t *s);

/* The record for `pid` if there is one and it names the process running
 * now (same start time): 1, else 0. */
int state_read(pid_t pid, attach_state_t *s);

/* Removes the record for `pid`, if any. */
void state_remove(int dirfd, pid_t pid);

#endif /* HEAPPROF_CLI_STATE_H */
