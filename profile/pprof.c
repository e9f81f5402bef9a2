/*
 * pprof — bucket counters → a pprof Profile, the way Go writes heap
 * profiles (runtime/pprof/protomem.go), serialised with protobuf-c.
 *
 * Un-sampling: an object of S bytes was sampled with probability
 * p = 1 - exp(-S/rate), so each sampled object stands for 1/p objects. At
 * the default rate a bucket of 1,000 sampled 4 KiB objects stands for
 * 1000 / (1 - exp(-4096/524288)) ≈ 128,500 objects. Every bucket holds one
 * size, so this is Go's scaleHeapSample applied exactly; at rate 1 nothing
 * is scaled.
 *
 * Locations are addresses inside the call instruction (return address − 1,
 * for every frame, the leaf too) so that pprof attributes each frame to the
 * calling line. Names come from symbols.c; a mapping claims has_functions /
 * has_filenames / has_line_numbers only if some location in it really got
 * one, because pprof re-symbolizes only mappings that claim nothing.
 */
#include "pprof.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile.pb-c.h"

typedef Perftools__Profiles__Profile Profile;
typedef Perftools__Profiles__Sample Sample;
typedef Perftools__Profiles__Location Location;
typedef Perftools__Profiles__Line Line;
typedef Perftools__Profiles__Function Function;
typedef Perftools__Profiles__Mapping Mapping;
typedef Perftools__Profiles__ValueType ValueType;
typedef Perftools__Profiles__Label Label;

/* ---- a small open-addressing map: 64-bit key → 64-bit value ---- */

typedef struct idmap {
  uint64_t *keys; /* key + 1, so that 0 marks an empty slot */
  uint64_t *vals;
  size_t mask, used;
} idmap_t;

static uint64_t hash64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  return k ^ (k >> 33);
}

static int idmap_grow(idmap_t *m) {
  size_t n = m->keys ? (m->mask + 1) * 2 : 1024;
  uint64_t *keys = calloc(n, sizeof *keys), *vals = malloc(n * sizeof *vals);
  if (keys == NULL || vals == NULL) {
    free(keys);
    free(vals);
    return -1;
  }
  for (size_t i = 0; m->keys != NULL && i <= m->mask; i++) {
    if (m->keys[i] == 0)
      continue;
    size_t j = hash64(m->keys[i]) & (n - 1);
    while (keys[j] != 0)
      j = (j + 1) & (n - 1);
    keys[j] = m->keys[i];
    vals[j] = m->vals[i];
  }
  free(m->keys);
  free(m->vals);
  m->keys = keys;
  m->vals = vals;
  m->mask = n - 1;
  return 0;
}

/* The slot for `key`; *found says whether it already holds it. NULL when
 * out of memory. */
static uint64_t *idmap_slot(idmap_t *m, uint64_t key, int *found) {
  if ((m->keys == NULL || (m->used + 1) * 2 > m->mask + 1) && idmap_grow(m))
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
  if (m->keys == NULL)
    return NULL;
  size_t i = hash64(key + 1) & m->mask;
  while (m->keys[i] != 0 && m->keys[i] != key + 1)
    i = (i + 1) & m->mask;
  return m->keys[i] != 0 ? &m->vals[i] : NULL;
}

static void idmap_free(idmap_t *m) {
  free(m->keys);
  free(m->vals);
}

/* ---- growable arrays ---- */

static int reserve(void **v, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap)
    return 0;
  size_t n = *cap ? *cap * 2 : 64;
  while (n < need)
    n *= 2;
  void *w = realloc(*v, n * elem);
  if (w == NULL)
    return -1;
  *v = w;
  *cap = n;
  return 0;
}

/* ---- the builder ---- */

typedef struct builder {
  Profile p;
  size_t cap_strings, cap_functions, cap_locations, cap_samples;
  idmap_t strings_by_hash; /* FNV hash → index + 1 chain head (see intern) */
  size_t *string_next;     /* collision chain per string index */
  size_t cap_string_next;
  idmap_t locations_by_addr;
  idmap_t functions_by_key;
  symbols_t *syms;
  uint8_t *mapping_flags; /* per mapping: 1 functions, 2 files, 4 lines */
  int failed;
} builder_t;

