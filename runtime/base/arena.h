/*
 * arena — the profiler's own memory. It comes straight from mmap, never
 * through the malloc family, so it is never sampled and never competes with
 * the program's allocator. Everything is counted against one cap.
 */
#ifndef HEAPPROF_ARENA_H
#define HEAPPROF_ARENA_H

#include <stddef.h>

/*
 * Permanent memory: 64-byte aligned, zeroed, never freed (buckets live
 * forever). NULL once the cap would be exceeded.
 */
void *arena_alloc(size_t bytes);

/* Page-granular memory that can be given back (tables that grow). */
void *arena_map(size_t bytes);
void arena_unmap(void *p, size_t bytes);

/* Bytes currently held (permanent chunks + live maps). */
size_t arena_bytes(void);

/* The cap in bytes; 0 means no cap. Set once at start-up. */
void arena_set_cap(size_t bytes);

/* pthread_atfork hooks: the arena lock is safe across fork. */
void arena_fork_prepare(void);
void arena_fork_parent(void);
void arena_fork_child(void);

#endif /* HEAPPROF_ARENA_H */
