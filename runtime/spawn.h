/*
 * spawn — heapprof's own threads (the dump thread, the HTTP server): how
 * they start, so that the program cannot tell they exist, and how they end.
 */
#ifndef HEAPPROF_SPAWN_H
#define HEAPPROF_SPAWN_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

/* A heapprof thread that can be ended: its handle and its kernel id. */
typedef struct spawned {
  pthread_t handle;
  _Atomic pid_t tid;
} spawned_t;

/* Finds glibc's thread count (see spawn.c). At start-up. */
void spawn_resolve(void);

/* Starts a thread named `name` running `fn(arg)`, with every signal blocked
 * (signals belong to the program's threads), never sampled, in a
 * descriptor table of its own (fdtable.h) and outside glibc's thread
 * count. Detached, or joinable through `*joinable` when that is not NULL.
 * 0, or -1 with errno. */
int spawn_thread(const char *name, void *(*fn)(void *), void *arg,
                 spawned_t *joinable);

/* Joins a thread whose function is returning, and waits (200 ms at most)
 * until the kernel no longer counts it in the thread group. */
void spawn_join(spawned_t *t);

#endif /* HEAPPROF_SPAWN_H */