static uint64_t fnv(const char *s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
  return h;
}

/* Index of `s` in the string table, added if new. Equal strings share one
 * index: a hash maps to the newest index with that hash, and string_next
 * chains to older ones with the same hash. */
static int64_t intern(builder_t *b, const char *s) {
  if (s == NULL || *s == '\0')
    return 0;
  int found;
  uint64_t h = fnv(s);
  uint64_t *head = idmap_slot(&b->strings_by_hash, h, &found);
  if (head == NULL)
    return b->failed = 1, 0;
  for (size_t i = found ? *head : 0; found && i != (size_t)-1;
       i = b->string_next[i])
    if (strcmp(b->p.string_table[i], s) == 0)
      return (int64_t)i;
  size_t n = b->p.n_string_table;
  if (reserve((void **)&b->p.string_table, &b->cap_strings, n + 1,
              sizeof(char *)) ||
      reserve((void **)&b->string_next, &b->cap_string_next, n + 1,
              sizeof(size_t)))
    return b->failed = 1, 0;
  char *copy = strdup(s);
  if (copy == NULL)
    return b->failed = 1, 0;
  b->p.string_table[n] = copy;
  b->string_next[n] = found ? *head : (size_t)-1;
  *head = n;
  b->p.n_string_table = n + 1;
  return (int64_t)n;
}

static ValueType *value_type(builder_t *b, const char *type, const char *unit) {
  ValueType *v = malloc(sizeof *v);
  if (v == NULL)
    return b->failed = 1, NULL;
  perftools__profiles__value_type__init(v);
  v->type = intern(b, type);
  v->unit = intern(b, unit);
  return v;
}

static uint64_t function_id(builder_t *b, const char *name, const char *file) {
  int64_t n = intern(b, name), f = intern(b, file);
  int found;
  uint64_t *slot = idmap_slot(&b->functions_by_key, (uint64_t)n << 32 | (uint64_t)f, &found);
  if (slot == NULL)
    return b->failed = 1, 0;
  if (found)
    return *slot;
  size_t i = b->p.n_function;
  Function *fn = malloc(sizeof *fn);
  if (fn == NULL || reserve((void **)&b->p.function, &b->cap_functions, i + 1,
                            sizeof(Function *))) {
    free(fn);
    return b->failed = 1, 0;
  }
  perftools__profiles__function__init(fn);
  fn->id = i + 1;
  fn->name = fn->system_name = n;
  fn->filename = f;
  b->p.function[i] = fn;
  b->p.n_function = i + 1;
  return *slot = fn->id;
}

/* Fills `loc` (address already set) from the symbolizer. */
static void symbolize(builder_t *b, Location *loc, const char **name) {
  symbols_frame_t fr;
  symbols_lookup(b->syms, loc->address, &fr);
  *name = fr.function;
  if (fr.mapping >= 0) {
    loc->mapping_id = (uint64_t)fr.mapping + 1;
    b->mapping_flags[fr.mapping] |= (fr.function ? 1 : 0) |
                                    (fr.file ? 2 : 0) | (fr.line > 0 ? 4 : 0);
  }
  if (fr.function == NULL)
    return;
  Line *line = malloc(sizeof *line);
  loc->line = malloc(sizeof *loc->line);
  if (line == NULL || loc->line == NULL) {
    free(line);
    b->failed = 1;
    return;
  }
  perftools__profiles__line__init(line);
  line->function_id = function_id(b, fr.function, fr.file);
  line->line = fr.line;
  loc->line[0] = line;
  loc->n_line = 1;
}

/* Location id for return address `pc`, made on first sight; *is_new_op
 * says whether the location is in operator new (remembered in the id
 * slot's top bit, so it is looked up once). */
