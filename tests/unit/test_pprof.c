/*
 * test_pprof — the streaming encoder, checked the ways a reader sees it.
 *
 *   test_pprof             every check below, at sizes fit for ASan
 *   test_pprof memory N    only the memory check, with N buckets
 *
 * - A table of fake buckets (several rates, a delta base in snapshot order
 *   and out of it, frees above allocs, a stack-less bucket, a zero bucket)
 *   is streamed gzipped; the bytes are inflated and decoded by protobuf-c
 *   (every field where Go puts it: ids 1..n in order, string_table[0] "",
 *   four values per sample, the bytes label) and read by the real
 *   `go tool pprof -raw`, and each sample's values must be the un-sampled
 *   counts computed here from the bucket's own rate.
 * - With the real symbolizer: names reach pprof, a leading operator new
 *   frame is dropped, the mapping claims has_functions.
 * - The text form (?debug=1), read by pprof: raw counts for buckets at the
 *   header's rate, converted counts for the others (read back as the same
 *   estimate), the memory map.
 * - Labels (labels.h): a labelled bucket's sample has, after the numeric
 *   bytes label, one Label{key, str} per pair in key order, each string
 *   once in the table (a value equal to a key, or to "bytes", shares its
 *   index); an unlabelled one only the bytes label; 16 labels of the
 *   longest keys and values on 256 frames, with long varints for string
 *   indexes and location ids, encode. The text form has Go's debug=1
 *   `# labels: {"k":"v", ...}` line (%q quoting) right after each
 *   labelled bucket's @ line and nowhere else, and pprof reads it, with
 *   the same totals as the proto.
 * - A sink that fails at its k-th write, for every k up to the last: -1
 *   with the sink's errno and nothing left allocated; the same for an
 *   allocator that fails at its k-th allocation (ENOMEM).
 * - Memory: every byte the encoder allocates goes through a counting
 *   allocator (opt.alloc, zlib's state included), so its high-water mark
 *   is exact and deterministic. With thousands of distinct PCs and ever
 *   more buckets with distinct stacks, the mark must not grow with the
 *   bucket count, and must stay far below the un-gzipped message (which
 *   the old encoder held whole, besides a struct per sample).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "buckets.h"
#include "labels.h"
#include "pprof.h"
#include "profile.pb-c.h"
#include "sink.h"
#include "symtab.h"
#include "testlib.h"
#include "unit_heap.h"

typedef Perftools__Profiles__Profile Profile;
typedef Perftools__Profiles__Sample Sample;
typedef Perftools__Profiles__Label Label;

#define RATE 524288

/* ---- a counting allocator (opt.alloc) ---- */

/* Each block carries the size it was given, so that the encoder's claim
 * of a block's old size is checked on every resize and free. */
typedef struct counter {
  size_t now, peak;
  long calls;   /* allocations and growths so far */
  long fail_at; /* the call that fails (0-based); -1: none */
} counter_t;

static void *count_realloc(void *ctx, void *p, size_t old_size, size_t new_size) {
  counter_t *c = ctx;
  uint8_t *h = p != NULL ? (uint8_t *)p - 16 : NULL;
  if (h != NULL) {
    size_t had;
    memcpy(&had, h, sizeof had);
    CHECK(had == old_size, "encoder says a block of %zu bytes has %zu", had,
          old_size);
  } else {
    CHECK(old_size == 0, "new block with old size %zu", old_size);
  }
  if (new_size == 0) {
    free(h);
    c->now -= old_size;
    return NULL;
  }
  if (c->calls++ == c->fail_at)
    return NULL;
  uint8_t *q = realloc(h, new_size + 16);
  if (q == NULL)
    return NULL;
  memcpy(q, &new_size, sizeof new_size);
  c->now = c->now - old_size + new_size;
  if (c->now > c->peak)
    c->peak = c->now;
  return q + 16;
}

static prof_alloc_t counting(counter_t *c, long fail_at) {
  *c = (counter_t){0, 0, 0, fail_at};
  return (prof_alloc_t){count_realloc, c};
}

/* ---- fake buckets ---- */

static bucket_t *fake(const uintptr_t *pcs, uint32_t nframes, uint64_t size,
                      int64_t rate) {
  bucket_t *b = calloc(1, sizeof *b + nframes * sizeof *pcs);
  CHECK(b != NULL, "calloc");
  if (nframes > 0)
    memcpy(b->pcs, pcs, nframes * sizeof *pcs);
  b->nframes = nframes;
  b->size = size;
  b->rate = rate;
  return b;
}

/* ---- reading back ---- */

static uint8_t *gunzip(const uint8_t *gz, size_t len, size_t *out_len) {
  z_stream z;
  memset(&z, 0, sizeof z);
  CHECK(inflateInit2(&z, 15 + 16) == Z_OK, "inflateInit2");
  size_t cap = len * 8 + 1024, n = 0;
  uint8_t *out = malloc(cap);
  z.next_in = (Bytef *)gz;
  z.avail_in = (uInt)len;
  int rc;
  do {
    if (n == cap)
      out = realloc(out, cap *= 2);
    z.next_out = out + n;
    z.avail_out = (uInt)(cap - n);
    rc = inflate(&z, Z_NO_FLUSH);
    n = cap - z.avail_out;
    CHECK(rc == Z_OK || rc == Z_STREAM_END, "inflate: %d", rc);
  } while (rc != Z_STREAM_END);
  CHECK(z.avail_in == 0, "%u bytes after the gzip stream", z.avail_in);
  inflateEnd(&z);
  *out_len = n;
  return out;
}

static Profile *decode(const pprof_membuf_t *m) {
  size_t len;
  uint8_t *raw = gunzip(m->data, m->len, &len);
  Profile *p = perftools__profiles__profile__unpack(NULL, len, raw);
  CHECK(p != NULL, "protobuf-c cannot decode the encoder's output");
  free(raw);
  return p;
}

static const char *str(const Profile *p, int64_t i) {
  CHECK(i >= 0 && (size_t)i < p->n_string_table, "string index %lld",
        (long long)i);
  return p->string_table[i];
}

static void check_shape(const Profile *p, int64_t period, int allocs_view) {
  CHECK(p->n_string_table > 0 && strcmp(p->string_table[0], "") == 0,
        "string_table[0] must be \"\"");
  for (size_t i = 1; i < p->n_string_table; i++)
    for (size_t j = 0; j < i; j++)
      CHECK(strcmp(p->string_table[i], p->string_table[j]) != 0,
            "string %zu repeats %zu", i, j);
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
  CHECK(p->period == period, "period %lld", (long long)p->period);
  if (allocs_view)
    CHECK(strcmp(str(p, p->default_sample_type), "alloc_space") == 0,
          "allocs view must default to alloc_space");
  else
    CHECK(p->default_sample_type == 0, "heap view has no default type");
  for (size_t i = 0; i < p->n_location; i++) {
    CHECK(p->location[i]->id == i + 1, "location ids must be 1..n in order");
    CHECK(p->location[i]->mapping_id <= p->n_mapping, "dangling mapping id");
    for (size_t j = 0; j < p->location[i]->n_line; j++)
      CHECK(p->location[i]->line[j]->function_id >= 1 &&
                p->location[i]->line[j]->function_id <= p->n_function,
            "dangling function id");
  }
  for (size_t i = 0; i < p->n_function; i++)
    CHECK(p->function[i]->id == i + 1, "function ids must be 1..n in order");
  for (size_t i = 0; i < p->n_mapping; i++)
    CHECK(p->mapping[i]->id == i + 1, "mapping ids must be 1..n in order");
  for (size_t i = 0; i < p->n_sample; i++) {
    const Sample *s = p->sample[i];
    CHECK(s->n_value == 4, "sample %zu has %zu values", i, s->n_value);
    CHECK(s->n_label >= 1 && strcmp(str(p, s->label[0]->key), "bytes") == 0 &&
              s->label[0]->str == 0,
          "sample %zu does not start with the numeric bytes label", i);
    /* Then its string labels, if any: one per key, in key order. */
    for (size_t j = 1; j < s->n_label; j++) {
      const Label *l = s->label[j];
      CHECK(l->key != 0 && l->str != 0 && l->num == 0 && l->num_unit == 0,
            "sample %zu label %zu is not a string label", i, j);
      CHECK(j == 1 || strcmp(str(p, s->label[j - 1]->key), str(p, l->key)) < 0,
            "sample %zu: labels %zu and %zu out of key order", i, j - 1, j);
    }
    for (size_t j = 0; j < s->n_location_id; j++)
      CHECK(s->location_id[j] >= 1 && s->location_id[j] <= p->n_location,
            "dangling location id");
  }
}

