/*
 * sink — where the bytes of a profile go while it is being encoded: a
 * descriptor, or a memory buffer that grows (an HTTP body must be complete
 * before its status line is sent). The encoder (pprof.h) hands a sink
 * chunks of a few KiB at a time and stops at the first failure.
 */
#ifndef HEAPPROF_SINK_H
#define HEAPPROF_SINK_H

#include <stddef.h>
#include <stdint.h>

/* write() takes all `len` bytes and returns 0, or returns -1 with errno
 * set; the encoder then stops and returns -1 with that errno. */
typedef struct pprof_sink {
  int (*write)(void *ctx, const void *buf, size_t len);
  void *ctx;
} pprof_sink_t;

/* A sink that writes every byte to `fd`, retrying EINTR and short writes.
 * The descriptor stays the caller's: the sink never closes it. */
pprof_sink_t pprof_sink_fd(int fd);

/* A growing buffer: data is malloc'd (the caller frees it with free()),
 * len bytes of it written. A write that would take len beyond `limit`
 * (0: no limit) fails with EFBIG and leaves the buffer as it was; a
 * failed allocation fails with ENOMEM. Start from {0} (plus a limit). */
typedef struct pprof_membuf {
  uint8_t *data;
  size_t len, cap;
  size_t limit;
} pprof_membuf_t;

pprof_sink_t pprof_sink_mem(pprof_membuf_t *m);

#endif /* HEAPPROF_SINK_H */
