/*
 * pprof — bucket counters → a pprof profile, the way Go writes heap
 * profiles (runtime/pprof/protomem.go on proto.go's builder): encoded by
 * hand in the protobuf wire format and streamed through gzip into a sink.
 *
 * Streaming, and what it keeps: a profile of a million buckets is tens of
 * megabytes of protobuf, so nothing per bucket is kept. Each Sample is
 * encoded into a scratch buffer (a submessage's length comes before its
 * bytes), appended to a 4 KiB chunk that deflate takes when full, and
 * deflate's output goes to the sink 8 KiB at a time. Protobuf fields may
 * come in any order and repeated fields concatenate, so a Location (and
 * its Function) is written the first time a sample names it, between the
 * samples, and what is only complete at the end — mappings (whose
 * has_functions flags depend on every location), the string table, the
 * scalars — is written last. What lives for the whole profile: the string
 * table as pointers (the strings stay the caller's and the symbolizer's),
 * location ids by address, function ids by (name, file), one flag byte
 * per mapping. Ids are handed out 1, 2, 3... in the order they are
 * written, so they read back as 1..n in order (Parca's check), and
 * string_table[0] is "". Relative order matters only among string_table
 * entries, which go out in index order.
 *
 * Un-sampling: an object of S bytes was sampled with probability
 * p = 1 - exp(-S/rate), so each sampled object stands for 1/p objects. At
 * the default rate a bucket of 1,000 sampled 4 KiB objects stands for
 * 1000 / (1 - exp(-4096/524288)) ≈ 128,500 objects. Every bucket holds one
 * size, so this is Go's scaleHeapSample applied exactly; at rate 1 nothing
 * is scaled. Each bucket is un-sampled at the rate its samples were taken
 * at; the profile's period is only the current rate.
 *
 * Locations are addresses inside the call instruction (return address − 1,
 * for every frame, the leaf too) so that pprof attributes each frame to the
 * calling line. Names come from the caller's symbol table (symtab.h); a
 * mapping claims has_functions / has_filenames / has_line_numbers only if
 * some location in it really got one, because pprof re-symbolizes only
 * mappings that claim nothing.
 */
#include "pprof.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "labels.h"

/* Go's builder hands its buffer to gzip every 4 KiB too. */
#define IN_CHUNK 4096
#define OUT_CHUNK 8192

/* profile.proto field numbers (see proto/profile.proto). */
enum {
  PROFILE_SAMPLE_TYPE = 1, PROFILE_SAMPLE = 2, PROFILE_MAPPING = 3,
  PROFILE_LOCATION = 4, PROFILE_FUNCTION = 5, PROFILE_STRING_TABLE = 6,
  PROFILE_TIME_NANOS = 9, PROFILE_DURATION_NANOS = 10,
  PROFILE_PERIOD_TYPE = 11, PROFILE_PERIOD = 12, PROFILE_COMMENT = 13,
  PROFILE_DEFAULT_SAMPLE_TYPE = 14,
  VALUE_TYPE_TYPE = 1, VALUE_TYPE_UNIT = 2,
  SAMPLE_LOCATION_ID = 1, SAMPLE_VALUE = 2, SAMPLE_LABEL = 3,
  LABEL_KEY = 1, LABEL_STR = 2, LABEL_NUM = 3,
  MAPPING_ID = 1, MAPPING_MEMORY_START = 2, MAPPING_MEMORY_LIMIT = 3,
  MAPPING_FILE_OFFSET = 4, MAPPING_FILENAME = 5, MAPPING_BUILD_ID = 6,
  MAPPING_HAS_FUNCTIONS = 7, MAPPING_HAS_FILENAMES = 8,
  MAPPING_HAS_LINE_NUMBERS = 9,
  LOCATION_ID = 1, LOCATION_MAPPING_ID = 2, LOCATION_ADDRESS = 3,
  LOCATION_LINE = 4,
  LINE_FUNCTION_ID = 1, LINE_LINE = 2,
  FUNCTION_ID = 1, FUNCTION_NAME = 2, FUNCTION_SYSTEM_NAME = 3,
  FUNCTION_FILENAME = 4, FUNCTION_START_LINE = 5,
  MAPPING_HAS_INLINE_FRAMES = 10,
};

/* What some location of a mapping got, for its has_* fields. */
enum {
  MAPPING_FLAG_FUNCTIONS = 1, MAPPING_FLAG_FILES = 2, MAPPING_FLAG_LINES = 4,
  MAPPING_FLAG_INLINE = 8,
};

enum { WIRE_VARINT = 0, WIRE_LEN = 2 };

/* ---- the encoder's state ---- */

typedef struct idmap {
  uint64_t *keys; /* key + 1, so that 0 marks an empty slot */
  uint64_t *vals;
  size_t mask, used;
  int has_max;      /* key UINT64_MAX (whose key + 1 is 0) lives here */
  uint64_t max_val;
} idmap_t;

typedef struct enc {
  const prof_alloc_t *alloc;
  int err;                    /* errno of the first failure; 0 while fine */
  const pprof_sink_t *sink;
  int gzip;                   /* 0 only for the transitional pprof_encode */
  z_stream z;
  int z_live;
  const prof_symtab_t *syms;
  /* The string table: pointers to strings the caller or syms own, each
   * with the index of the next older string of the same hash (or
   * UINT32_MAX). */
  struct str {
    const char *s;
    uint32_t next;
  } *strs;
  size_t nstrs, cap_strs;
  idmap_t str_by_hash; /* FNV hash → newest string index with that hash */
  idmap_t str_by_ptr;  /* a string's address → its index: asked again, the
                          same string (a symbolizer's interned name) is
                          found without hashing its bytes */
  idmap_t loc_by_addr; /* address (+ space) → id, bit 63: operator new */
  idmap_t fn_by_key;   /* system name index << 32 | file index → id */
  uint64_t nlocs, nfns;
  uint8_t *mapping_flags; /* per mapping: MAPPING_FLAG_* */
  size_t nmappings;
  /* Each label set's Sample.label fields, encoded at the set's first
   * sample and copied into every later one: by set id, a span of
   * set_bytes (len 0: not encoded yet). Memory per set, not per bucket. */
  struct span {
    uint32_t off, len;
  } *set_spans;
  size_t cap_spans;
  uint8_t *set_bytes;
  size_t nset_bytes, cap_set_bytes;
  uint64_t *ids;    /* one sample's location ids */
  uint8_t *scratch; /* one sample, encoded */
  size_t cap_ids, cap_scratch;
  size_t nin;
  uint8_t in[IN_CHUNK];   /* protobuf bytes not yet given to deflate */
  uint8_t out[OUT_CHUNK]; /* deflate's output not yet given to the sink */
} enc_t;

