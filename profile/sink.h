/*
 * sink — where the bytes of a profile go while it is being encoded. The
 * encoder (pprof.h) hands a sink chunks of a few KiB at a time and stops at
 * the first failure. This file has the memory sink, a buffer that grows
 * (an HTTP body must be complete before its status line is sent); the
 * descriptor sink is the runtime's (runtime/base/writer.h).
 */
#ifndef HEAPPROF_SINK_H
#define HEAPPROF_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "alloc.h"

/* write() takes all `len` bytes and returns 0, or returns -1 with errno
 * set; the encoder then stops and returns -1 with that errno. */
typedef struct pprof_sink {
  int (*write)(void *ctx, const void *buf, size_t len);
  void *ctx;
} pprof_sink_t;

/* A growing buffer from `alloc`, len bytes of its cap written (free it
 * with pprof_membuf_free). A write that would take len beyond `limit` (0:
 * no limit) fails with EFBIG and leaves the buffer as it was; a failed
 * allocation fails with ENOMEM. Start from {.alloc = a} (plus a limit). */
typedef struct pprof_membuf {
  uint8_t *data;
  size_t len, cap;
  size_t limit;
  const prof_alloc_t *alloc;
} pprof_membuf_t;

pprof_sink_t pprof_sink_mem(pprof_membuf_t *m);

/* Gives the buffer back to its allocator; `m` is empty again. */
void pprof_membuf_free(pprof_membuf_t *m);

#endif /* HEAPPROF_SINK_H */
