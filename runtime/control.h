/*
 * control — configuration, start-up, the dump thread and its triggers, the
 * public API and fork handling: everything that decides *when* a profile
 * is written and *how* the sampler is set.
 */
#ifndef HEAPPROF_CONTROL_H
#define HEAPPROF_CONTROL_H

#include <pthread.h>
#include <sys/types.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Sampling rate in bytes (0 = off); read by the slow path only. */
extern _Atomic int64_t control_rate;
/* Bumped whenever the rate changes: a thread whose epoch differs redraws
 * its gap. 0 means "not started": nothing is sampled before start-up. */
extern _Atomic uint32_t control_epoch;
/* Maximum frames recorded per stack. */
extern int control_depth;
/* Per-process seed for the thread generators. */
extern uint64_t control_seed;

/* Writes the next profile named by HEAPPROF_OUT (a peak profile gets
 * ".peak" before ".pb.gz"); failures are reported on stderr. */
int control_dump(int kind);

/* control_dump, also giving the path written (NUL-terminated, truncated
 * to `cap`). */
int control_dump_path(int kind, char *path, size_t cap);

/*
 * A profile as an HTTP body (malloc'd): gzipped proto of `kind`, or Go's
 * debug=1 text when `text`, or a delta over the next `seconds` when > 0
 * (the call sleeps that long). 0 or a negative HEAPPROF_E* code.
 */
int control_body(int kind, int text, int seconds, uint8_t **body,
                 size_t *len);

/* Set while the HTTP server is being stopped: a delta's window ends at
 * once (HEAPPROF_EBUSY) instead of running its course. */
extern _Atomic int control_body_abort;

/* A heapprof thread that can be ended: its handle and its kernel id. */
typedef struct control_thread {
  pthread_t handle;
  _Atomic pid_t tid;
} control_thread_t;

/* Starts a thread named `name` running `fn`, with every signal blocked
 * (signals belong to the program's threads), in a descriptor table of its
 * own and outside glibc's thread count. Detached, or joinable through
 * `*joinable` when that is not NULL. 0 or an errno. */
int control_spawn(const char *name, void *(*fn)(void *),
                  control_thread_t *joinable);

/* Joins a thread whose function is returning, and waits (200 ms at most)
 * until the kernel no longer counts it in the thread group. */
void control_join(control_thread_t *t);

/* Samples that could not be recorded (profiler memory exhausted). */
void control_count_drop(void);
uint64_t control_drops(void);

#endif /* HEAPPROF_CONTROL_H */