static uint64_t location_id(builder_t *b, uintptr_t pc, int *is_new_op) {
  int found;
  uint64_t addr = pc - 1;
  uint64_t *slot = idmap_slot(&b->locations_by_addr, addr, &found);
  if (slot == NULL)
    return b->failed = 1, 0;
  if (found) {
    *is_new_op = (int)(*slot >> 63);
    return *slot & ~(1ULL << 63);
  }
  size_t i = b->p.n_location;
  Location *loc = malloc(sizeof *loc);
  if (loc == NULL || reserve((void **)&b->p.location, &b->cap_locations, i + 1,
                             sizeof(Location *))) {
    free(loc);
    return b->failed = 1, 0;
  }
  perftools__profiles__location__init(loc);
  loc->id = i + 1;
  loc->address = addr;
  const char *name = NULL;
  if (b->syms != NULL)
    symbolize(b, loc, &name);
  b->p.location[i] = loc;
  b->p.n_location = i + 1;
  /* operator new (_Znwm, _Znam and their nothrow/aligned forms) is an
   * allocator frame like malloc: samples start at its caller. */
  *is_new_op = name != NULL && (strncmp(name, "_Znw", 4) == 0 ||
                                strncmp(name, "_Zna", 4) == 0 ||
                                strncmp(name, "operator new", 12) == 0);
  *slot = loc->id | (uint64_t)*is_new_op << 63;
  return loc->id;
}

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

/* The four values of bucket count `c`, less `base` when given. */
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

static int sample_values(const bucket_count_t *c, const bucket_count_t *base,
                         int64_t v[4]) {
  uint64_t size = c->bucket->size, a0 = base ? base->allocs : 0;
  int64_t rate = c->bucket->rate;
  uint64_t f0 = base ? base->frees : 0;
  int64_t o0, b0;
  pprof_unsample(minus(c->allocs, a0), size, rate, &v[0], &v[1]);
  pprof_inuse(c, &v[2], &v[3]);
  pprof_unsample(minus(a0, f0), size, rate, &o0, &b0);
  v[2] -= o0; /* in-use change over the window: may be negative; both */
  v[3] -= b0; /* sides are ≥ 0, so the difference cannot overflow */
  return v[0] || v[1] || v[2] || v[3];
}

static void add_sample(builder_t *b, const bucket_count_t *c,
                       const bucket_count_t *base, int64_t bytes_key) {
  const bucket_t *bk = c->bucket;
  Sample *s = malloc(sizeof *s);
  uint64_t *ids = malloc((bk->nframes + 1) * sizeof *ids);
  int64_t *vals = malloc(4 * sizeof *vals);
  Label *label = malloc(sizeof *label);
  Label **labels = malloc(sizeof *labels);
  size_t i = b->p.n_sample;
  if (!s || !ids || !vals || !label || !labels ||
      reserve((void **)&b->p.sample, &b->cap_samples, i + 1, sizeof(Sample *))) {
    free(s), free(ids), free(vals), free(label), free(labels);
    b->failed = 1;
    return;
  }
  perftools__profiles__sample__init(s);
  size_t nids = 0;
  int leading = 1;
  for (uint32_t f = 0; f < bk->nframes; f++) {
    int is_new_op = 0;
    uint64_t id = location_id(b, bk->pcs[f], &is_new_op);
    if (leading && is_new_op && f + 1 < bk->nframes)
      continue;
    leading = 0;
    ids[nids++] = id;
  }
  s->location_id = ids;
  s->n_location_id = nids;
  sample_values(c, base, vals);
  s->value = vals;
  s->n_value = 4;
  perftools__profiles__label__init(label);
  label->key = bytes_key;
  label->num = (int64_t)bk->size;
  labels[0] = label;
  s->label = labels;
  s->n_label = 1;
  b->p.sample[i] = s;
  b->p.n_sample = i + 1;
}

static void add_mappings(builder_t *b) {
  size_t n = 0;
  const symbols_mapping_t *m = b->syms ? symbols_mappings(b->syms, &n) : NULL;
  b->mapping_flags = calloc(n + 1, 1);
  b->p.mapping = calloc(n + 1, sizeof(Mapping *));
  if (b->mapping_flags == NULL || b->p.mapping == NULL) {
    b->failed = 1;
    return;
  }
  for (size_t i = 0; i < n; i++) {
    Mapping *mp = malloc(sizeof *mp);
    if (mp == NULL) {
      b->failed = 1;
      return;
    }
    perftools__profiles__mapping__init(mp);
    mp->id = i + 1;
    mp->memory_start = m[i].start;
    mp->memory_limit = m[i].limit;
    mp->file_offset = m[i].offset;
    mp->filename = intern(b, m[i].path);
    mp->build_id = intern(b, m[i].build_id);
    b->p.mapping[i] = mp;
    b->p.n_mapping = i + 1;
  }
}

