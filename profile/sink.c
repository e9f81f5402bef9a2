/*
 * sink — the memory sink: a buffer that at most doubles at a time, from
 * the allocator it was given.
 */
#include "sink.h"

#include <errno.h>
#include <string.h>

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
  uint8_t *d = m->alloc->resize(m->alloc->ctx, m->data, m->cap, cap);
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

void pprof_membuf_free(pprof_membuf_t *m) {
  prof_free(m->alloc, m->data, m->cap);
  m->data = NULL;
  m->len = m->cap = 0;
}
