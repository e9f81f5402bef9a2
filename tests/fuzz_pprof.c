/*
 * fuzz_pprof — libFuzzer target for the encoder: a fuzzed bucket table
 * (stacks, sizes, counts — including frees above allocs, zero sizes, huge
 * counts, a delta base) must encode to a profile protobuf-c can decode
 * back, and to Go's text format, without a fault.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buckets.h"
#include "pprof.h"
#include "profile.pb-c.h"

#define MAX_BUCKETS 64

static uint64_t take(const uint8_t **d, size_t *n, size_t bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < bytes && *n > 0; i++, (*d)++, (*n)--)
    v |= (uint64_t)**d << (8 * i);
  return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  bucket_t *owned[MAX_BUCKETS];
  bucket_count_t counts[MAX_BUCKETS];
  size_t nb = 0;
  int64_t rate = (int64_t)take(&data, &size, 3);
  while (size > 0 && nb < MAX_BUCKETS) {
    uint32_t nframes = (uint32_t)take(&data, &size, 1) % 40;
    bucket_t *b = calloc(1, sizeof *b + nframes * sizeof(uintptr_t));
    b->nframes = nframes;
    b->size = take(&data, &size, 4);
    for (uint32_t f = 0; f < nframes; f++)
      b->pcs[f] = (uintptr_t)take(&data, &size, 2) + 1;
    owned[nb] = b;
    counts[nb] = (bucket_count_t){b, take(&data, &size, 3), take(&data, &size, 2)};
    nb++;
  }
  pprof_options_t opt = {.rate = rate, .time_nanos = 1, .allocs_view = (int)(rate & 1)};
  if (rate & 2) { /* a delta against the first half */
    opt.base = counts;
    opt.nbase = nb / 2;
  }
  uint8_t *out;
  size_t len;
  if (pprof_encode(counts, nb, NULL, &opt, &out, &len) != 0)
    abort();
  Perftools__Profiles__Profile *p =
      perftools__profiles__profile__unpack(NULL, len, out);
  if (p == NULL)
    abort(); /* the encoder wrote something its own schema cannot read */
  perftools__profiles__profile__free_unpacked(p, NULL);
  free(out);
  char *text = pprof_text(counts, nb, NULL, rate, &len);
  if (text == NULL)
    abort();
  free(text);
  for (size_t i = 0; i < nb; i++)
    free(owned[i]);
  return 0;
}