static void set_mapping_flags(builder_t *b) {
  for (size_t i = 0; i < b->p.n_mapping; i++) {
    Mapping *mp = b->p.mapping[i];
    mp->has_functions = (b->mapping_flags[i] & 1) != 0;
    mp->has_filenames = (b->mapping_flags[i] & 2) != 0;
    mp->has_line_numbers = (b->mapping_flags[i] & 4) != 0;
  }
}

static void set_header(builder_t *b, const pprof_options_t *opt) {
  static const char *types[4][2] = {{"alloc_objects", "count"},
                                    {"alloc_space", "bytes"},
                                    {"inuse_objects", "count"},
                                    {"inuse_space", "bytes"}};
  b->p.sample_type = calloc(4, sizeof(ValueType *));
  if (b->p.sample_type == NULL) {
    b->failed = 1;
    return;
  }
  for (int i = 0; i < 4; i++)
    b->p.sample_type[i] = value_type(b, types[i][0], types[i][1]);
  b->p.n_sample_type = 4;
  b->p.period_type = value_type(b, "space", "bytes");
  b->p.period = opt->rate;
  b->p.time_nanos = opt->time_nanos;
  b->p.duration_nanos = opt->duration_nanos;
  if (opt->allocs_view)
    b->p.default_sample_type = intern(b, "alloc_space");
  b->p.comment = calloc(opt->ncomments + 1, sizeof(int64_t));
  if (b->p.comment == NULL) {
    b->failed = 1;
    return;
  }
  for (size_t i = 0; i < opt->ncomments; i++)
    b->p.comment[i] = intern(b, opt->comments[i]);
  b->p.n_comment = opt->ncomments;
}

static void free_profile(builder_t *b) {
  Profile *p = &b->p;
  for (size_t i = 0; i < p->n_sample; i++) {
    free(p->sample[i]->location_id);
    free(p->sample[i]->value);
    free(p->sample[i]->label[0]);
    free(p->sample[i]->label);
    free(p->sample[i]);
  }
  for (size_t i = 0; i < p->n_location; i++) {
    if (p->location[i]->n_line)
      free(p->location[i]->line[0]);
    free(p->location[i]->line);
    free(p->location[i]);
  }
  for (size_t i = 0; i < p->n_function; i++)
    free(p->function[i]);
  for (size_t i = 0; i < p->n_mapping; i++)
    free(p->mapping[i]);
  for (size_t i = 0; p->sample_type && i < p->n_sample_type; i++)
    free(p->sample_type[i]);
  for (size_t i = 1; i < p->n_string_table; i++)
    free(p->string_table[i]);
  free(p->sample), free(p->location), free(p->function), free(p->mapping);
  free(p->sample_type), free(p->period_type), free(p->comment);
  free(p->string_table), free(b->string_next), free(b->mapping_flags);
  idmap_free(&b->strings_by_hash);
  idmap_free(&b->locations_by_addr);
  idmap_free(&b->functions_by_key);
}

static int pack(builder_t *b, uint8_t **out, size_t *len) {
  size_t n = perftools__profiles__profile__get_packed_size(&b->p);
  uint8_t *buf = malloc(n ? n : 1);
  if (buf == NULL)
    return -1;
  *len = perftools__profiles__profile__pack(&b->p, buf);
  *out = buf;
  return 0;
}

