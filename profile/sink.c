/*
 * sink — the two places a profile's bytes go: a descriptor (written whole,
 * whatever write() returns short) and a growing memory buffer. Neither
 * holds anything beyond what it was given: the descriptor sink is its fd,
 * the memory sink its buffer, which at most doubles at a time.
 */
#include "sink.h"

#include "writer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fd_write(void *ctx, const void *buf, size_t len) {
  return writer_write_all((int)(intptr_t)ctx, buf, len);
}

pprof_sink_t pprof_sink_fd(int fd) {
  return (pprof_sink_t){fd_write, (void *)(intptr_t)fd};
}

/* Room for `need` bytes in all: the capacity doubles (from 16 KiB) until
 * it fits, so n bytes cost O(log n) reallocs and at most 2n of memory. */
static int mem_reserve(pprof_membuf_t *m, size_t need) {
  if (need <= m->cap)
    return 0;
  size_t cap = m->cap ? m->cap : 16384;
  while (cap < need) {
    if (cap > SIZE_MAX / 2) {
      errno = ENOMEM;
      return -1;
    }
    cap *= 2;
  }
  if (m->limit != 0 && cap > m->limit)
    cap = m->limit; /* need <= limit: checked by the caller */
  uint8_t *d = realloc(m->data, cap);
  if (d == NULL) {
    errno = ENOMEM;
    return -1;
  }
  m->data = d;
  m->cap = cap;
  return 0;
}

static int mem_write(void *ctx, const void *buf, size_t len) {
  pprof_membuf_t *m = ctx;
  if (len > SIZE_MAX - m->len || (m->limit != 0 && m->len + len > m->limit)) {
    errno = EFBIG;
    return -1;
  }
  if (mem_reserve(m, m->len + len) != 0)
    return -1;
  if (len > 0)
    memcpy(m->data + m->len, buf, len);
  m->len += len;
  return 0;
}

pprof_sink_t pprof_sink_mem(pprof_membuf_t *m) {
  return (pprof_sink_t){mem_write, m};
}