/* ---- working memory, through opt->alloc ---- */

static void *alloc_call(const prof_alloc_t *a, void *p, size_t old_size,
                        size_t new_size) {
  return a->resize(a->ctx, p, old_size, new_size);
}

/* alloc_call, noting ENOMEM when it fails. Sizes are never 0 but to free. */
static void *mem_resize(enc_t *e, void *p, size_t old_size, size_t new_size) {
  void *q = alloc_call(e->alloc, p, old_size, new_size);
  if (q == NULL && new_size != 0 && e->err == 0)
    e->err = ENOMEM;
  return q;
}

static void *mem_alloc(enc_t *e, size_t size) {
  return mem_resize(e, NULL, 0, size);
}

static void mem_free(enc_t *e, void *p, size_t size) {
  if (p != NULL)
    mem_resize(e, p, size, 0);
}

/* Grows array *v of *cap elements to hold `need`, doubling. */
static int reserve(enc_t *e, void **v, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap)
    return 0;
  size_t n = *cap ? *cap * 2 : 64;
  while (n < need)
    n *= 2;
  void *w = mem_resize(e, *v, *cap * elem, n * elem);
  if (w == NULL)
    return -1;
  *v = w;
  *cap = n;
  return 0;
}

/* zlib's memory, through the same allocator: zfree is not told the size,
 * so each block carries it in front (16 bytes keep zlib's alignment). */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size) {
  size_t n = (size_t)items * size + 16;
  uint8_t *p = mem_alloc(opaque, n);
  if (p == NULL)
    return Z_NULL;
  memcpy(p, &n, sizeof n);
  return p + 16;
}

static void z_free(voidpf opaque, voidpf q) {
  if (q == Z_NULL)
    return;
  size_t n;
  uint8_t *p = (uint8_t *)q - 16;
  memcpy(&n, p, sizeof n);
  mem_free(opaque, p, n);
}

/* ---- a small open-addressing map: 64-bit key → 64-bit value ---- */

static uint64_t hash64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  return k ^ (k >> 33);
}

static int idmap_grow(enc_t *e, idmap_t *m) {
  size_t n = m->keys ? (m->mask + 1) * 2 : 256;
  uint64_t *keys = mem_alloc(e, n * sizeof *keys);
  uint64_t *vals = mem_alloc(e, n * sizeof *vals);
  if (keys == NULL || vals == NULL) {
    mem_free(e, keys, n * sizeof *keys);
    mem_free(e, vals, n * sizeof *vals);
    return -1;
  }
  memset(keys, 0, n * sizeof *keys);
  for (size_t i = 0; m->keys != NULL && i <= m->mask; i++) {
    if (m->keys[i] == 0)
      continue;
    size_t j = hash64(m->keys[i]) & (n - 1);
    while (keys[j] != 0)
      j = (j + 1) & (n - 1);
    keys[j] = m->keys[i];
    vals[j] = m->vals[i];
  }
  if (m->keys != NULL) {
    mem_free(e, m->keys, (m->mask + 1) * sizeof *keys);
    mem_free(e, m->vals, (m->mask + 1) * sizeof *vals);
  }
  m->keys = keys;
  m->vals = vals;
  m->mask = n - 1;
  return 0;
}

/* The value slot for `key`; *found says whether it was there already.
 * NULL when out of memory. At most half full, so probes stay short. */
static uint64_t *idmap_slot(enc_t *e, idmap_t *m, uint64_t key, int *found) {
  if (key == UINT64_MAX) {
    *found = m->has_max;
    m->has_max = 1;
    return &m->max_val;
  }
  if ((m->keys == NULL || (m->used + 1) * 2 > m->mask + 1) && idmap_grow(e, m))
    return NULL;
  size_t i = hash64(key + 1) & m->mask;
  while (m->keys[i] != 0 && m->keys[i] != key + 1)
    i = (i + 1) & m->mask;
  *found = m->keys[i] != 0;
  if (!*found) {
    m->keys[i] = key + 1;
    m->used++;
  }
  return &m->vals[i];
}

/* The value for `key`, or NULL when absent (nothing is inserted). */
static const uint64_t *idmap_find(const idmap_t *m, uint64_t key) {
  if (key == UINT64_MAX)
    return m->has_max ? &m->max_val : NULL;
  if (m->keys == NULL)
    return NULL;
  size_t i = hash64(key + 1) & m->mask;
  while (m->keys[i] != 0 && m->keys[i] != key + 1)
    i = (i + 1) & m->mask;
  return m->keys[i] != 0 ? &m->vals[i] : NULL;
}

static void idmap_free(enc_t *e, idmap_t *m) {
  if (m->keys == NULL)
    return;
  mem_free(e, m->keys, (m->mask + 1) * sizeof *m->keys);
  mem_free(e, m->vals, (m->mask + 1) * sizeof *m->vals);
}

/* ---- the byte stream: protobuf → deflate → sink ---- */

/* A sink that fails without setting errno still fails (EIO). */
static int sink_call(const pprof_sink_t *s, const void *p, size_t n) {
  errno = 0;
  if (s->write(s->ctx, p, n) == 0)
    return 0;
  return errno != 0 ? errno : EIO;
}

static void sink_write(enc_t *e, const void *p, size_t n) {
  if (e->err == 0 && n > 0)
    e->err = sink_call(e->sink, p, n);
}

/* Gives the pending chunk to deflate (or, un-gzipped, to the sink) and
 * the sink whatever deflate makes of it; `flush` is Z_NO_FLUSH, or
 * Z_FINISH once at the end. */
static void drain(enc_t *e, int flush) {
  if (!e->gzip) {
    sink_write(e, e->in, e->nin);
    e->nin = 0;
    return;
  }
  e->z.next_in = e->in;
  e->z.avail_in = (uInt)e->nin;
  int rc;
  do {
    e->z.next_out = e->out;
    e->z.avail_out = OUT_CHUNK;
    rc = deflate(&e->z, flush);
    if (rc == Z_STREAM_ERROR && e->err == 0)
      e->err = EIO; /* zlib's state is broken: cannot happen */
    sink_write(e, e->out, OUT_CHUNK - e->z.avail_out);
  } while (e->err == 0 && e->z.avail_out == 0);
  if (flush == Z_FINISH && rc != Z_STREAM_END && e->err == 0)
    e->err = EIO;
  e->nin = 0;
}