int pprof_encode(const bucket_count_t *counts, size_t n, symbols_t *syms,
                 const pprof_options_t *opt, uint8_t **out, size_t *len) {
  builder_t b;
  memset(&b, 0, sizeof b);
  perftools__profiles__profile__init(&b.p);
  b.syms = syms;
  static char empty[] = "";
  if (reserve((void **)&b.p.string_table, &b.cap_strings, 1, sizeof(char *)) ||
      reserve((void **)&b.string_next, &b.cap_string_next, 1, sizeof(size_t))) {
    free_profile(&b);
    return -1;
  }
  b.p.string_table[0] = empty; /* string_table[0] must be "" */
  b.string_next[0] = (size_t)-1;
  b.p.n_string_table = 1;
  set_header(&b, opt);
  add_mappings(&b);
  int64_t bytes_key = intern(&b, "bytes");
  idmap_t base_index = {0};
  for (size_t i = 0; i < opt->nbase && !b.failed; i++) {
    int found;
    uint64_t *slot = idmap_slot(&base_index, (uintptr_t)opt->base[i].bucket, &found);
    if (slot == NULL)
      b.failed = 1;
    else
      *slot = i;
  }
  for (size_t i = 0; i < n && !b.failed; i++) {
    const bucket_count_t *base = NULL;
    int64_t v[4];
    const uint64_t *at = idmap_find(&base_index, (uintptr_t)counts[i].bucket);
    if (at != NULL)
      base = &opt->base[*at]; /* else: new in the window, counts from zero */
    if (sample_values(&counts[i], base, v))
      add_sample(&b, &counts[i], base, bytes_key);
  }
  idmap_free(&base_index);
  if (!b.failed)
    set_mapping_flags(&b);
  int rc = b.failed ? -1 : pack(&b, out, len);
  free_profile(&b);
  return rc;
}

/* ---- Go's legacy text format ---- */

/* Appends printf output to a growing buffer. */
typedef struct text {
  char *buf;
  size_t len, cap;
  int failed;
} text_t;

static void put(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text_t *t, const char *fmt, ...) {
  for (int tries = 0; tries < 2 && !t->failed; tries++) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      t->failed = 1;
      return;
    }
    if ((size_t)n < t->cap - t->len) {
      t->len += (size_t)n;
      return;
    }
    size_t cap = (t->cap + (size_t)n + 1) * 2;
    char *w = realloc(t->buf, cap);
    if (w == NULL)
      t->failed = 1;
    else
      t->buf = w, t->cap = cap;
  }
}

static void put_maps(text_t *t) {
  FILE *f = fopen("/proc/self/maps", "re");
  char line[4352];
  if (f == NULL)
    return;
  put(t, "\nMAPPED_LIBRARIES:\n");
  while (fgets(line, sizeof line, f) != NULL)
    put(t, "%s", line);
  fclose(f);
}

char *pprof_text(const bucket_count_t *counts, size_t n, symbols_t *syms,
                 int64_t rate, size_t *len) {
  text_t t = {malloc(1 << 16), 0, 1 << 16, 0};
  if (t.buf == NULL)
    return NULL;
  uint64_t io = 0, ib = 0, ao = 0, ab = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t size = counts[i].bucket->size;
    io += counts[i].allocs - counts[i].frees;
    ib += (counts[i].allocs - counts[i].frees) * size;
    ao += counts[i].allocs;
    ab += counts[i].allocs * size;
  }
  put(&t, "heap profile: %llu: %llu [%llu: %llu] @ heap/%lld\n",
      (unsigned long long)io, (unsigned long long)ib, (unsigned long long)ao,
      (unsigned long long)ab, (long long)(2 * rate));
  for (size_t i = 0; i < n; i++) {
    const bucket_t *bk = counts[i].bucket;
    uint64_t live = counts[i].allocs - counts[i].frees;
    put(&t, "%llu: %llu [%llu: %llu] @", (unsigned long long)live,
        (unsigned long long)(live * bk->size),
        (unsigned long long)counts[i].allocs,
        (unsigned long long)(counts[i].allocs * bk->size));
    for (uint32_t f = 0; f < bk->nframes; f++)
      put(&t, " %#llx", (unsigned long long)bk->pcs[f]);
    put(&t, "\n");
    for (uint32_t f = 0; f < bk->nframes && syms != NULL; f++) {
      symbols_frame_t fr;
      symbols_lookup(syms, bk->pcs[f] - 1, &fr);
      if (fr.function == NULL)
        continue;
      put(&t, "#\t%#llx\t%s", (unsigned long long)(bk->pcs[f] - 1), fr.function);
      if (fr.file != NULL)
        put(&t, "\t%s:%lld", fr.file, (long long)fr.line);
      put(&t, "\n");
    }
    put(&t, "\n");
  }
  put_maps(&t);
  if (t.failed) {
    free(t.buf);
    return NULL;
  }
  *len = t.len;
  return t.buf;
}