static int fd_write(void *ctx, const void *buf, size_t len) {
  int fd = *(int *)ctx;
  for (const char *p = buf; len > 0;) {
    ssize_t w = write(fd, p, len);
    if (w <= 0)
      return -1;
    p += w, len -= (size_t)w;
  }
  return 0;
}

/* The profile's bytes to a file, through a descriptor sink. */
static void to_file(const char *path, int gzip, const bucket_count_t *counts,
                    size_t n, const prof_symtab_t *syms,
                    const pprof_options_t *opt) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  CHECK(fd >= 0, "open %s: %d", path, errno);
  pprof_sink_t sink = {fd_write, &fd};
  int rc = gzip ? pprof_write_gzip(counts, n, syms, opt, &sink)
                : pprof_write_text(counts, n, syms, opt->rate, &sink);
  CHECK(rc == 0, "write %s: %d", path, errno);
  CHECK(close(fd) == 0, "close");
}

static void unsample_test(void) {
  int64_t o, b;
  pprof_unsample(1000, 4096, RATE, &o, &b);
  double scale = 1 / (1 - exp(-4096.0 / RATE));
  CHECK(o == (int64_t)(1000 * scale) && b == (int64_t)(1000 * 4096 * scale),
        "scaled to %lld/%lld", (long long)o, (long long)b);
  CHECK(o > 128000 && o < 129000, "1000 samples of 4 KiB ≈ 128.5k objects");
  pprof_unsample(7, 100, 1, &o, &b);
  CHECK(o == 7 && b == 700, "rate 1 must not scale");
  pprof_unsample(0, 100, RATE, &o, &b);
  CHECK(o == 0 && b == 0, "zero count");
}

/* ---- the table of fake buckets ---- */

#define NTABLE 8
static bucket_t *table[NTABLE];
static bucket_count_t counts[NTABLE];

static void make_table(void) {
  static const uintptr_t s1[] = {0x401001, 0x402001, 0x403001};
  static const uintptr_t s2[] = {0x404001, 0x402001, 0x403001};
  static const uintptr_t s3[] = {0x405001, 0x406001};
  static const struct {
    const uintptr_t *pcs;
    uint32_t nframes;
    uint64_t size;
    int64_t rate;
    uint64_t allocs, frees;
  } t[NTABLE] = {
      {s1, 3, 4096, RATE, 10, 4},
      {s2, 3, 1 << 20, RATE, 1, 0},
      {s1, 3, 64, RATE, 1, 1},       /* nothing in use, allocs still shown */
      {s3, 2, 100, 1, 1000, 0},      /* taken at rate 1: exact */
      {s3, 2, 200, 4096, 700, 200},  /* taken at another rate */
      {s2, 3, 32, RATE, 0, 0},       /* all zero: no sample */
      {NULL, 0, 8, 1, 3, 0},         /* no stack at all */
      {s2, 2, 16, RATE, 2, 5},       /* frees above allocs: in-use 0 */
  };
  for (int i = 0; i < NTABLE; i++) {
    table[i] = fake(t[i].pcs, t[i].nframes, t[i].size, t[i].rate);
    counts[i] = (bucket_count_t){table[i], t[i].allocs, t[i].frees};
  }
}

