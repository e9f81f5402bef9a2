/*
 * arena — the profiler's own memory, straight from mmap.
 *
 * Permanent allocations are carved from 1 MiB chunks by bumping a pointer;
 * nothing carved is ever returned, which is what lets buckets be read
 * without locks. Page maps (arena_map) serve the tables that grow and are
 * given back when they are replaced. Every byte either kind holds is counted
 * in `held`, and no request is granted that would take `held` past the cap:
 * the caller then drops what it wanted to record and counts the drop.
 */
#include "arena.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>

#define CHUNK_BYTES ((size_t)1 << 20)
/* Cache-line alignment: counters of two buckets never share a line, and
 * the low 6 bits of a bucket's address are free for sampled.c's header. */
#define ARENA_ALIGN 64

static pthread_mutex_t chunk_lock = PTHREAD_MUTEX_INITIALIZER;
/* Protected by chunk_lock: the unused tail of the current chunk. */
static char *chunk_next;
static char *chunk_end;

static _Atomic size_t held;
static size_t cap;

static size_t page_round(size_t bytes) {
  return (bytes + 4095) & ~(size_t)4095;
}

/* Reserves `bytes` against the cap; false if that would exceed it. */
static int reserve(size_t bytes) {
  size_t now = atomic_fetch_add_explicit(&held, bytes, memory_order_relaxed);
  if (cap != 0 && now + bytes > cap) {
    atomic_fetch_sub_explicit(&held, bytes, memory_order_relaxed);
    return 0;
  }
  return 1;
}

void *arena_map(size_t bytes) {
  bytes = page_round(bytes);
  if (bytes == 0 || !reserve(bytes))
    return NULL;
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    atomic_fetch_sub_explicit(&held, bytes, memory_order_relaxed);
    return NULL;
  }
  return p;
}

void arena_unmap(void *p, size_t bytes) {
  if (p == NULL)
    return;
  bytes = page_round(bytes);
  munmap(p, bytes);
  atomic_fetch_sub_explicit(&held, bytes, memory_order_relaxed);
}

void *arena_alloc(size_t bytes) {
  bytes = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
  if (bytes > CHUNK_BYTES / 4)
    return arena_map(bytes); /* big and rare: a map of its own */
  pthread_mutex_lock(&chunk_lock);
  if ((size_t)(chunk_end - chunk_next) < bytes) {
    char *c = arena_map(CHUNK_BYTES);
    if (c == NULL) {
      pthread_mutex_unlock(&chunk_lock);
      return NULL;
    }
    chunk_next = c;
    chunk_end = c + CHUNK_BYTES;
  }
  void *p = chunk_next;
  chunk_next += bytes;
  pthread_mutex_unlock(&chunk_lock);
  return p;
}

size_t arena_bytes(void) {
  return atomic_load_explicit(&held, memory_order_relaxed);
}

void arena_set_cap(size_t bytes) { cap = bytes; }

void arena_fork_prepare(void) { pthread_mutex_lock(&chunk_lock); }
void arena_fork_parent(void) { pthread_mutex_unlock(&chunk_lock); }
void arena_fork_child(void) { pthread_mutex_init(&chunk_lock, NULL); }