static void emit(enc_t *e, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n > 0 && e->err == 0) {
    size_t k = IN_CHUNK - e->nin < n ? IN_CHUNK - e->nin : n;
    memcpy(e->in + e->nin, b, k);
    e->nin += k;
    b += k;
    n -= k;
    if (e->nin == IN_CHUNK)
      drain(e, Z_NO_FLUSH);
  }
}

/* ---- protobuf wire format, into a bounded buffer ---- */

/* Writes past cap are counted but not stored; every buffer below is sized
 * for its message's worst case, so len > cap means a bug (checked). */
typedef struct pb {
  uint8_t *p;
  size_t len, cap;
} pb_t;

static void pb_byte(pb_t *b, uint8_t x) {
  if (b->len < b->cap)
    b->p[b->len] = x;
  b->len++;
}

static void pb_varint(pb_t *b, uint64_t v) {
  for (; v >= 0x80; v >>= 7)
    pb_byte(b, (uint8_t)(v | 0x80));
  pb_byte(b, (uint8_t)v);
}

static size_t varint_len(uint64_t v) {
  size_t n = 1;
  for (; v >= 0x80; v >>= 7)
    n++;
  return n;
}

static void pb_key(pb_t *b, int field, int wire) {
  pb_varint(b, (uint64_t)field << 3 | (uint64_t)wire);
}

/* A scalar field; zero is the default and is left out, as proto3 does.
 * int64 values go as their two's-complement bits (10 bytes if negative). */
static void pb_uint(pb_t *b, int field, uint64_t v) {
  if (v == 0)
    return;
  pb_key(b, field, WIRE_VARINT);
  pb_varint(b, v);
}

static void pb_int(pb_t *b, int field, int64_t v) {
  pb_uint(b, field, (uint64_t)v);
}

static void pb_packed(pb_t *b, int field, const uint64_t *v, size_t n) {
  size_t len = 0;
  for (size_t i = 0; i < n; i++)
    len += varint_len(v[i]);
  if (n == 0)
    return;
  pb_key(b, field, WIRE_LEN);
  pb_varint(b, len);
  for (size_t i = 0; i < n; i++)
    pb_varint(b, v[i]);
}

static void pb_sub(pb_t *b, int field, const pb_t *sub) {
  pb_key(b, field, WIRE_LEN);
  pb_varint(b, sub->len);
  for (size_t i = 0; i < sub->len; i++)
    pb_byte(b, sub->p[i]);
}

/* Writes `msg` as top-level field `field` of the Profile. */
static void emit_field(enc_t *e, int field, const pb_t *msg) {
  if (msg->len > msg->cap) {
    if (e->err == 0)
      e->err = EOVERFLOW; /* a buffer sized too small: a bug */
    return;
  }
  uint8_t head[16];
  pb_t h = {head, 0, sizeof head};
  pb_key(&h, field, WIRE_LEN);
  pb_varint(&h, msg->len);
  emit(e, head, h.len);
  emit(e, msg->p, msg->len);
}

/* ---- the string table ---- */

static uint64_t fnv(const char *s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
  return h;
}

/* Index of `s` in the string table, added if new ("" and NULL are 0).
 * Equal strings share one index: a hash maps to the newest index with
 * that hash, and .next chains to older ones with the same hash. */
static int64_t intern_bytes(enc_t *e, const char *s);

static int64_t intern(enc_t *e, const char *s) {
  if (s == NULL || *s == '\0' || e->err != 0)
    return 0;
  int found;
  uint64_t *at = idmap_slot(e, &e->str_by_ptr, (uintptr_t)s, &found);
  if (at == NULL || found)
    return at ? (int64_t)*at : 0;
  return (int64_t)(*at = (uint64_t)intern_bytes(e, s));
}

/* intern() by the string's bytes. */
static int64_t intern_bytes(enc_t *e, const char *s) {
  int found;
  uint64_t *head = idmap_slot(e, &e->str_by_hash, fnv(s), &found);
  if (head == NULL)
    return 0;
  for (uint32_t i = found ? (uint32_t)*head : UINT32_MAX; i != UINT32_MAX;
       i = e->strs[i].next)
    if (strcmp(e->strs[i].s, s) == 0)
      return i;
  size_t n = e->nstrs;
  if (n >= UINT32_MAX) {
    e->err = ENOMEM;
    return 0;
  }
  if (reserve(e, (void **)&e->strs, &e->cap_strs, n + 1, sizeof *e->strs))
    return 0;
  e->strs[n].s = s;
  e->strs[n].next = found ? (uint32_t)*head : UINT32_MAX;
  *head = n;
  e->nstrs = n + 1;
  return (int64_t)n;
}

/* ---- functions and locations, written on first sight ---- */

/* A Function per (system name, file): names are made from system names,
 * and a start line belongs to the function. */
static uint64_t function_id(enc_t *e, const prof_line_t *l) {
  const char *system_name = prof_line_system_name(l);
  int64_t sn = intern(e, system_name), f = intern(e, l->file);
  int found;
  uint64_t *slot =
      idmap_slot(e, &e->fn_by_key, (uint64_t)sn << 32 | (uint64_t)f, &found);
  if (slot == NULL || e->err != 0)
    return 0;
  if (found)
    return *slot;
  int64_t n = l->system_name ? intern(e, l->name) : sn;
  uint8_t buf[64];
  pb_t fn = {buf, 0, sizeof buf};
  pb_uint(&fn, FUNCTION_ID, ++e->nfns);
  pb_int(&fn, FUNCTION_NAME, n);
  pb_int(&fn, FUNCTION_SYSTEM_NAME, sn);
  pb_int(&fn, FUNCTION_FILENAME, f);
  pb_int(&fn, FUNCTION_START_LINE, l->start_line);
  emit_field(e, PROFILE_FUNCTION, &fn);
  return *slot = e->nfns;
}

/* operator new (_Znwm, _Znam and their nothrow/aligned forms) is an
 * allocator frame like malloc: samples start at its caller. Judged by the
 * function holding the code, whatever was inlined into it. */
static int is_operator_new(const prof_frame_t *fr) {
  const prof_line_t *fn = prof_frame_function(fr);
  const char *name = fn ? prof_line_system_name(fn) : NULL;
  return name != NULL && (strncmp(name, "_Znw", 4) == 0 ||
                          strncmp(name, "_Zna", 4) == 0 ||
                          strncmp(name, "operator new", 12) == 0);
}

