/*
 * fuzz_pprof — libFuzzer target for the streaming encoder: a fuzzed bucket
 * table (stacks, sizes, rates, counts — including frees above allocs, zero
 * sizes, huge counts, a delta base in snapshot order or not) is streamed
 * through pprof_write_gzip and pprof_write_text into a sink that fails at
 * a fuzzed write (or never), and through an allocator that fails at a
 * fuzzed call (or never). Either the call succeeds and the gzip stream
 * inflates to a profile protobuf-c can decode, or it returns -1 with the
 * sink's errno (or ENOMEM) and leaves nothing allocated.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "buckets.h"
#include "pprof.h"
#include "profile.pb-c.h"
#include "sink.h"
#include "unit_heap.h"

#define MAX_BUCKETS 64

static uint64_t take(const uint8_t **d, size_t *n, size_t bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < bytes && *n > 0; i++, (*d)++, (*n)--)
    v |= (uint64_t)**d << (8 * i);
  return v;
}

/* A memory sink that fails with EPIPE at write `fail_at` (-1: never). */
typedef struct failing {
  pprof_membuf_t m;
  long writes, fail_at;
} failing_t;

static int failing_write(void *ctx, const void *buf, size_t len) {
  failing_t *f = ctx;
  if (f->writes++ == f->fail_at) {
    errno = EPIPE;
    return -1;
  }
  return pprof_sink_mem(&f->m).write(&f->m, buf, len);
}

/* An allocator that fails at call `fail_at` (-1: never) and counts what
 * is still allocated. */
typedef struct counter {
  size_t now;
  long calls, fail_at;
} counter_t;

static void *count_realloc(void *ctx, void *p, size_t old_size, size_t new_size) {
  counter_t *c = ctx;
  if (new_size == 0) {
    free(p);
    c->now -= old_size;
    return NULL;
  }
  if (c->calls++ == c->fail_at)
    return NULL;
  void *q = realloc(p, new_size);
  if (q != NULL)
    c->now = c->now - old_size + new_size;
  return q;
}

static void check_gzip(const pprof_membuf_t *m) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, 15 + 16) != Z_OK)
    abort();
  size_t cap = 1 << 16, n = 0;
  uint8_t *raw = malloc(cap);
  z.next_in = m->data;
  z.avail_in = (uInt)m->len;
  int rc;
  do {
    if (n == cap)
      raw = realloc(raw, cap *= 2);
    z.next_out = raw + n;
    z.avail_out = (uInt)(cap - n);
    rc = inflate(&z, Z_NO_FLUSH);
    n = cap - z.avail_out;
    if (rc != Z_OK && rc != Z_STREAM_END)
      abort(); /* the encoder wrote a broken gzip stream */
  } while (rc != Z_STREAM_END);
  inflateEnd(&z);
  Perftools__Profiles__Profile *p =
      perftools__profiles__profile__unpack(NULL, n, raw);
  if (p == NULL || p->n_string_table == 0 || p->string_table[0][0] != '\0')
    abort(); /* the encoder wrote something its own schema cannot read */
  for (size_t i = 0; i < p->n_location; i++)
    if (p->location[i]->id != i + 1)
      abort();
  for (size_t i = 0; i < p->n_sample; i++)
    if (p->sample[i]->n_value != 4)
      abort();
  perftools__profiles__profile__free_unpacked(p, NULL);
  free(raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  bucket_t *owned[MAX_BUCKETS];
  bucket_count_t counts[MAX_BUCKETS], base[MAX_BUCKETS];
  size_t nb = 0;
  int64_t rate = (int64_t)take(&data, &size, 3);
  uint64_t modes = take(&data, &size, 2);
  /* Which write of the sink fails, and which allocation: -1 for none. */
  long sink_fail = (long)(modes & 63) - 8, alloc_fail = (long)(modes >> 6 & 63) - 16;
  while (size > 0 && nb < MAX_BUCKETS) {
    uint32_t nframes = (uint32_t)take(&data, &size, 1) % 40;
    bucket_t *b = calloc(1, sizeof *b + nframes * sizeof(uintptr_t));
    b->nframes = nframes;
    b->size = take(&data, &size, 4);
    b->rate = (int64_t)take(&data, &size, 1) << (take(&data, &size, 1) % 24);
    for (uint32_t f = 0; f < nframes; f++)
      b->pcs[f] = (uintptr_t)take(&data, &size, 2) + 1;
    owned[nb] = b;
    counts[nb] = (bucket_count_t){b, take(&data, &size, 3), take(&data, &size, 2)};
    nb++;
  }
  counter_t cnt = {0, 0, alloc_fail < 0 ? -1 : alloc_fail};
  prof_alloc_t alloc = {count_realloc, &cnt};
  pprof_options_t opt = {.rate = rate, .time_nanos = 1,
                         .allocs_view = (int)(rate & 1), .alloc = &alloc};
  if (rate & 2) { /* a delta: every other bucket, in order or reversed */
    for (size_t i = 0; i < nb; i += 2)
      base[opt.nbase++] = (bucket_count_t){counts[i].bucket, counts[i].allocs / 2,
                                           counts[i].frees / 3};
    for (size_t i = 0; (rate & 4) && i < opt.nbase / 2; i++) {
      bucket_count_t t = base[i];
      base[i] = base[opt.nbase - 1 - i];
      base[opt.nbase - 1 - i] = t;
    }
    opt.base = base;
  }
  failing_t f = {{.alloc = &unit_heap}, 0, sink_fail < 0 ? -1 : sink_fail};
  pprof_sink_t sink = {failing_write, &f};
  errno = 0;
  int rc = pprof_write_gzip(counts, nb, NULL, &opt, &sink);
  if (rc == 0)
    check_gzip(&f.m);
  else if (rc != -1 || (errno != EPIPE && errno != ENOMEM))
    abort(); /* a failure that is neither the sink's nor memory */
  if (cnt.now != 0)
    abort(); /* the encoder left memory allocated */
  pprof_membuf_free(&f.m);

  failing_t t = {{.alloc = &unit_heap}, 0, sink_fail < 0 ? -1 : sink_fail};
  sink.ctx = &t;
  errno = 0;
  rc = pprof_write_text(counts, nb, NULL, rate, &sink);
  if (rc != 0 && (rc != -1 || errno != EPIPE))
    abort();
  if (rc == 0 && (t.m.len < 14 || memcmp(t.m.data, "heap profile: ", 14) != 0))
    abort();
  pprof_membuf_free(&t.m);
  for (size_t i = 0; i < nb; i++)
    free(owned[i]);
  return 0;
}
