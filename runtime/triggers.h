/*
 * triggers — the dump signal, the interval timer, growth steps and leak
 * watch, answered by one dump thread through the pipeline (pipeline.h).
 *
 * The thread starts at the first sample, not at start-up (a process with
 * a second thread is no longer single-threaded, and unshare(CLONE_NEWUSER)
 * refuses a threaded process), and only if a trigger is configured.
 */
#ifndef HEAPPROF_TRIGGERS_H
#define HEAPPROF_TRIGGERS_H

#include <stdatomic.h>

#include "config.h"

/* Finds the sigaction and signal heapprof's own forward to, so that no
 * program call (sigaction is async-signal-safe) runs dlsym. At start-up,
 * whatever the rate. */
void triggers_resolve(void);

/* Takes what `cfg` configures (copied), starts the in-use tracking it
 * needs (inuse.h), installs the dump signal, and arms the dump thread's
 * start at the first sample if any trigger needs the thread. */
void triggers_start(const hp_config_t *cfg);

/* Set while the dump thread is wanted but not started: the next sample
 * (on a program thread) starts it with triggers_start_thread. In a forked
 * child too, so that a child that only execs never pays for a thread. */
extern _Atomic int triggers_start_pending;
void triggers_start_thread(void);

/* Ends the dump thread (after the dump in progress) and arms its start at
 * the next sample: 1 if there was one. For a program that must be
 * single-threaded for a moment (control.c's unshare). */
int triggers_stop_thread(void);

/* heapprof detach: the dump thread ended and not started again, the
 * growth, peak and leak triggers off, and the dump signal given back to
 * its default if heapprof's handler still holds it. */
void triggers_detach(void);

/* The parent's dump thread did not come along: the child starts its own
 * at its first sample. */
void triggers_fork_child(void);

#endif /* HEAPPROF_TRIGGERS_H */