/* The most lines a Location gets: the innermost inlined functions beyond
 * it are left out (the symbolizer keeps fewer). */
#define LOCATION_MAX_LINES 64

/* Location id for return address `pc` of a stack recorded in bucket
 * number `serial`, written on first sight; *new_op says whether the
 * location is in operator new (kept in the id slot's top bit, so it is
 * looked up once). 0 on failure (e->err set). */
static uint64_t location_id(enc_t *e, uintptr_t pc, uint64_t serial,
                            int *new_op) {
  int found;
  uint64_t addr = (uint64_t)pc - 1;
  uint32_t space = e->syms != NULL && e->syms->space != NULL
                       ? e->syms->space(e->syms->ctx, addr, serial) : 0;
  /* Another space's address is another location: its key carries the
   * space above the 48 bits of a user-space address (and below bit 63). */
  uint64_t key = addr | (uint64_t)(space & 0x7fff) << 48;
  uint64_t *slot = idmap_slot(e, &e->loc_by_addr, key, &found);
  if (slot == NULL)
    return 0;
  if (found) {
    *new_op = (int)(*slot >> 63);
    return *slot & ~(1ULL << 63);
  }
  uint64_t id = ++e->nlocs;
  *slot = id; /* complete below; on failure the whole profile is lost */
  uint8_t buf[96 + LOCATION_MAX_LINES * 28];
  pb_t loc = {buf, 0, sizeof buf};
  pb_uint(&loc, LOCATION_ID, id);
  prof_frame_t fr = {NULL, 0, -1, false};
  if (e->syms != NULL)
    e->syms->lookup(e->syms->ctx, addr, space, &fr);
  const prof_line_t *fn = prof_frame_function(&fr);
  if (fr.mapping >= 0 && (size_t)fr.mapping < e->nmappings) {
    pb_uint(&loc, LOCATION_MAPPING_ID, (uint64_t)fr.mapping + 1);
    e->mapping_flags[fr.mapping] |=
        (fn ? MAPPING_FLAG_FUNCTIONS : 0) |
        (fn && fn->file ? MAPPING_FLAG_FILES : 0) |
        (fn && fn->line > 0 ? MAPPING_FLAG_LINES : 0) |
        (fr.inline_known ? MAPPING_FLAG_INLINE : 0);
  }
  pb_uint(&loc, LOCATION_ADDRESS, addr);
  uint32_t first = fr.nlines > LOCATION_MAX_LINES
                       ? fr.nlines - LOCATION_MAX_LINES : 0;
  for (uint32_t i = first; i < fr.nlines && e->err == 0; i++) {
    if (fr.lines[i].name == NULL)
      continue;
    uint8_t lbuf[28];
    pb_t line = {lbuf, 0, sizeof lbuf};
    pb_uint(&line, LINE_FUNCTION_ID, function_id(e, &fr.lines[i]));
    pb_int(&line, LINE_LINE, fr.lines[i].line);
    pb_sub(&loc, LOCATION_LINE, &line);
  }
  emit_field(e, PROFILE_LOCATION, &loc);
  *new_op = is_operator_new(&fr);
  *slot = id | (uint64_t)*new_op << 63;
  return id;
}

/* ---- samples ---- */

/* x as an int64, saturated: counts from a table the encoder did not make
 * (a fuzzer's, say) may not fit, and the conversion must stay defined. */
static int64_t saturate(double x) {
  if (!(x < 0x1p63)) /* also NaN */
    return INT64_MAX;
  return x > -0x1p63 ? (int64_t)x : INT64_MIN;
}

void pprof_unsample(uint64_t count, uint64_t size, int64_t rate,
                    int64_t *objects, int64_t *bytes) {
  uint64_t total;
  if (rate <= 1) {
    *objects = count > INT64_MAX ? INT64_MAX : (int64_t)count;
    *bytes = __builtin_mul_overflow(count, size, &total) || total > INT64_MAX
                 ? INT64_MAX : (int64_t)total;
    return;
  }
  if (count == 0 || size == 0) {
    *objects = *bytes = 0;
    return;
  }
  double scale = 1.0 / (1.0 - exp(-(double)size / (double)rate));
  *objects = saturate((double)count * scale);
  *bytes = saturate((double)count * (double)size * scale);
}

/* a − b, or 0 when b is larger (counts only grow, so that means a table
 * not made by bucket_snapshot: never wrap around). */
