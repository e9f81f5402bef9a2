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
 *
 * A record is written BEFORE gdb runs, marked pending, and settled after
 * (made plain, or removed): a command killed meanwhile leaves a pending
 * record, never an attach without one. A pending record still names the
 * settings the attach passed, so dump may use it; attach and detach treat
 * it as "attached or not: ask the library".
 *
 * The lock: DIR/PID.lock, flock'ed exclusively by every attach and detach
 * of PID from its checks until its record is settled, so that two of them
 * never run on one process at once; a record is removed only by a holder
 * of its pid's lock, so that removing a stale record never races an attach
 * of a new process that has the same pid. A lock file is removed by its
 * holder when it lets go; whoever locks re-checks that the file it locked
 * is still the one at that name.
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
  int pending;                /* written before gdb ran, not settled since */
} attach_state_t;

/* Opens the state directory (creating it if absent and `create`) and
 * checks it: a directory fd, or -1 with `why` saying what is wrong with
 * `dir`. */
int state_dir_open(char *dir, size_t dircap, int create, char *why, size_t whycap);

/* Takes PID's lock without waiting: its fd (not close-on-exec, so that gdb
 * holds it too while it runs), or -1 with errno (EWOULDBLOCK: another
 * command holds it). */
int state_lock(int dirfd, pid_t pid);

/* Lets go of PID's lock (removing its file first). */
void state_unlock(int dirfd, pid_t pid, int lockfd);

/* Records `s` (a pending one if s->pending), replacing any record for the
 * same pid. Call with the pid's lock held. 0 or -1 (errno). */
int state_write(int dirfd, const attach_state_t *s);

/* The record for `pid` as it is on disk, whatever process it names: 1 and
 * *s, or 0 (none, or not a record this user wrote). */
int state_load(int dirfd, pid_t pid, attach_state_t *s);

/* Whether `s` names the process running now under its pid. */
int state_current(const attach_state_t *s);

/* The record for `pid` if there is one and it names the process running
 * now (same start time): 1, else 0. A stale record found on the way
 * (another start time, or no process) is removed, as are those of other
 * pids (state_sweep). */
int state_read(pid_t pid, attach_state_t *s);

/* Removes the record for `pid`, if any. Call with the pid's lock held. */
void state_remove(int dirfd, pid_t pid);

/* Removes every record (and leftover lock or temporary file) of a process
 * that has exited or whose pid another process has now: each under its
 * pid's lock, and none whose lock another command holds. */
void state_sweep(int dirfd);

#endif /* HEAPPROF_CLI_STATE_H */
