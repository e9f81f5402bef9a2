/*
 * test_pprof — the encoder's output decoded two ways: by protobuf-c
 * (every field where Go puts it) and by `go tool pprof` itself.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buckets.h"
#include "pprof.h"
#include "profile.pb-c.h"
#include "symbols.h"
#include "testlib.h"
#include "writer.h"

typedef Perftools__Profiles__Profile Profile;

static const char *str(const Profile *p, int64_t i) {
  CHECK(i >= 0 && (size_t)i < p->n_string_table, "string index %lld",
        (long long)i);
  return p->string_table[i];
}

static void check_unsample(void) {
  int64_t o, b;
  pprof_unsample(1000, 4096, 524288, &o, &b);
  double scale = 1 / (1 - exp(-4096.0 / 524288));
  CHECK(o == (int64_t)(1000 * scale) && b == (int64_t)(1000 * 4096 * scale),
        "scaled to %lld/%lld", (long long)o, (long long)b);
  CHECK(o > 128000 && o < 129000, "1000 samples of 4 KiB ≈ 128.5k objects");
  pprof_unsample(7, 100, 1, &o, &b);
  CHECK(o == 7 && b == 700, "rate 1 must not scale");
  pprof_unsample(0, 100, 524288, &o, &b);
  CHECK(o == 0 && b == 0, "zero count");
}

static void check_shape(const Profile *p, int allocs_view) {
  CHECK(p->n_string_table > 0 && strcmp(p->string_table[0], "") == 0,
        "string_table[0] must be \"\"");
  static const char *want[4][2] = {{"alloc_objects", "count"},
                                   {"alloc_space", "bytes"},
                                   {"inuse_objects", "count"},
                                   {"inuse_space", "bytes"}};
  CHECK(p->n_sample_type == 4, "%zu sample types", p->n_sample_type);
  for (int i = 0; i < 4; i++)
    CHECK(strcmp(str(p, p->sample_type[i]->type), want[i][0]) == 0 &&
              strcmp(str(p, p->sample_type[i]->unit), want[i][1]) == 0,
          "sample type %d is %s/%s", i, str(p, p->sample_type[i]->type),
          str(p, p->sample_type[i]->unit));
  CHECK(p->period_type && strcmp(str(p, p->period_type->type), "space") == 0 &&
            strcmp(str(p, p->period_type->unit), "bytes") == 0,
        "period type");
  CHECK(p->period == 524288, "period %lld", (long long)p->period);
  CHECK(p->time_nanos > 0 && p->duration_nanos == 0, "time fields");
  if (allocs_view)
    CHECK(strcmp(str(p, p->default_sample_type), "alloc_space") == 0,
          "allocs view must default to alloc_space");
  else
    CHECK(p->default_sample_type == 0, "heap view has no default type");
  for (size_t i = 0; i < p->n_location; i++)
    CHECK(p->location[i]->id == i + 1, "location ids must be 1..n");
  for (size_t i = 0; i < p->n_sample; i++) {
    const Perftools__Profiles__Sample *s = p->sample[i];
    CHECK(s->n_value == 4, "sample %zu has %zu values", i, s->n_value);
    CHECK(s->n_label == 1 && strcmp(str(p, s->label[0]->key), "bytes") == 0,
          "sample %zu lacks the bytes label", i);
    for (size_t j = 0; j < s->n_location_id; j++)
      CHECK(s->location_id[j] >= 1 && s->location_id[j] <= p->n_location,
            "dangling location id");
  }
}

int main(void) {
  check_unsample();
  /* Two fake stacks sharing frames, three sizes. */
  uintptr_t s1[] = {0x401001, 0x402001, 0x403001};
  uintptr_t s2[] = {0x404001, 0x402001, 0x403001};
  bucket_t *a = bucket_get(s1, 3, 4096, 524288), *b = bucket_get(s2, 3, 1 << 20, 524288),
           *c = bucket_get(s1, 3, 64, 524288);
  for (int i = 0; i < 10; i++)
    bucket_note_alloc(a);
  for (int i = 0; i < 4; i++)
    bucket_note_free(a);
  bucket_note_alloc(b);
  bucket_note_alloc(c);
  bucket_note_free(c);

  bucket_count_t *counts;
  size_t n = bucket_snapshot(&counts);
  const char *comments[] = {"test comment"};
  for (int view = 0; view < 2; view++) {
    pprof_options_t opt = {.rate = 524288, .allocs_view = view,
                           .time_nanos = 1700000000000000000LL,
                           .comments = comments, .ncomments = 1};
    uint8_t *raw;
    size_t len;
    CHECK(pprof_encode(counts, n, NULL, &opt, &raw, &len) == 0, "encode");
    Profile *p = perftools__profiles__profile__unpack(NULL, len, raw);
    CHECK(p != NULL, "protobuf-c cannot decode the encoder's output");
    check_shape(p, view);
    CHECK(p->n_sample == 3, "%zu samples, want 3", p->n_sample);
    CHECK(p->n_location == 4, "%zu locations, want 4 (shared frames once)",
          p->n_location);
    for (size_t i = 0; i < p->n_location; i++)
      CHECK((p->location[i]->address & 0xfff) == 0,
            "location address must be the return address - 1");
    perftools__profiles__profile__free_unpacked(p, NULL);

    /* And pprof's view of the same bytes, gzipped. */
    uint8_t *gz;
    size_t gzlen;
    CHECK(writer_gzip(raw, len, &gz, &gzlen) == 0, "gzip");
    char path[512];
    snprintf(path, sizeof path, "%s/fake%d.pb.gz", tl_tmpdir(), view);
    CHECK(writer_write_file(path, gz, gzlen) == 0, "write %s", path);
    tl_profile_t tp;
    tl_read_profile(path, &tp);
    CHECK(tp.nsamples == 3 && tp.period == 524288, "pprof sees %zu samples",
          tp.nsamples);
    int64_t scaled_o, scaled_b;
    pprof_unsample(6, 4096, 524288, &scaled_o, &scaled_b);
    int found = 0;
    for (size_t i = 0; i < tp.nsamples; i++) {
      if (tp.samples[i].bytes != 4096)
        continue;
      found = 1;
      CHECK(tp.samples[i].v[2] == scaled_o && tp.samples[i].v[3] == scaled_b,
            "4 KiB bucket in use %lld/%lld, want %lld/%lld",
            (long long)tp.samples[i].v[2], (long long)tp.samples[i].v[3],
            (long long)scaled_o, (long long)scaled_b);
      CHECK(tp.samples[i].nlocs == 3, "stack depth %zu", tp.samples[i].nlocs);
    }
    CHECK(found, "pprof lost the 4 KiB sample:\n%s", tp.raw);
    CHECK(strstr(tp.raw, "test comment") != NULL, "comment lost");
    tl_free_profile(&tp);
    free(gz);
    free(raw);
  }
  free(counts);
  printf("ok\n");
  return 0;
}