static uint64_t minus(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

void pprof_inuse(const bucket_count_t *c, int64_t *objects, int64_t *bytes) {
  pprof_unsample(minus(c->allocs, c->frees), c->bucket->size, c->bucket->rate,
                 objects, bytes);
}

void pprof_inuse_total(const bucket_count_t *counts, size_t n,
                       int64_t *objects, int64_t *bytes) {
  *objects = *bytes = 0;
  for (size_t i = 0; i < n; i++) {
    int64_t o, b;
    pprof_inuse(&counts[i], &o, &b);
    *objects += o;
    *bytes += b;
  }
}

/* The four values of bucket count `c`, less `base` when given; false
 * when all four are 0 (the bucket gets no sample). */
static int sample_values(const bucket_count_t *c, const bucket_count_t *base,
                         int inuse_absolute, int64_t v[4]) {
  uint64_t size = c->bucket->size, a0 = base ? base->allocs : 0;
  int64_t rate = c->bucket->rate;
  uint64_t f0 = base && !inuse_absolute ? base->frees : 0;
  int64_t o0 = 0, b0 = 0;
  pprof_unsample(minus(c->allocs, a0), size, rate, &v[0], &v[1]);
  pprof_inuse(c, &v[2], &v[3]);
  if (!inuse_absolute)
    pprof_unsample(minus(a0, f0), size, rate, &o0, &b0);
  v[2] -= o0; /* in-use change over the window: may be negative; both */
  v[3] -= b0; /* sides are ≥ 0, so the difference cannot overflow */
  return v[0] || v[1] || v[2] || v[3];
}

/* A string label's encoding at most: key and length, then two string
 * indexes (field key and varint of at most 5 bytes: under 2^32 strings). */
#define STR_LABEL_BYTES (2 + 2 * 6)

/* Room for a sample of `nframes` frames: its location ids, and its
 * encoding — packed ids (10 bytes each at most, behind a key and a
 * length), four packed values and the bytes label, under 80 bytes
 * together, and the string labels. */
static size_t sample_cap(size_t nframes) {
  return 10 * nframes + 128 + LABELS_PER_SET * STR_LABEL_BYTES;
}

static int reserve_sample(enc_t *e, size_t nframes) {
  size_t n = nframes < 64 ? 64 : nframes;
  if (e->cap_ids < n &&
      reserve(e, (void **)&e->ids, &e->cap_ids, n, sizeof *e->ids))
    return -1;
  if (e->cap_scratch < sample_cap(n)) {
    uint8_t *s = mem_resize(e, e->scratch, e->cap_scratch, sample_cap(n));
    if (s == NULL)
      return -1;
    e->scratch = s;
    e->cap_scratch = sample_cap(n);
  }
  return 0;
}

/* The Sample.label fields of label set `id`, as Go writes a CPU
 * sample's labels: Label{key, str} in the set's order (by key). Encoded
 * (and their strings interned) at the set's first sample; NULL if there
 * is no such set or no memory. */
static const struct span *set_labels(enc_t *e, uint32_t id) {
  const label_set_t *set = labels_set(id);
  if (set == NULL)
    return NULL;
  if (id >= e->cap_spans) {
    size_t old = e->cap_spans;
    if (reserve(e, (void **)&e->set_spans, &e->cap_spans, id + 1,
                sizeof *e->set_spans))
      return NULL;
    memset(e->set_spans + old, 0, (e->cap_spans - old) * sizeof *e->set_spans);
  }
  struct span *sp = &e->set_spans[id];
  size_t room = set->n * STR_LABEL_BYTES;
  if (sp->len != 0 || reserve(e, (void **)&e->set_bytes, &e->cap_set_bytes,
                              e->nset_bytes + room, 1))
    return sp->len != 0 ? sp : NULL;
  pb_t out = {e->set_bytes + e->nset_bytes, 0, room};
  for (uint32_t i = 0; i < set->n; i++) {
    uint8_t buf[STR_LABEL_BYTES];
    pb_t label = {buf, 0, sizeof buf};
    pb_int(&label, LABEL_KEY, intern(e, set->kv[2 * i]));
    pb_int(&label, LABEL_STR, intern(e, set->kv[2 * i + 1]));
    pb_sub(&out, SAMPLE_LABEL, &label);
  }
  *sp = (struct span){(uint32_t)e->nset_bytes, (uint32_t)out.len};
  e->nset_bytes += out.len;
  return sp;
}

/* A labelled bucket's labels, after the numeric "bytes". */
static void add_string_labels(enc_t *e, pb_t *s, uint32_t id) {
  const struct span *sp = id != 0 ? set_labels(e, id) : NULL;
  if (sp == NULL)
    return;
  if (s->len + sp->len <= s->cap)
    memcpy(s->p + s->len, e->set_bytes + sp->off, sp->len);
  s->len += sp->len; /* past cap: emit_field reports the overflow */
}

static void add_sample(enc_t *e, const bucket_t *bk, const int64_t v[4],
                       int64_t bytes_key) {
  if (reserve_sample(e, bk->nframes))
    return;
  size_t nids = 0;
  int leading = 1;
  for (uint32_t f = 0; f < bk->nframes && e->err == 0; f++) {
    int new_op = 0;
    uint64_t id = location_id(e, bk->pcs[f], bk->serial, &new_op);
    if (leading && new_op && f + 1 < bk->nframes)
      continue;
    leading = 0;
    e->ids[nids++] = id;
  }
  uint64_t vals[4] = {(uint64_t)v[0], (uint64_t)v[1], (uint64_t)v[2],
                      (uint64_t)v[3]};
  uint8_t lbuf[32];
  pb_t label = {lbuf, 0, sizeof lbuf};
  pb_t s = {e->scratch, 0, e->cap_scratch};
  pb_int(&label, LABEL_KEY, bytes_key);
  pb_int(&label, LABEL_NUM, (int64_t)bk->size);
  pb_packed(&s, SAMPLE_LOCATION_ID, e->ids, nids);
  pb_packed(&s, SAMPLE_VALUE, vals, 4); /* all four, even zeros */
  pb_sub(&s, SAMPLE_LABEL, &label);
  add_string_labels(e, &s, bk->labels);
  emit_field(e, PROFILE_SAMPLE, &s);
}

/*
 * Where each count's base entry is. Two bucket_snapshot()s list buckets
 * in the same order (newest first, and buckets are only ever added at
 * the head and never removed), so an earlier snapshot is a subsequence of
 * a later one and one walk pairs them with no memory at all. Any other
 * base (the order broken, or a bucket in it missing from counts) gets a
 * hash index: O(nbase) memory, the one case that has it.
 */
typedef struct base_walk {
  const bucket_count_t *base;
  size_t nbase, next;
  int indexed;
  idmap_t index; /* bucket address → position in base */
} base_walk_t;

static void base_open(enc_t *e, base_walk_t *w, const bucket_count_t *counts,
                      size_t n, const pprof_options_t *opt) {
  memset(w, 0, sizeof *w);
  w->base = opt->base;
  w->nbase = opt->base != NULL ? opt->nbase : 0;
  size_t j = 0;
  for (size_t i = 0; i < n && j < w->nbase; i++)
    if (counts[i].bucket == w->base[j].bucket)
      j++;
  if (j == w->nbase)
    return;
  w->indexed = 1;
  for (size_t i = 0; i < w->nbase && e->err == 0; i++) {
    int found;
    uint64_t *slot =
        idmap_slot(e, &w->index, (uintptr_t)w->base[i].bucket, &found);
    if (slot != NULL)
      *slot = i; /* a bucket listed twice: the last entry counts */
  }
}

/* The base entry of counts[i], NULL when it has none (new in the window:
 * counts from zero). Called for i = 0, 1, 2... in order. */
static const bucket_count_t *base_of(base_walk_t *w, const bucket_count_t *c) {
  if (w->indexed) {
    const uint64_t *at = idmap_find(&w->index, (uintptr_t)c->bucket);
    return at != NULL ? &w->base[*at] : NULL;
  }
  if (w->next < w->nbase && w->base[w->next].bucket == c->bucket)
    return &w->base[w->next++];
  return NULL;
}

/* ---- the header and the end ---- */

static void value_type(enc_t *e, pb_t *vt, const char *type, const char *unit) {
  vt->len = 0;
  pb_int(vt, VALUE_TYPE_TYPE, intern(e, type));
  pb_int(vt, VALUE_TYPE_UNIT, intern(e, unit));
}

static void write_sample_types(enc_t *e) {
  static const char *types[4][2] = {{"alloc_objects", "count"},
                                    {"alloc_space", "bytes"},
                                    {"inuse_objects", "count"},
                                    {"inuse_space", "bytes"}};
  uint8_t buf[32];
  pb_t vt = {buf, 0, sizeof buf};
  for (int i = 0; i < 4; i++) {
    value_type(e, &vt, types[i][0], types[i][1]);
    emit_field(e, PROFILE_SAMPLE_TYPE, &vt);
  }
}

static void write_mappings(enc_t *e) {
  size_t n = 0;
  const prof_mapping_t *m =
      e->syms ? e->syms->mappings(e->syms->ctx, &n) : NULL;
  uint8_t buf[128];
  for (size_t i = 0; i < e->nmappings && i < n && e->err == 0; i++) {
    pb_t mp = {buf, 0, sizeof buf};
    pb_uint(&mp, MAPPING_ID, i + 1);
    pb_uint(&mp, MAPPING_MEMORY_START, m[i].start);
    pb_uint(&mp, MAPPING_MEMORY_LIMIT, m[i].limit);
    pb_uint(&mp, MAPPING_FILE_OFFSET, m[i].offset);
    pb_int(&mp, MAPPING_FILENAME, intern(e, m[i].path));
    pb_int(&mp, MAPPING_BUILD_ID, intern(e, m[i].build_id));
    uint8_t flags = e->mapping_flags[i];
    pb_uint(&mp, MAPPING_HAS_FUNCTIONS, (flags & MAPPING_FLAG_FUNCTIONS) != 0);
    pb_uint(&mp, MAPPING_HAS_FILENAMES, (flags & MAPPING_FLAG_FILES) != 0);
    pb_uint(&mp, MAPPING_HAS_LINE_NUMBERS, (flags & MAPPING_FLAG_LINES) != 0);
    pb_uint(&mp, MAPPING_HAS_INLINE_FRAMES, (flags & MAPPING_FLAG_INLINE) != 0);
    emit_field(e, PROFILE_MAPPING, &mp);
  }
}

/* Every string, in index order: the only field whose order matters. */
static void write_strings(enc_t *e) {
  for (size_t i = 0; i < e->nstrs && e->err == 0; i++) {
    size_t len = strlen(e->strs[i].s);
    uint8_t head[16];
    pb_t h = {head, 0, sizeof head};
    pb_key(&h, PROFILE_STRING_TABLE, WIRE_LEN);
    pb_varint(&h, len);
    emit(e, head, h.len);
    emit(e, e->strs[i].s, len);
  }
}

static void write_scalars(enc_t *e, const pprof_options_t *opt,
                          int64_t period_type, int64_t period_unit,
                          const int64_t *comments, int64_t default_type) {
  uint8_t buf[32];
  pb_t s = {buf, 0, sizeof buf}, vt = {buf, 0, sizeof buf};
  pb_int(&s, PROFILE_TIME_NANOS, opt->time_nanos);
  pb_int(&s, PROFILE_DURATION_NANOS, opt->duration_nanos);
  emit(e, buf, s.len);
  pb_int(&vt, VALUE_TYPE_TYPE, period_type);
  pb_int(&vt, VALUE_TYPE_UNIT, period_unit);
  emit_field(e, PROFILE_PERIOD_TYPE, &vt);
  s.len = 0;
  pb_int(&s, PROFILE_PERIOD, opt->rate);
  emit(e, buf, s.len);
  /* Comments, packed, one at a time: a list longer than a buffer works. */
  size_t len = 0;
  for (size_t i = 0; i < opt->ncomments; i++)
    len += varint_len((uint64_t)comments[i]);
  if (opt->ncomments > 0) {
    s.len = 0;
    pb_key(&s, PROFILE_COMMENT, WIRE_LEN);
    pb_varint(&s, len);
    emit(e, buf, s.len);
  }
  for (size_t i = 0; i < opt->ncomments; i++) {
    s.len = 0;
    pb_varint(&s, (uint64_t)comments[i]);
    emit(e, buf, s.len);
  }
  s.len = 0;
  pb_int(&s, PROFILE_DEFAULT_SAMPLE_TYPE, default_type);
  emit(e, buf, s.len);
}

/* ---- the whole profile ---- */

/* The string table with "" at index 0 (string_table[0] must be ""), and
 * a cleared flag byte per mapping. 0, or -1 (e->err set). */
static int start_tables(enc_t *e) {
  static const char empty[] = "";
  if (reserve(e, (void **)&e->strs, &e->cap_strs, 1, sizeof *e->strs))
    return -1;
  e->strs[0].s = empty;
  e->strs[0].next = UINT32_MAX;
  e->nstrs = 1;
  if (e->syms != NULL)
    e->syms->mappings(e->syms->ctx, &e->nmappings);
  e->mapping_flags = mem_alloc(e, e->nmappings + 1);
  if (e->mapping_flags == NULL)
    return -1;
  memset(e->mapping_flags, 0, e->nmappings + 1);
  return 0;
}

/* One sample per bucket with a nonzero value, in the caller's order. */
static void write_samples(enc_t *e, const bucket_count_t *counts, size_t n,
                          const pprof_options_t *opt, int64_t bytes_key) {
  base_walk_t w;
  base_open(e, &w, counts, n, opt);
  for (size_t i = 0; i < n && e->err == 0; i++) {
    int64_t v[4];
    if (sample_values(&counts[i], base_of(&w, &counts[i]),
                      opt->inuse_absolute, v))
      add_sample(e, counts[i].bucket, v, bytes_key);
  }
  idmap_free(e, &w.index);
}

/* The profile, start to end: sample types; samples with their locations
 * and functions; then mappings, strings and scalars; then gzip's end. */
static void encode(enc_t *e, const bucket_count_t *counts, size_t n,
                   const pprof_options_t *opt) {
  if (start_tables(e) != 0)
    return;
  write_sample_types(e);
  int64_t period_type = intern(e, "space"), period_unit = intern(e, "bytes");
  int64_t bytes_key = period_unit; /* the label's key is "bytes" too */
  int64_t default_type = opt->allocs_view ? intern(e, "alloc_space") : 0;
  size_t comments_size = (opt->ncomments + 1) * sizeof(int64_t);
  int64_t *comments = mem_alloc(e, comments_size);
  for (size_t i = 0; comments != NULL && i < opt->ncomments; i++)
    comments[i] = intern(e, opt->comments[i]);
  write_samples(e, counts, n, opt, bytes_key);
  write_mappings(e);
  write_strings(e);
  if (comments != NULL)
    write_scalars(e, opt, period_type, period_unit, comments, default_type);
  mem_free(e, comments, comments_size);
  if (e->err == 0)
    drain(e, Z_FINISH);
}

static void enc_free(enc_t *e) {
  if (e->z_live)
    deflateEnd(&e->z);
  mem_free(e, e->strs, e->cap_strs * sizeof *e->strs);
  idmap_free(e, &e->str_by_hash);
  idmap_free(e, &e->str_by_ptr);
  idmap_free(e, &e->loc_by_addr);
  idmap_free(e, &e->fn_by_key);
  mem_free(e, e->mapping_flags, e->nmappings + 1);
  mem_free(e, e->ids, e->cap_ids * sizeof *e->ids);
  mem_free(e, e->scratch, e->cap_scratch);
  mem_free(e, e->set_spans, e->cap_spans * sizeof *e->set_spans);
  mem_free(e, e->set_bytes, e->cap_set_bytes);
}

static int write_profile(const bucket_count_t *counts, size_t n,
                         const prof_symtab_t *syms, const pprof_options_t *opt,
                         const pprof_sink_t *out, int gzip) {
  int saved = errno;
  if (opt->alloc == NULL) {
    errno = EINVAL;
    return -1;
  }
  enc_t *e = alloc_call(opt->alloc, NULL, 0, sizeof *e);
  if (e == NULL) {
    errno = ENOMEM;
    return -1;
  }
  memset(e, 0, sizeof *e);
  e->alloc = opt->alloc;
  e->sink = out;
  e->gzip = gzip;
  e->syms = syms;
  if (gzip) {
    e->z.zalloc = z_alloc;
    e->z.zfree = z_free;
    e->z.opaque = e;
    /* 15 window bits + 16: a gzip header and trailer (mtime 0, so equal
     * input gives equal bytes); BestSpeed, as Go's profile writer uses. */
    int rc = deflateInit2(&e->z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8,
                          Z_DEFAULT_STRATEGY);
    if (rc == Z_OK)
      e->z_live = 1;
    else if (e->err == 0)
      e->err = rc == Z_MEM_ERROR ? ENOMEM : EIO;
  }
  if (e->err == 0)
    encode(e, counts, n, opt);
  enc_free(e);
  int err = e->err;
  alloc_call(opt->alloc, e, sizeof *e, 0);
  errno = err != 0 ? err : saved;
  return err != 0 ? -1 : 0;
}

int pprof_write_gzip(const bucket_count_t *counts, size_t n,
                     const prof_symtab_t *syms,
                     const pprof_options_t *opt, const pprof_sink_t *out) {
  return write_profile(counts, n, syms, opt, out, 1);
}

/* ---- Go's legacy text format ---- */

/* Output through a fixed buffer: no heap memory, no stdio. */
typedef struct text {
  const pprof_sink_t *sink;
  int err;
  size_t len;
  char buf[4096];
} text_t;

static void text_flush(text_t *t) {
  if (t->err == 0 && t->len > 0)
    t->err = sink_call(t->sink, t->buf, t->len);
  t->len = 0;
}

static void put_mem(text_t *t, const char *s, size_t n) {
  while (n > 0 && t->err == 0) {
    size_t k = sizeof t->buf - t->len < n ? sizeof t->buf - t->len : n;
    memcpy(t->buf + t->len, s, k);
    t->len += k;
    s += k;
    n -= k;
    if (t->len == sizeof t->buf)
      text_flush(t);
  }
}

static void put_str(text_t *t, const char *s) { put_mem(t, s, strlen(s)); }

static void put_dec(text_t *t, uint64_t v) {
  char d[24];
  size_t i = sizeof d;
  do
    d[--i] = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  put_mem(t, d + i, sizeof d - i);
}

static void put_sdec(text_t *t, int64_t v) {
  if (v < 0)
    put_mem(t, "-", 1);
  put_dec(t, v < 0 ? -(uint64_t)v : (uint64_t)v);
}

/* "0x" and lower-case hex digits: what pprof's address pattern reads. */
static void put_hex(text_t *t, uint64_t v) {
  char d[24];
  size_t i = sizeof d;
  do
    d[--i] = "0123456789abcdef"[v & 15];
  while ((v >>= 4) != 0);
  d[--i] = 'x';
  d[--i] = '0';
  put_mem(t, d + i, sizeof d - i);
}

/* The readers parse counts as int64: keep every number within it. */
static uint64_t sat_add(uint64_t a, uint64_t b) {
  uint64_t s;
  return __builtin_add_overflow(a, b, &s) || s > INT64_MAX ? INT64_MAX : s;
}

static uint64_t sat_mul(uint64_t a, uint64_t b) {
  uint64_t s;
  return __builtin_mul_overflow(a, b, &s) || s > INT64_MAX ? INT64_MAX : s;
}

/* Probability that an object of `size` bytes is sampled at `rate`: 1 at
 * rate ≤ 1 (every allocation, and pprof scales nothing at period ≤ 1). */
static double sampled_p(uint64_t size, int64_t rate) {
  return rate > 1 ? -expm1(-(double)size / (double)rate) : 1.0;
}

/*
 * The count written for `count` objects of `size` bytes sampled at
 * `bucket_rate`, in a text profile whose header says `rate`.
 *
 * The text form has one rate for all lines: pprof un-samples each line at
 * it, multiplying count and bytes by 1/p_R with p_R = 1 − e^(−size/R). A
 * bucket taken at another rate r stands for count/p_r objects, so it is
 * written as c' = count · p_R / p_r, rounded to the nearest integer (bytes
 * c' · size, keeping the size pprof derives), and pprof's c'/p_R is then
 * count/p_r to within half of 1/p_R. Worked: 1,000 objects of 4 KiB taken
 * at rate 1, under a header at 524288: c' = 1000 · (1 − e^(−4096/524288))
 * = 7.78 → 8, read back as 8 · 128.5 ≈ 1,028 objects (the text form cannot
 * say 1,000 at that rate; the proto form does). The other way, 10 objects
 * of 100 B taken at 524288 (each standing for 5,243.4) under a header at
 * rate 1: c' = 52,434, read back exactly. A bucket at the header's rate,
 * and any bucket of size 0, keeps its raw count, as Go writes it.
 */
static uint64_t text_count(uint64_t count, uint64_t size, int64_t bucket_rate,
                           int64_t rate) {
  if (count == 0 || size == 0 || bucket_rate == rate ||
      (bucket_rate <= 1 && rate <= 1))
    return count;
  double x = (double)count * sampled_p(size, rate) / sampled_p(size, bucket_rate);
  return (uint64_t)saturate(floor(x + 0.5));
}

/* One bucket's (live, allocs) counts as the text form writes them. */
static void text_counts(const bucket_count_t *c, int64_t rate, uint64_t *live,
                        uint64_t *allocs) {
  const bucket_t *bk = c->bucket;
  *live = text_count(minus(c->allocs, c->frees), bk->size, bk->rate, rate);
  *allocs = text_count(c->allocs, bk->size, bk->rate, rate);
}

static void put_pair(text_t *t, uint64_t n, uint64_t bytes) {
  put_dec(t, n);
  put_str(t, ": ");
  put_dec(t, bytes);
}

/* One row per function of the code at `addr`, inlined ones first, all
 * with the same address, as Go's text form lists inlined calls. */
static void put_frame(text_t *t, const prof_symtab_t *syms, uint64_t addr,
                      uint64_t serial) {
  uint32_t space = syms->space ? syms->space(syms->ctx, addr, serial) : 0;
  prof_frame_t fr;
  syms->lookup(syms->ctx, addr, space, &fr);
  for (uint32_t i = 0; i < fr.nlines; i++) {
    const prof_line_t *l = &fr.lines[i];
    if (l->name == NULL)
      continue;
    put_str(t, "#\t");
    put_hex(t, addr);
    put_str(t, "\t");
    put_str(t, l->name);
    if (l->file != NULL) {
      put_str(t, "\t");
      put_str(t, l->file);
      put_str(t, ":");
      put_sdec(t, l->line);
    }
    put_str(t, "\n");
  }
}

/* `s` quoted as Go's %q does for what a label may hold (labels.h: no
 * control characters): quotes and backslashes escaped. Go's %q also
 * writes a \u escape for the few characters Unicode deems unprintable
 * (U+00A0, U+2028, U+FEFF, …); they are written raw here, which a reader
 * of the line takes the same. */
static void put_quoted(text_t *t, const char *s) {
  put_str(t, "\"");
  for (const char *run = s;; s++)
    if (*s == '"' || *s == '\\' || *s == '\0') {
      put_mem(t, run, (size_t)(s - run));
      if (*s == '\0')
        break;
      put_str(t, *s == '"' ? "\\\"" : "\\\\");
      run = s + 1;
    }
  put_str(t, "\"");
}

/* A labelled bucket's labels, on the line after its counts, as Go's
 * goroutine profile writes them at debug=1: `# labels: {"k":"v", …}`.
 * pprof's parser of the text form skips it as a comment. */
static void put_labels(text_t *t, const label_set_t *set) {
  if (set == NULL)
    return;
  put_str(t, "# labels: {");
  for (uint32_t i = 0; i < set->n; i++) {
    if (i > 0)
      put_str(t, ", ");
    put_quoted(t, set->kv[2 * i]);
    put_str(t, ":");
    put_quoted(t, set->kv[2 * i + 1]);
  }
  put_str(t, "}\n");
}

static void put_bucket(text_t *t, const bucket_count_t *c,
                       const prof_symtab_t *syms,
                       int64_t rate) {
  const bucket_t *bk = c->bucket;
  uint64_t live, allocs;
  text_counts(c, rate, &live, &allocs);
  put_pair(t, live, sat_mul(live, bk->size));
  put_str(t, " [");
  put_pair(t, allocs, sat_mul(allocs, bk->size));
  put_str(t, "] @");
  for (uint32_t f = 0; f < bk->nframes; f++) {
    put_str(t, " ");
    put_hex(t, bk->pcs[f]);
  }
  put_str(t, "\n");
  put_labels(t, labels_set(bk->labels));
  for (uint32_t f = 0; f < bk->nframes && syms != NULL && t->err == 0; f++)
    put_frame(t, syms, (uint64_t)bk->pcs[f] - 1, bk->serial);
  put_str(t, "\n");
}

/* The text sink: the map's bytes go through the text buffer. */
static int text_sink_write(void *ctx, const void *buf, size_t len) {
  text_t *t = ctx;
  put_mem(t, buf, len);
  errno = t->err;
  return t->err != 0 ? -1 : 0;
}

/* The process's memory map, so that pprof can find the binaries; left out
 * when the symbol table has none. */
static void put_maps(text_t *t, const prof_symtab_t *syms) {
  if (syms == NULL || syms->maps_text == NULL || t->err != 0)
    return;
  put_str(t, "\nMAPPED_LIBRARIES:\n");
  pprof_sink_t sink = {text_sink_write, t};
  if (syms->maps_text(syms->ctx, &sink) != 0 && t->err == 0)
    t->err = errno != 0 ? errno : EIO;
}

int pprof_write_text(const bucket_count_t *counts, size_t n,
                     const prof_symtab_t *syms,
                     int64_t rate, const pprof_sink_t *out) {
  int saved = errno;
  text_t t;
  t.sink = out;
  t.err = 0;
  t.len = 0;
  uint64_t io = 0, ib = 0, ao = 0, ab = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t size = counts[i].bucket->size, live, allocs;
    text_counts(&counts[i], rate, &live, &allocs);
    io = sat_add(io, live);
    ib = sat_add(ib, sat_mul(live, size));
    ao = sat_add(ao, allocs);
    ab = sat_add(ab, sat_mul(allocs, size));
  }
  put_str(&t, "heap profile: ");
  put_pair(&t, io, ib);
  put_str(&t, " [");
  put_pair(&t, ao, ab);
  put_str(&t, "] @ heap/");
  put_sdec(&t, rate > INT64_MAX / 2 ? INT64_MAX : rate < INT64_MIN / 2 ? INT64_MIN : 2 * rate);
  put_str(&t, "\n");
  for (size_t i = 0; i < n && t.err == 0; i++)
    put_bucket(&t, &counts[i], syms, rate);
  put_maps(&t, syms);
  text_flush(&t);
  errno = t.err != 0 ? t.err : saved;
  return t.err != 0 ? -1 : 0;
}