static uint64_t minus(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

/* What a bucket's sample must say: each pair un-sampled at the bucket's
 * own rate; in-use over a window is now's less the base's. */
static int inuse_absolute; /* delta_heap's: in-use values are now's */

static int expected(const bucket_count_t *c, const bucket_count_t *base,
                    int64_t v[4]) {
  int64_t o0 = 0, b0 = 0;
  const bucket_t *bk = c->bucket;
  pprof_unsample(minus(c->allocs, base ? base->allocs : 0), bk->size, bk->rate,
                 &v[0], &v[1]);
  pprof_unsample(minus(c->allocs, c->frees), bk->size, bk->rate, &v[2], &v[3]);
  if (base != NULL && !inuse_absolute)
    pprof_unsample(minus(base->allocs, base->frees), bk->size, bk->rate, &o0,
                   &b0);
  v[2] -= o0, v[3] -= b0;
  return v[0] || v[1] || v[2] || v[3];
}

/* Every bucket with a nonzero value has exactly one sample with its
 * values, size label and stack; nothing else is there. */
static void check_samples(const Profile *p, const bucket_count_t *base,
                          size_t nbase) {
  size_t want = 0;
  for (int i = 0; i < NTABLE; i++) {
    const bucket_count_t *b = NULL;
    for (size_t j = 0; j < nbase; j++)
      if (base[j].bucket == counts[i].bucket)
        b = &base[j];
    int64_t v[4];
    if (!expected(&counts[i], b, v))
      continue;
    want++;
    size_t hits = 0;
    for (size_t s = 0; s < p->n_sample; s++) {
      const Sample *sm = p->sample[s];
      if (sm->label[0]->num != (int64_t)table[i]->size)
        continue;
      hits++;
      for (int k = 0; k < 4; k++)
        CHECK(sm->value[k] == v[k], "bucket %d value %d: %lld, want %lld", i,
              k, (long long)sm->value[k], (long long)v[k]);
      CHECK(sm->n_location_id == table[i]->nframes, "bucket %d: %zu frames",
            i, sm->n_location_id);
      CHECK(sm->n_label == 1, "unlabelled bucket %d: %zu labels, want only "
            "bytes", i, sm->n_label);
      for (size_t f = 0; f < sm->n_location_id; f++)
        CHECK(p->location[sm->location_id[f] - 1]->address ==
                  table[i]->pcs[f] - 1,
              "bucket %d frame %zu: address must be the return address - 1",
              i, f);
    }
    CHECK(hits == 1, "bucket %d has %zu samples", i, hits);
  }
  CHECK(p->n_sample == want, "%zu samples, want %zu", p->n_sample, want);
}

static void table_test(void) {
  const char *comments[] = {"test comment", "second comment"};
  for (int view = 0; view < 2; view++) {
    counter_t c;
    prof_alloc_t a = counting(&c, -1);
    pprof_options_t opt = {.rate = RATE, .allocs_view = view,
                           .time_nanos = 1700000000000000000LL,
                           .comments = comments, .ncomments = 2, .alloc = &a};
    pprof_membuf_t m = {.alloc = &unit_heap};
    pprof_sink_t sink = pprof_sink_mem(&m);
    CHECK(pprof_write_gzip(counts, NTABLE, NULL, &opt, &sink) == 0,
          "encode: %d", errno);
    CHECK(c.now == 0, "%zu bytes left allocated", c.now);
    CHECK(m.len > 18 && m.data[0] == 0x1f && m.data[1] == 0x8b,
          "not gzip");
    Profile *p = decode(&m);
    check_shape(p, RATE, view);
    CHECK(p->time_nanos == 1700000000000000000LL && p->duration_nanos == 0,
          "time fields");
    CHECK(p->n_comment == 2 && strcmp(str(p, p->comment[0]), "test comment") == 0 &&
              strcmp(str(p, p->comment[1]), "second comment") == 0,
          "comments");
    check_samples(p, NULL, 0);
    CHECK(p->n_location == 6, "%zu locations, want 6 (shared frames once)",
          p->n_location);
    CHECK(p->n_mapping == 0 && p->n_function == 0, "no symbols, no names");
    perftools__profiles__profile__free_unpacked(p, NULL);
    pprof_membuf_free(&m);

    /* And pprof's view of the same encoder, through the fd sink. */
    char path[512];
    snprintf(path, sizeof path, "%s/fake%d.pb.gz", tl_tmpdir(), view);
    to_file(path, 1, counts, NTABLE, NULL, &opt);
    tl_profile_t tp;
    tl_read_profile(path, &tp);
    CHECK(tp.period == RATE, "pprof period %lld", (long long)tp.period);
    /* pprof drops the stack-less sample (buckets always have a frame). */
    CHECK(tp.nsamples == 6, "pprof sees %zu samples, want 6:\n%s",
          tp.nsamples, tp.raw);
    for (int i = 0; i < NTABLE; i++) {
      int64_t v[4];
      if (!expected(&counts[i], NULL, v) || table[i]->nframes == 0)
        continue;
      int found = 0;
      for (size_t s = 0; s < tp.nsamples; s++)
        if (tp.samples[s].bytes == (int64_t)table[i]->size &&
            memcmp(tp.samples[s].v, v, sizeof v) == 0 &&
            tp.samples[s].nlocs == table[i]->nframes)
          found++;
      CHECK(found == 1, "pprof shows bucket %d %d times:\n%s", i, found,
            tp.raw);
    }
    CHECK(strstr(tp.raw, "test comment") != NULL, "comment lost");
    tl_free_profile(&tp);
  }
}

/* A delta: base as bucket_snapshot gives it (a subsequence of counts),
 * and the same base shuffled (the indexed path): the same samples. Then
 * godeltaprof's delta_heap (inuse_absolute): alloc_* less the base,
 * inuse_* as now; a bucket whose allocations all came before the base
 * still shows its in-use memory, one with nothing new and nothing in use
 * shows nothing, and no in-use value is negative. */
static void delta_test(void) {
  bucket_count_t base[3] = {
      {table[0], 4, 1}, {table[3], 1000, 0}, {table[7], 1, 0}};
  bucket_count_t shuffled[3] = {base[2], base[0], base[1]};
  const bucket_count_t *bases[3] = {base, shuffled, base};
  for (int k = 0; k < 3; k++) {
    counter_t c;
    prof_alloc_t a = counting(&c, -1);
    inuse_absolute = k == 2;
    pprof_options_t opt = {.rate = RATE, .time_nanos = 1,
                           .duration_nanos = 5000000000LL,
                           .base = bases[k], .nbase = 3,
                           .inuse_absolute = inuse_absolute, .alloc = &a};
    pprof_membuf_t m = {.alloc = &unit_heap};
    pprof_sink_t sink = pprof_sink_mem(&m);
    CHECK(pprof_write_gzip(counts, NTABLE, NULL, &opt, &sink) == 0, "delta %d", k);
    CHECK(c.now == 0, "%zu bytes left allocated", c.now);
    Profile *p = decode(&m);
    check_shape(p, RATE, 0);
    CHECK(p->duration_nanos == 5000000000LL, "duration");
    check_samples(p, base, 3);
    for (size_t s = 0; inuse_absolute && s < p->n_sample; s++)
      CHECK(p->sample[s]->value[2] >= 0 && p->sample[s]->value[3] >= 0,
            "delta_heap sample %zu: in-use %lld objects, %lld bytes", s,
            (long long)p->sample[s]->value[2], (long long)p->sample[s]->value[3]);
    perftools__profiles__profile__free_unpacked(p, NULL);
    pprof_membuf_free(&m);
  }
  inuse_absolute = 0;
  printf("ok: deltas, and delta_heap's alloc_* since the base, inuse_* now\n");
}

/* ---- a symbol table (symtab.h) answered from a table ---- */

/* Two mappings: [0x400000, 0x500000) of "/opt/app/bin/app", with
 * operator new[] at 0x400100.., caller_site at 0x400200.. and, at
 * 0x400300.., code where two functions were inlined into a third; and
 * [0x400000, 0x480000) of "/opt/app/plugin.so", a module unloaded since,
 * whose caller_site addresses held old_site for stacks recorded in
 * buckets numbered below FAKE_UNLOADED (space 1). The rest is unknown. */
#define FAKE_NEW 0x400100
#define FAKE_SITE 0x400200
#define FAKE_INL 0x400300
#define FAKE_UNLOADED 10
static const prof_mapping_t fake_maps[] = {
    {0x400000, 0x500000, 0, "/opt/app/bin/app", "0123abcd"},
    {0x400000, 0x480000, 0, "/opt/app/plugin.so", "feed"}};

static const prof_line_t new_lines[] = {{"operator new[]", "_Znam", 0, 0, 0}};
static const prof_line_t site_lines[] = {
    {"caller_site", NULL, "app/site.c", 7, 5}};
static const prof_line_t old_lines[] = {
    {"old_site", NULL, "plugin/old.c", 70, 60}};
static const prof_line_t inl_lines[] = {
    {"std::vector::push", "_ZNSt6vectorIiE4pushEv", "vec.h", 30, 28},
    {"grow", NULL, "app/grow.c", 12, 10},
    {"app::outer", "_ZN3app5outerEv", "app/outer.cc", 44, 40}};

static const prof_mapping_t *fake_mappings(void *ctx, size_t *n) {
  (void)ctx;
  *n = 2;
  return fake_maps;
}

static uint32_t fake_space(void *ctx, uint64_t addr, uint64_t serial) {
  (void)ctx;
  return addr >= FAKE_SITE && addr < FAKE_SITE + 0x80 &&
         serial < FAKE_UNLOADED;
}

static void fake_lookup(void *ctx, uint64_t addr, uint32_t space,
                        prof_frame_t *out) {
  (void)ctx;
  *out = (prof_frame_t){NULL, 0, -1, false};
  if (addr >= fake_maps[0].start && addr < fake_maps[0].limit)
    out->mapping = 0;
  if (space == 1)
    *out = (prof_frame_t){old_lines, 1, 1, false};
  else if (addr >= FAKE_NEW && addr < FAKE_NEW + 0x80)
    *out = (prof_frame_t){new_lines, 1, 0, false};
  else if (addr >= FAKE_SITE && addr < FAKE_SITE + 0x80)
    *out = (prof_frame_t){site_lines, 1, 0, false};
  else if (addr >= FAKE_INL && addr < FAKE_INL + 0x80)
    *out = (prof_frame_t){inl_lines, 3, 0, true};
}

static const char fake_map_text[] =
    "00400000-00500000 r-xp 00000000 08:01 42 /opt/app/bin/app\n";

static int fake_maps_text(void *ctx, const pprof_sink_t *out) {
  (void)ctx;
  return out->write(out->ctx, fake_map_text, sizeof fake_map_text - 1);
}

static const prof_symtab_t fake_symtab = {fake_mappings, fake_space,
                                          fake_lookup, fake_maps_text, NULL};

static void symtab_test(void) {
  const prof_symtab_t *syms = &fake_symtab;
  uintptr_t new_pc = FAKE_NEW + 1, site_pc = FAKE_SITE + 1;
  uintptr_t stack[] = {new_pc, site_pc, 0x1001};
  bucket_t *b = fake(stack, 3, 48, 1);
  b->serial = FAKE_UNLOADED; /* recorded after the plugin went */
  bucket_count_t c[1] = {{b, 5, 2}};
  char path[512];
  snprintf(path, sizeof path, "%s/named.pb.gz", tl_tmpdir());
  pprof_options_t opt = {.rate = 1, .time_nanos = 1, .alloc = &unit_heap};
  to_file(path, 1, c, 1, syms, &opt);
  tl_profile_t tp;
  tl_read_profile(path, &tp);
  CHECK(tp.nsamples == 1 && tp.samples[0].nlocs == 2,
        "want one sample of 2 frames (operator new dropped):\n%s", tp.raw);
  CHECK(strstr(tp.samples[0].funcs[0], "caller_site") != NULL,
        "leaf is %s, want caller_site:\n%s", tp.samples[0].funcs[0], tp.raw);
  CHECK(tp.samples[0].v[2] == 3 && tp.samples[0].v[3] == 144,
        "in use %lld/%lld", (long long)tp.samples[0].v[2],
        (long long)tp.samples[0].v[3]);
  tl_free_profile(&tp);

  pprof_membuf_t m = {.alloc = &unit_heap};
  pprof_sink_t sink = pprof_sink_mem(&m);
  CHECK(pprof_write_gzip(c, 1, syms, &opt, &sink) == 0, "encode");
  Profile *p = decode(&m);
  check_shape(p, 1, 0);
  size_t nmaps;
  syms->mappings(syms->ctx, &nmaps);
  CHECK(p->n_mapping == nmaps, "%zu mappings, want %zu", p->n_mapping, nmaps);
  CHECK(p->n_location == 3 && p->n_function == 2, "%zu locations, %zu functions",
        p->n_location, p->n_function);
  CHECK(!p->mapping[0]->has_inline_frames,
        "no location was expanded from debug info: no has_inline_frames");
  uint64_t mid = p->location[1]->mapping_id;
  CHECK(mid >= 1 && p->mapping[mid - 1]->has_functions,
        "the test binary's mapping must claim its functions");
  CHECK(p->location[2]->mapping_id == 0 && p->location[2]->n_line == 0,
        "an unmapped address has no mapping and no name");
  CHECK(strcmp(str(p, p->mapping[0]->filename), "/opt/app/bin/app") == 0 &&
            strcmp(str(p, p->mapping[0]->build_id), "0123abcd") == 0,
        "the mapping's file and build id");
  CHECK(p->mapping[0]->has_functions && p->mapping[0]->has_filenames &&
            p->mapping[0]->has_line_numbers,
        "a mapping with a named, placed location claims all three");
  perftools__profiles__profile__free_unpacked(p, NULL);
  pprof_membuf_free(&m);

  /* The text form ends with the table's memory map, as it gave it. */
  m = (pprof_membuf_t){.alloc = &unit_heap};
  sink = pprof_sink_mem(&m);
  CHECK(pprof_write_text(c, 1, syms, 1, &sink) == 0, "text");
  static const char tail[] = "\nMAPPED_LIBRARIES:\n";
  CHECK(m.len > sizeof tail && memmem(m.data, m.len, tail, sizeof tail - 1) &&
            memcmp(m.data + m.len - (sizeof fake_map_text - 1), fake_map_text,
                   sizeof fake_map_text - 1) == 0,
        "the text form must end with the memory map");
  CHECK(memmem(m.data, m.len, "caller_site", 11) != NULL, "a named frame");
  pprof_membuf_free(&m);
  free(b);
}

/* One Location per address with a Line per inlined function, innermost
 * first, each with its own Function (readable name, linker's name, file,
 * start line); and a stack recorded before a module went away answered
 * from what was kept of it (its own location and mapping), while the same
 * address in a later stack is the code mapped now. */
static void inline_space_test(void) {
  const prof_symtab_t *syms = &fake_symtab;
  uintptr_t stack[] = {FAKE_INL + 1, FAKE_SITE + 1};
  bucket_t *old = fake(stack, 2, 64, 1), *now = fake(stack, 2, 64, 1);
  old->serial = FAKE_UNLOADED - 1;
  now->serial = FAKE_UNLOADED;
  bucket_count_t c[2] = {{now, 1, 0}, {old, 2, 0}};
  pprof_options_t opt = {.rate = 1, .time_nanos = 1, .alloc = &unit_heap};
  pprof_membuf_t m = {.alloc = &unit_heap};
  pprof_sink_t sink = pprof_sink_mem(&m);
  CHECK(pprof_write_gzip(c, 2, syms, &opt, &sink) == 0, "encode");
  Profile *p = decode(&m);
  check_shape(p, 1, 0);
  CHECK(p->n_location == 3, "%zu locations, want 3: the inlined address "
        "once, the site address once per space", p->n_location);
  const Perftools__Profiles__Location *inl = NULL;
  for (size_t i = 0; i < p->n_location; i++)
    if (p->location[i]->address == FAKE_INL)
      inl = p->location[i];
  CHECK(inl != NULL && inl->n_line == 3, "the inlined address has %zu lines",
        inl ? inl->n_line : 0);
  for (size_t i = 0; inl != NULL && i < inl->n_line && i < 3; i++) {
    uint64_t fid = inl->line[i]->function_id;
    CHECK(fid >= 1 && fid <= p->n_function, "line %zu function id", i);
    const Perftools__Profiles__Function *f = p->function[fid - 1];
    const prof_line_t *want = &inl_lines[i];
    const char *want_sys = want->system_name ? want->system_name : want->name;
    CHECK(strcmp(str(p, f->name), want->name) == 0 &&
              strcmp(str(p, f->system_name), want_sys) == 0 &&
              strcmp(str(p, f->filename), want->file) == 0 &&
              f->start_line == want->start_line &&
              inl->line[i]->line == want->line,
          "line %zu: %s (%s) %s:%lld start %lld, want %s (%s) %s:%lld "
          "start %lld", i, str(p, f->name), str(p, f->system_name),
          str(p, f->filename), (long long)inl->line[i]->line,
          (long long)f->start_line, want->name, want_sys, want->file,
          (long long)want->line, (long long)want->start_line);
  }
  CHECK(p->n_mapping == 2 && p->mapping[0]->has_inline_frames &&
            !p->mapping[1]->has_inline_frames,
        "has_inline_frames: only on the mapping whose inlines were read");
  /* Each sample's second frame: the site as now, or as it was. */
  for (size_t i = 0; i < p->n_sample; i++) {
    const Perftools__Profiles__Sample *smp = p->sample[i];
    CHECK(smp->n_location_id == 2, "sample %zu has %zu frames", i,
          smp->n_location_id);
    if (smp->n_location_id != 2)
      continue;
    const Perftools__Profiles__Location *site =
        p->location[smp->location_id[1] - 1];
    int is_old = smp->value[0] == 2;
    const char *want = is_old ? "old_site" : "caller_site";
    uint64_t want_map = is_old ? 2 : 1;
    const char *got = site->n_line == 1
        ? str(p, p->function[site->line[0]->function_id - 1]->name) : "";
    CHECK(strcmp(got, want) == 0 && site->mapping_id == want_map &&
              site->address == FAKE_SITE,
          "the %s stack's site is %s in mapping %llu, want %s in %llu",
          is_old ? "older" : "newer", got,
          (unsigned long long)site->mapping_id, want,
          (unsigned long long)want_map);
  }
  perftools__profiles__profile__free_unpacked(p, NULL);
  pprof_membuf_free(&m);

  /* The text form lists every inlined function, innermost first, each on
   * its own row with the same address. */
  m = (pprof_membuf_t){.alloc = &unit_heap};
  sink = pprof_sink_mem(&m);
  CHECK(pprof_write_text(c, 2, syms, 1, &sink) == 0, "text");
  const char *a = memmem(m.data, m.len, "\tstd::vector::push\t", 19);
  const char *b = a ? memmem(a, m.len - (a - (char *)m.data), "\tgrow\t", 6) : NULL;
  const char *o = b ? memmem(b, m.len - (b - (char *)m.data), "\tapp::outer\t", 12) : NULL;
  CHECK(a && b && o, "the text form's inlined rows, innermost first");
  CHECK(memmem(m.data, m.len, "old_site", 8) != NULL,
        "the text form names the unloaded module's frame");
  pprof_membuf_free(&m);
  free(old);
  free(now);
}

/* ---- the text form ---- */

static void text_test(void) {
  char path[512];
  snprintf(path, sizeof path, "%s/fake.heap.txt", tl_tmpdir());
  pprof_options_t opt = {.rate = RATE, .alloc = &unit_heap};
  to_file(path, 0, counts, NTABLE, NULL, &opt);
  tl_profile_t tp;
  tl_read_profile(path, &tp);
  int64_t o, b;
  /* The 4 KiB bucket, at the header's rate: raw counts, un-sampled by
   * pprof exactly as the proto form does. */
  pprof_unsample(6, 4096, RATE, &o, &b);
  int seen = 0;
  for (size_t s = 0; s < tp.nsamples; s++) {
    const tl_sample_t *t = &tp.samples[s];
    if (t->bytes == 4096) {
      seen |= 1;
      CHECK(t->v[2] == o && t->v[3] == b, "4 KiB in use %lld, want %lld",
            (long long)t->v[2], (long long)o);
    }
    if (t->bytes == 100) {
      /* 1000 objects taken at rate 1, under a 512 KiB header: 1000 ·
       * (1 − e^(−100/524288)) ≈ 0.19 rounds to 0, so pprof shows 0
       * (the text form's one rate cannot say better) */
      seen |= 2;
      CHECK(t->v[2] == 0, "100 B bucket: %lld", (long long)t->v[2]);
    }
    if (t->bytes == 200) {
      /* 500 objects taken at 4096 stand for 500/(1−e^(−200/4096)) ≈
       * 10,493; written as 500·p_R/p_r ≈ 4.0 → 4, read back as 4/p_R ≈
       * 10,488: within half of 1/p_R ≈ 2,622 */
      seen |= 4;
      double want = 500 / -expm1(-200.0 / 4096), unit = 1 / -expm1(-200.0 / RATE);
      CHECK(fabs((double)t->v[2] - want) <= unit / 2 + 1,
            "200 B bucket: %lld, want %.1f ± %.0f", (long long)t->v[2], want,
            unit / 2);
    }
  }
  CHECK((seen & 5) == 5, "buckets missing from the text form (%d):\n%s", seen,
        tp.raw);
  tl_free_profile(&tp);

  /* A header at rate 1 and a bucket taken at 512 KiB: the other way. */
  uintptr_t st[] = {0x407001};
  bucket_t *bk = fake(st, 1, 100, RATE);
  bucket_count_t c[1] = {{bk, 10, 3}}; /* in use ≠ allocs: four values */
  opt.rate = 1;
  to_file(path, 0, c, 1, NULL, &opt);
  tl_read_profile(path, &tp);
  pprof_unsample(7, 100, RATE, &o, &b);
  CHECK(tp.nsamples == 1 && llabs(tp.samples[0].v[2] - o) <= 1,
        "rate-1 header: %lld objects, want %lld:\n%s",
        (long long)(tp.nsamples ? tp.samples[0].v[2] : -1), (long long)o, tp.raw);
  tl_free_profile(&tp);
  free(bk);

  pprof_membuf_t m = {.alloc = &unit_heap};
  pprof_sink_t sink = pprof_sink_mem(&m);
  CHECK(pprof_write_text(counts, NTABLE, NULL, RATE, &sink) == 0, "text");
  CHECK(m.len > 0 && memmem(m.data, m.len, "@ heap/1048576\n", 15) != NULL,
        "header");
  CHECK(memmem(m.data, m.len, "MAPPED_LIBRARIES", 16) == NULL,
        "no symbol table, no memory map");
  CHECK(memmem(m.data, m.len, "0x401001 0x402001 0x403001\n", 27) != NULL,
        "stack line");
  pprof_membuf_free(&m);
}

/* ---- labels (labels.h) ---- */

static const label_node_t *lpush(const label_node_t *at, const char *key,
                                 const char *value) {
  const label_node_t *n = NULL;
  CHECK(labels_push(at, key, value, 1, &n) == 0, "push %s=%s: %d", key, value,
        errno);
  return n;
}

/* The index of string `s` in the table, and that it is there once. */
static int64_t str_index(const Profile *p, const char *s) {
  int64_t at = -1;
  for (size_t i = 0; i < p->n_string_table; i++)
    if (strcmp(p->string_table[i], s) == 0) {
      CHECK(at < 0, "\"%s\" twice in the string table", s);
      at = (int64_t)i;
    }
  CHECK(at > 0, "\"%s\" not in the string table", s);
  return at;
}

/* A count's first value in the profile: its un-sampled allocations. */
static int64_t alloc_objects(const bucket_count_t *c) {
  int64_t o, b;
  pprof_unsample(c->allocs, c->bucket->size, c->bucket->rate, &o, &b);
  return o;
}

/* The sample whose first value is `allocs` (unique in each table here). */
static const Sample *sample_with(const Profile *p, int64_t allocs) {
  const Sample *found = NULL;
  for (size_t i = 0; i < p->n_sample; i++)
    if (p->sample[i]->value[0] == allocs) {
      CHECK(found == NULL, "two samples with %lld allocations",
            (long long)allocs);
      found = p->sample[i];
    }
  CHECK(found != NULL, "no sample with %lld allocations", (long long)allocs);
  return found;
}

/* The sample says exactly the bucket's size and set, in the set's order:
 * after the numeric bytes label, one Label{key, str} per pair. */
static void check_labels(const Profile *p, const Sample *s, const bucket_t *b,
                         const char *what) {
  const label_set_t *set = labels_set(b->labels);
  size_t n = set ? set->n : 0;
  CHECK(s->n_label == 1 + n, "%s: %zu labels, want bytes and %zu", what,
        s->n_label, n);
  CHECK(s->label[0]->key == str_index(p, "bytes") &&
            s->label[0]->num == (int64_t)b->size && s->label[0]->str == 0,
        "%s: the bytes label first", what);
  for (size_t i = 0; i < n && 1 + i < s->n_label; i++) {
    const Label *l = s->label[1 + i];
    CHECK(l->key == str_index(p, set->kv[2 * i]) &&
              l->str == str_index(p, set->kv[2 * i + 1]) && l->num == 0 &&
              l->num_unit == 0,
          "%s: label %zu is %s=%s, want %s=%s", what, i, str(p, l->key),
          str(p, l->str), set->kv[2 * i], set->kv[2 * i + 1]);
  }
}

/* The text form: the line after each bucket's `@` line is its labels as
 * Go's goroutine profile writes them at debug=1, or no labels line. */
static void check_text_labels(const pprof_membuf_t *m,
                              const bucket_count_t *c, size_t n,
                              const char *const *want) {
  char *text = strndup((const char *)m->data, m->len);
  size_t bucket = 0, seen = 0;
  int after_at = 0;
  for (char *save, *line = strtok_r(text, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    int is_labels = strncmp(line, "# labels:", 9) == 0;
    if (after_at) {
      const char *w = want[bucket - 1];
      CHECK(w == NULL ? !is_labels : strcmp(line, w) == 0,
            "bucket %zu: the line after its @ line is\n  %s\nwant\n  %s",
            bucket - 1, line, w ? w : "(no labels line)");
      seen += is_labels;
    } else {
      CHECK(!is_labels, "a labels line not after an @ line: %s", line);
    }
    after_at = strstr(line, "] @") != NULL && strncmp(line, "heap", 4) != 0;
    bucket += after_at;
  }
  CHECK(bucket == n, "%zu buckets in the text, want %zu", bucket, n);
  size_t labelled = 0;
  for (size_t i = 0; i < n; i++)
    labelled += c[i].bucket->labels != 0;
  CHECK(seen == labelled, "%zu labels lines for %zu labelled buckets", seen,
        labelled);
  free(text);
}

/* `go tool pprof -raw`'s totals of a profile file: the four values summed. */
static size_t pprof_totals(const char *path, int64_t v[4], char **raw) {
  tl_profile_t tp;
  tl_read_profile(path, &tp);
  v[0] = v[1] = v[2] = v[3] = 0;
  for (size_t s = 0; s < tp.nsamples; s++)
    for (int k = 0; k < 4; k++)
      v[k] += tp.samples[s].v[k];
  size_t n = tp.nsamples;
  *raw = strdup(tp.raw);
  tl_free_profile(&tp);
  return n;
}

#define FILLERS 80 /* buckets of 256 new frames before the big one */

static void labels_test(void) {
  static const uintptr_t st[] = {0x411001, 0x412001, 0x413001};
  static const uintptr_t st2[] = {0x414001, 0x413001};
  /* Pushed unsorted; a value equal to a key ("app") and one equal to the
   * numeric label's key ("bytes"); Go's %q escapes for '"' and '\'. */
  const label_node_t *l1 =
      lpush(lpush(lpush(NULL, "zone", "app"), "tenant", "a\"b\\c"), "app",
            "bytes");
  const label_node_t *l2 = lpush(NULL, "app", "web");
  const label_node_t *l4 = lpush(NULL, "city", "caf\xc3\xa9 \xe2\x82\xac\xf0\x9f\x98\x80");
  /* Every label a set can hold, each key and value as long as allowed. */
  const label_node_t *l5 = NULL;
  char keys[LABELS_PER_SET][LABEL_KEY_MAX + 1];
  char values[LABELS_PER_SET][LABEL_VALUE_MAX + 1];
  for (int i = LABELS_PER_SET - 1; i >= 0; i--) {
    memset(keys[i], 'k', LABEL_KEY_MAX);
    keys[i][LABEL_KEY_MAX] = '\0';
    keys[i][1] = (char)('a' + i);
    memset(values[i], '0' + i % 10, LABEL_VALUE_MAX);
    values[i][LABEL_VALUE_MAX] = '\0';
    l5 = lpush(l5, keys[i], values[i]);
  }
  CHECK(labels_set(l5->set_id)->n == LABELS_PER_SET, "the full set");

  uintptr_t deep[BUCKET_MAX_FRAMES];
  for (int f = 0; f < BUCKET_MAX_FRAMES; f++)
    deep[f] = 0x600001 + 16 * (uintptr_t)f;
  enum { NL = 5 };
  bucket_t *b[NL] = {
      fake(st, 3, 4096, RATE), /* labelled */
      fake(st, 3, 4096, RATE), /* the same stack and size, other labels */
      fake(st, 3, 4096, RATE), /* the same again, no labels */
      fake(st2, 2, 100, RATE),
      fake(deep, BUCKET_MAX_FRAMES, 64, RATE),
  };
  b[0]->labels = l1->set_id;
  b[1]->labels = l2->set_id;
  b[3]->labels = l4->set_id;
  b[4]->labels = l5->set_id;
  bucket_count_t c[NL] = {{b[0], 3, 1}, {b[1], 5, 0}, {b[2], 7, 2},
                          {b[3], 2, 0}, {b[4], 1, 0}};

  /* The proto, with string indexes and location ids made large (so their
   * varints are long): 20,000 comments come first in the string table,
   * and FILLERS buckets of 256 new frames each before the big one. */
  enum { NCOMMENTS = 20000 };
  char(*ctext)[16] = malloc(NCOMMENTS * sizeof *ctext);
  const char **comments = malloc(NCOMMENTS * sizeof *comments);
  bucket_count_t *all = calloc(FILLERS + NL, sizeof *all);
  bucket_t *fill[FILLERS];
  CHECK(ctext && comments && all, "memory");
  for (int i = 0; i < NCOMMENTS; i++) {
    snprintf(ctext[i], sizeof ctext[i], "comment %d", i);
    comments[i] = ctext[i];
  }
  for (int i = 0; i < FILLERS; i++) {
    uintptr_t pcs[BUCKET_MAX_FRAMES];
    for (int f = 0; f < BUCKET_MAX_FRAMES; f++)
      pcs[f] = 0x700001 + 16 * (uintptr_t)(i * BUCKET_MAX_FRAMES + f);
    fill[i] = fake(pcs, BUCKET_MAX_FRAMES, 32, RATE);
    all[i] = (bucket_count_t){fill[i], 1000 + (uint64_t)i, 0};
  }
  memcpy(all + FILLERS, c, sizeof c);
  pprof_options_t opt = {.rate = RATE, .time_nanos = 1, .alloc = &unit_heap,
                         .comments = comments, .ncomments = NCOMMENTS};
  pprof_membuf_t m = {.alloc = &unit_heap};
  pprof_sink_t sink = pprof_sink_mem(&m);
  errno = 0;
  CHECK(pprof_write_gzip(all, FILLERS + NL, NULL, &opt, &sink) == 0,
        "encoding 16 labels and 256 frames: errno %d", errno);
  Profile *p = decode(&m);
  check_shape(p, RATE, 0);
  const char *names[] = {"labelled", "other labels", "unlabelled", "UTF-8",
                         "16 labels, 256 frames"};
  for (int i = 0; i < NL; i++)
    check_labels(p, sample_with(p, alloc_objects(&c[i])), b[i], names[i]);
  /* Shared strings: one index however many places use them. */
  const Sample *s0 = sample_with(p, alloc_objects(&c[0]));
  CHECK(s0->label[3]->str == s0->label[1]->key &&
            s0->label[1]->str == s0->label[0]->key,
        "zone=app's value must be the key app's index, app=bytes's the "
        "numeric label's key's");
  const Sample *s4 = sample_with(p, alloc_objects(&c[4]));
  CHECK(s4->n_location_id == BUCKET_MAX_FRAMES &&
            s4->location_id[0] > (uint64_t)FILLERS * BUCKET_MAX_FRAMES &&
            s4->label[1]->key > NCOMMENTS,
        "the big sample: %zu frames, first location %llu, first key index "
        "%lld (want ids past %d and %d)", s4->n_location_id,
        (unsigned long long)(s4->n_location_id ? s4->location_id[0] : 0),
        (long long)s4->label[1]->key, FILLERS * BUCKET_MAX_FRAMES, NCOMMENTS);
  printf("labels: the 16-label, 256-frame sample is %zu bytes encoded\n",
         perftools__profiles__sample__get_packed_size(s4));
  perftools__profiles__profile__free_unpacked(p, NULL);
  pprof_membuf_free(&m);

  /* The text form: a labels line after each labelled bucket's @ line. */
  static char full[LABELS_PER_SET * (LABEL_KEY_MAX + LABEL_VALUE_MAX + 8) + 16];
  size_t at = (size_t)snprintf(full, sizeof full, "# labels: {");
  const label_set_t *fs = labels_set(l5->set_id);
  for (uint32_t i = 0; i < fs->n; i++)
    at += (size_t)snprintf(full + at, sizeof full - at, "%s\"%s\":\"%s\"",
                           i ? ", " : "", fs->kv[2 * i], fs->kv[2 * i + 1]);
  snprintf(full + at, sizeof full - at, "}");
  CHECK(strncmp(full, "# labels: {\"kakkk", 17) == 0, "%s", full);
  const char *want[NL] = {
      "# labels: {\"app\":\"bytes\", \"tenant\":\"a\\\"b\\\\c\", \"zone\":\"app\"}",
      "# labels: {\"app\":\"web\"}",
      NULL,
      "# labels: {\"city\":\"caf\xc3\xa9 \xe2\x82\xac\xf0\x9f\x98\x80\"}",
      full,
  };
  m = (pprof_membuf_t){.alloc = &unit_heap};
  sink = pprof_sink_mem(&m);
  CHECK(pprof_write_text(c, NL, NULL, RATE, &sink) == 0, "text: %d", errno);
  check_text_labels(&m, c, NL, want);
  pprof_membuf_free(&m);

  /* pprof reads both forms, and they add up to the same. */
  char gz[512], txt[512], *raw_gz, *raw_txt;
  snprintf(gz, sizeof gz, "%s/labels.pb.gz", tl_tmpdir());
  snprintf(txt, sizeof txt, "%s/labels.heap.txt", tl_tmpdir());
  opt.comments = NULL;
  opt.ncomments = 0;
  to_file(gz, 1, c, NL, NULL, &opt);
  to_file(txt, 0, c, NL, NULL, &opt);
  int64_t vg[4], vt[4];
  size_t ng = pprof_totals(gz, vg, &raw_gz), nt = pprof_totals(txt, vt, &raw_txt);
  /* pprof's text parser reads no labels, and adds up the lines with the
   * same stack and size: the three 4 KiB buckets become one sample. */
  CHECK(ng == NL && nt == NL - 2, "pprof sees %zu samples in the proto, %zu "
        "in the text, want %d and %d:\n%s\n%s", ng, nt, NL, NL - 2, raw_gz,
        raw_txt);
  for (int k = 0; k < 4; k++)
    CHECK(vg[k] == vt[k], "value %d: the proto's total %lld, the text's %lld:"
          "\n%s\n%s", k, (long long)vg[k], (long long)vt[k], raw_gz, raw_txt);
  CHECK(strstr(raw_gz, "app:[bytes] tenant:[a\"b\\c] zone:[app]") != NULL &&
            strstr(raw_gz, "app:[web]") != NULL,
        "pprof does not show the labels:\n%s", raw_gz);
  printf("labels: string labels after bytes in key order, shared strings, "
         "16 labels × 256 frames fit; text labels lines; pprof totals "
         "%lld/%lld in use (proto = text)\n", (long long)vg[2],
         (long long)vg[3]);
  free(raw_gz);
  free(raw_txt);
  for (int i = 0; i < FILLERS; i++)
    free(fill[i]);
  for (int i = 0; i < NL; i++)
    free(b[i]);
  free(all);
  free(comments);
  free(ctext);
}

/* ---- failures ---- */

typedef struct failing {
  pprof_membuf_t m;
  long writes, fail_at;
  size_t biggest;
} failing_t;

static int failing_write(void *ctx, const void *buf, size_t len) {
  failing_t *f = ctx;
  if (len > f->biggest)
    f->biggest = len;
  if (f->writes++ == f->fail_at) {
    errno = ENOSPC;
    return -1;
  }
  return pprof_sink_mem(&f->m).write(&f->m, buf, len);
}

/* n buckets with distinct stacks of `depth` frames from `npcs` PCs: the
 * first two frames number the bucket, so no two stacks are equal. */
static bucket_count_t *many(size_t n, uint32_t depth, uint32_t npcs,
                            uint8_t **arena) {
  size_t each = sizeof(bucket_t) + depth * sizeof(uintptr_t);
  *arena = calloc(n, each);
  bucket_count_t *c = malloc(n * sizeof *c);
  CHECK(*arena != NULL && c != NULL, "no memory for %zu fake buckets", n);
  uint64_t x = 88172645463325252ULL;
  for (size_t i = 0; i < n; i++) {
    bucket_t *b = (bucket_t *)(*arena + i * each);
    b->nframes = depth;
    b->pcs[0] = 0x400001 + 16 * (i % npcs);
    b->pcs[1] = 0x400001 + 16 * ((i / npcs) % npcs);
    for (uint32_t f = 2; f < depth; f++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      b->pcs[f] = 0x400001 + 16 * (x % npcs);
    }
    b->size = 16 + (x >> 40) % 8192;
    b->rate = i % 64 == 0 ? 1 : RATE;
    c[i] = (bucket_count_t){b, 1 + i % 7, i % 3};
  }
  return c;
}

static void failure_test(void) {
  uint8_t *arena;
  size_t n = 5000;
  bucket_count_t *c = many(n, 6, 2000, &arena);
  const char *comments[] = {"c"};
  for (int text = 0; text < 2; text++) {
    long total = -1;
    for (long k = 0;; k++) {
      counter_t cnt;
      prof_alloc_t a = counting(&cnt, -1);
      pprof_options_t opt = {.rate = RATE, .time_nanos = 1, .alloc = &a,
                             .comments = comments, .ncomments = 1};
      failing_t f = {{.alloc = &unit_heap}, 0, k, 0};
      pprof_sink_t sink = {failing_write, &f};
      errno = 0;
      int rc = text ? pprof_write_text(c, n, NULL, RATE, &sink)
                    : pprof_write_gzip(c, n, NULL, &opt, &sink);
      int err = errno;
      CHECK(cnt.now == 0, "sink failing at write %ld: %zu bytes left", k,
            cnt.now);
      CHECK(f.biggest <= 8192, "a write of %zu bytes: not a few KiB",
            f.biggest);
      pprof_membuf_free(&f.m);
      if (rc == 0) {
        total = f.writes;
        CHECK(k == f.writes, "succeeded although write %ld failed", k);
        break;
      }
      CHECK(rc == -1 && err == ENOSPC,
            "sink failing at write %ld: rc %d errno %d, want -1/ENOSPC", k, rc,
            err);
      CHECK(f.writes == k + 1, "kept writing after a failure");
    }
    CHECK(total > 10, "%s: only %ld writes for %zu buckets",
          text ? "text" : "gzip", total, n);
    printf("%s: a sink failing at each of %ld writes: -1/ENOSPC, no leak\n",
           text ? "text" : "gzip", total);
  }
  /* The allocator failing at each of its calls in turn. */
  long calls = -1;
  for (long k = 0;; k++) {
    counter_t cnt;
    prof_alloc_t a = counting(&cnt, k);
    pprof_options_t opt = {.rate = RATE, .time_nanos = 1, .alloc = &a};
    pprof_membuf_t m = {.alloc = &unit_heap};
    pprof_sink_t sink = pprof_sink_mem(&m);
    errno = 0;
    int rc = pprof_write_gzip(c, n, NULL, &opt, &sink);
    int err = errno;
    pprof_membuf_free(&m);
    CHECK(cnt.now == 0, "allocation %ld failing: %zu bytes left", k, cnt.now);
    if (rc == 0) {
      calls = cnt.calls;
      CHECK(k >= cnt.calls, "succeeded although allocation %ld failed", k);
      break;
    }
    CHECK(rc == -1 && err == ENOMEM, "allocation %ld failing: rc %d errno %d",
          k, rc, err);
  }
  printf("gzip: an allocator failing at each of %ld calls: -1/ENOMEM, no leak\n",
         calls);
  /* The memory sink's limit. */
  pprof_membuf_t m = {.limit = 1000, .alloc = &unit_heap};
  pprof_sink_t sink = pprof_sink_mem(&m);
  pprof_options_t opt = {.rate = RATE, .alloc = &unit_heap};
  CHECK(pprof_write_gzip(c, n, NULL, &opt, &sink) == -1 && errno == EFBIG,
        "a memory sink over its limit must fail with EFBIG");
  CHECK(m.len <= 1000, "the memory sink went past its limit");
  pprof_membuf_free(&m);
  /* profile/ allocates only what it is handed: no allocator, no profile. */
  opt.alloc = NULL;
  m = (pprof_membuf_t){.alloc = &unit_heap};
  sink = pprof_sink_mem(&m);
  CHECK(pprof_write_gzip(c, n, NULL, &opt, &sink) == -1 && errno == EINVAL &&
            m.len == 0,
        "an encoder without an allocator must refuse (EINVAL)");
  free(c);
  free(arena);
}

/* ---- memory ---- */

/* Counts what passes through, inflating it on the fly: the size of the
 * un-gzipped message, which the old encoder held in one buffer. */
typedef struct measure {
  z_stream z;
  uint64_t raw, gz;
  uint8_t buf[65536];
} measure_t;

static int measure_write(void *ctx, const void *buf, size_t len) {
  measure_t *m = ctx;
  m->gz += len;
  m->z.next_in = (Bytef *)buf;
  m->z.avail_in = (uInt)len;
  do {
    m->z.next_out = m->buf;
    m->z.avail_out = sizeof m->buf;
    int rc = inflate(&m->z, Z_NO_FLUSH);
    CHECK(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR,
          "inflate %d", rc);
    m->raw += sizeof m->buf - m->z.avail_out;
  } while (m->z.avail_out == 0);
  return 0;
}

static size_t peak_for(size_t n, uint32_t npcs, uint64_t *raw, uint64_t *gz) {
  uint8_t *arena;
  bucket_count_t *c = many(n, 8, npcs, &arena);
  counter_t cnt;
  prof_alloc_t a = counting(&cnt, -1);
  pprof_options_t opt = {.rate = RATE, .time_nanos = 1, .alloc = &a};
  measure_t *m = calloc(1, sizeof *m);
  CHECK(inflateInit2(&m->z, 15 + 16) == Z_OK, "inflateInit2");
  pprof_sink_t sink = {measure_write, m};
  CHECK(pprof_write_gzip(c, n, NULL, &opt, &sink) == 0, "encode %zu: %d", n,
        errno);
  CHECK(cnt.now == 0, "%zu bytes left allocated", cnt.now);
  inflateEnd(&m->z);
  *raw = m->raw;
  *gz = m->gz;
  free(m);
  free(c);
  free(arena);
  return cnt.peak;
}

/* A lower bound on what the old encoder held for n samples besides its
 * symbols: the packed message, and per sample its protobuf-c structs
 * (Sample, Label and their pointers, four values, eight location ids),
 * counting no malloc overhead. */
static uint64_t message_need(size_t n, uint64_t raw) {
  return raw + n * (sizeof(Sample) + sizeof(Sample *) +
                    sizeof(Perftools__Profiles__Label) +
                    sizeof(Perftools__Profiles__Label *) + 4 * sizeof(int64_t) +
                    8 * sizeof(uint64_t));
}

static void memory_test(size_t big) {
  const uint32_t npcs = 4096;
  uint64_t raw_s, gz_s, raw_b, gz_b;
  size_t small = big / 10;
  size_t peak_s = peak_for(small, npcs, &raw_s, &gz_s);
  size_t peak_b = peak_for(big, npcs, &raw_b, &gz_b);
  uint64_t need = message_need(big, raw_b);
  printf("%zu buckets: encoder peak heap %zu bytes; message %llu bytes, "
         "gzipped %llu\n", small, peak_s, (unsigned long long)raw_s,
         (unsigned long long)gz_s);
  printf("%zu buckets: encoder peak heap %zu bytes; message %llu bytes, "
         "gzipped %llu; a whole message in protobuf-c structs needs over "
         "%llu\n", big, peak_b, (unsigned long long)raw_b,
         (unsigned long long)gz_b, (unsigned long long)need);
  /* Both runs see all 4096 PCs (every bucket's first frame walks them),
   * so the state is the same: ten times the buckets, the same memory. */
  CHECK(peak_b == peak_s, "peak heap grew with the buckets: %zu → %zu",
        peak_s, peak_b);
  /* zlib's ~270 KiB, 12 KiB of buffers, and the location map for 4096
   * addresses (384 KiB while it doubles to 16384 slots). */
  CHECK(peak_b < (1u << 20), "peak heap %zu bytes for %u PCs", peak_b, npcs);
  CHECK(peak_b * 20 < need, "peak %zu not far below the message's %llu",
        peak_b, (unsigned long long)need);
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "memory") == 0) {
    memory_test((size_t)strtoull(argv[2], NULL, 10));
    printf("ok\n");
    return 0;
  }
  CHECK(argc == 1, "usage: test_pprof [memory N]");
  labels_set_memory(unit_permanent);
  unsample_test();
  make_table();
  table_test();
  delta_test();
  symtab_test();
  inline_space_test();
  text_test();
  labels_test();
  failure_test();
  memory_test(100000);
  for (int i = 0; i < NTABLE; i++)
    free(table[i]);
  printf("ok\n");
  return 0;
}
