/*
 * test_gomap — checks examples/gomap against a reference model.
 *
 * The model is a universe of key ids 0..U-1 with a present flag and the
 * expected value per id: trivially correct, so every disagreement is the
 * map's. Randomised operation sequences (fixed seed) run over uint64 keys,
 * C-string keys and uint64 keys under a deliberately weak hash (long
 * overflow chains), through several doublings, with full checks while an
 * evacuation is half done. Then every key is deleted and the bytes held by
 * buckets must not change. Exit status 0 means pass; a failure prints the
 * line and the disagreement on stderr and exits 1.
 */
#include "gomap.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static void fail(int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

static void fail(int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "test_gomap.c:%d: FAIL: ", line);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond))                                                               \
      fail(__LINE__, __VA_ARGS__);                                             \
  } while (0)

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n, size);
  CHECK(p != NULL, "test allocation of %zu x %zu bytes", n, size);
  return p;
}

/* splitmix64: the fixed-seed generator for every random choice. */
static uint64_t rnd(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static size_t rnd_below(uint64_t *state, size_t n) {
  return (size_t)(rnd(state) % n);
}

/* --- Key kinds: how an id becomes key bytes and back --- */

typedef struct kind {
  const char *name;
  gomap_type_t type;
  size_t universe;
  int ncopies; /* distinct key objects per id (strings: two copies) */
  void (*make_key)(size_t id, int copy, void *out);
  /* The id of stored key bytes, and which copy they point to. */
  size_t (*id_of)(const void *key, int *copy);
} kind_t;

/* uint64 keys: id * K, inverted by multiplying with K^-1 mod 2^64. */
static const uint64_t K = 0x9e3779b97f4a7c15ULL;
static uint64_t k_inverse;

static void init_k_inverse(void) {
  uint64_t x = K; /* correct to 3 bits; each step doubles that */
  for (int i = 0; i < 5; i++)
    x *= 2 - K * x;
  CHECK(K * x == 1, "K inverse");
  k_inverse = x;
}

static void u64_key(size_t id, int copy, void *out) {
  (void)copy;
  uint64_t k = (uint64_t)id * K;
  memcpy(out, &k, sizeof k);
}

static size_t u64_id(const void *key, int *copy) {
  uint64_t k;
  memcpy(&k, key, sizeof k);
  *copy = 0;
  return (size_t)(k * k_inverse);
}

/* Only 4 distinct hashes: every key lands in one of 4 long chains. */
static uint64_t weak_hash(const void *key, uint64_t seed) {
  uint64_t k;
  memcpy(&k, key, sizeof k);
  k &= 3;
  return gomap_hash_u64(&k, seed);
}

/* C-string keys: "" for id 0, else one of four prefixes and the decimal
 * id, so lengths vary; two separately allocated copies of each string
 * tell content equality from pointer equality. */
static const char *str_prefix[4] = {"", "k", "key-",
                                    "a-longer-prefix-that-spans-words/"};
static char **strs[2];
static char *str_pool[2];
static size_t str_pool_bytes;

static void init_strings(size_t n) {
  size_t cap = n * 48;
  for (int c = 0; c < 2; c++) {
    strs[c] = xcalloc(n, sizeof *strs[c]);
    str_pool[c] = xcalloc(cap, 1);
    size_t used = 0;
    for (size_t id = 0; id < n; id++) {
      strs[c][id] = str_pool[c] + used;
      if (id > 0)
        used += (size_t)sprintf(strs[c][id], "%s%zu", str_prefix[id % 4], id);
      used++;
    }
    str_pool_bytes = used;
  }
}

static void str_key(size_t id, int copy, void *out) {
  const char *s = strs[copy][id];
  memcpy(out, &s, sizeof s);
}

static size_t str_id(const void *key, int *copy) {
  const char *s;
  memcpy(&s, key, sizeof s);
  *copy = s >= str_pool[1] && s < str_pool[1] + str_pool_bytes;
  size_t len = strlen(s), i = len;
  while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9')
    i--;
  return len == 0 ? 0 : strtoull(s + i, NULL, 10);
}

/* --- The model --- */

typedef struct model {
  const kind_t *kind;
  gomap_t *m;
  uint8_t *present;
  uint8_t *copy; /* which key object was inserted last */
  uint8_t *seen; /* scratch for verify() */
  uint64_t *value;
  size_t count;
  uint64_t rng;
} model_t;

static void model_init(model_t *md, const kind_t *kind, uint64_t seed) {
  size_t u = kind->universe;
  *md = (model_t){.kind = kind, .rng = seed};
  md->m = gomap_new(&kind->type, 0);
  CHECK(md->m != NULL, "%s: gomap_new", kind->name);
  md->present = xcalloc(u, 1);
  md->copy = xcalloc(u, 1);
  md->seen = xcalloc(u, 1);
  md->value = xcalloc(u, sizeof *md->value);
}

static void model_free(model_t *md) {
  gomap_free(md->m);
  free(md->present);
  free(md->copy);
  free(md->seen);
  free(md->value);
}

static int pick_copy(model_t *md) {
  return md->kind->ncopies > 1 ? (int)(rnd(&md->rng) & 1) : 0;
}

static void check_lookup(model_t *md, size_t id) {
  unsigned char key[8];
  md->kind->make_key(id, pick_copy(md), key);
  const void *p = gomap_lookup(md->m, key);
  if (!md->present[id]) {
    CHECK(p == NULL, "%s: lookup of absent id %zu found a value",
          md->kind->name, id);
    return;
  }
  CHECK(p != NULL, "%s: lookup of present id %zu missed", md->kind->name, id);
  uint64_t v;
  memcpy(&v, p, sizeof v);
  CHECK(v == md->value[id], "%s: id %zu value %" PRIx64 " want %" PRIx64,
        md->kind->name, id, v, md->value[id]);
}

static void op_insert(model_t *md, size_t id) {
  unsigned char key[8];
  int copy = pick_copy(md);
  uint64_t v = rnd(&md->rng);
  md->kind->make_key(id, copy, key);
  int rc = gomap_insert(md->m, key, &v);
  CHECK(rc == 0, "%s: insert id %zu returned %d", md->kind->name, id, rc);
  md->count += !md->present[id];
  md->present[id] = 1;
  md->copy[id] = (uint8_t)copy;
  md->value[id] = v;
  check_lookup(md, id);
}

static void op_delete(model_t *md, size_t id) {
  unsigned char key[8];
  md->kind->make_key(id, pick_copy(md), key);
  bool was = gomap_delete(md->m, key);
  CHECK(was == md->present[id], "%s: delete id %zu returned %d, want %d",
        md->kind->name, id, was, md->present[id]);
  md->count -= was;
  md->present[id] = 0;
  check_lookup(md, id);
}

/* One random operation on a random id: insert (new or overwrite), delete
 * (present or absent) or lookup, with the percentages given. */
static void random_op(model_t *md, unsigned insert_pct, unsigned delete_pct) {
  size_t id = rnd_below(&md->rng, md->kind->universe);
  unsigned r = (unsigned)rnd_below(&md->rng, 100);
  if (r < insert_pct)
    op_insert(md, id);
  else if (r < insert_pct + delete_pct)
    op_delete(md, id);
  else
    check_lookup(md, id);
  CHECK(gomap_len(md->m) == md->count, "%s: len %zu want %zu",
        md->kind->name, gomap_len(md->m), md->count);
}

/* Iteration yields each present id once with its value and last-inserted
 * key object, and nothing else; then every present id and a sample of
 * others are looked up. */
static void verify(model_t *md) {
  const kind_t *k = md->kind;
  memset(md->seen, 0, k->universe);
  gomap_iter_t it;
  const void *key;
  void *val;
  size_t n = 0;
  gomap_iter_init(&it, md->m);
  while (gomap_iter_next(&it, &key, &val)) {
    int copy;
    size_t id = k->id_of(key, &copy);
    CHECK(id < k->universe && md->present[id],
          "%s: iteration yielded absent id %zu", k->name, id);
    CHECK(!md->seen[id], "%s: iteration yielded id %zu twice", k->name, id);
    CHECK(copy == md->copy[id], "%s: id %zu holds an old key object",
          k->name, id);
    uint64_t v;
    memcpy(&v, val, sizeof v);
    CHECK(v == md->value[id], "%s: iteration value of id %zu", k->name, id);
    md->seen[id] = 1;
    n++;
  }
  CHECK(n == md->count, "%s: iteration yielded %zu entries, want %zu",
        k->name, n, md->count);
  for (size_t id = 0; id < k->universe; id++)
    if (md->present[id])
      check_lookup(md, id);
  for (size_t i = 0; i < k->universe / 64; i++)
    check_lookup(md, rnd_below(&md->rng, k->universe));
}

static gomap_stats_t stats_of(const gomap_t *m) {
  gomap_stats_t s;
  gomap_stats(m, &s);
  CHECK(s.array_bytes == (s.nbuckets + s.old_nbuckets) * s.bucket_bytes,
        "stats: array_bytes");
  CHECK(s.overflow_bytes ==
            (s.overflow_in_use + s.overflow_free) * s.bucket_bytes,
        "stats: overflow_bytes");
  CHECK(s.growing == (s.old_nbuckets != 0), "stats: growing flag");
  CHECK(!s.growing || s.old_nbuckets * 2 == s.nbuckets, "stats: old size");
  CHECK(s.evacuated <= s.old_nbuckets, "stats: evacuated");
  CHECK(s.count == gomap_len(m), "stats: count");
  return s;
}

/* --- Scenarios --- */

typedef struct growth_report {
  unsigned doublings;      /* times B changed */
  unsigned midway_checks;  /* full verify() runs with evacuation half done */
  size_t ops_while_growing;
} growth_report_t;

/* Random operations until `target` keys are live. Whenever an evacuation
 * is at least half done, and the stats say it is still under way, the
 * whole map is verified once for that doubling. */
static growth_report_t grow_to(model_t *md, size_t target, unsigned ins,
                               unsigned del) {
  growth_report_t r = {0};
  unsigned lg = stats_of(md->m).lg_buckets;
  bool checked = false;
  while (md->count < target) {
    gomap_stats_t s = stats_of(md->m);
    if (s.lg_buckets != lg) {
      r.doublings++;
      lg = s.lg_buckets;
      checked = false;
    }
    if (s.growing) {
      r.ops_while_growing++;
      if (!checked && s.evacuated * 2 >= s.old_nbuckets) {
        verify(md);
        CHECK(stats_of(md->m).growing, "verify() must not end a growth");
        r.midway_checks++;
        checked = true;
      }
    }
    random_op(md, ins, del);
  }
  return r;
}

/* Overwrites random present keys until the growth under way ends. */
static void finish_growth(model_t *md) {
  while (stats_of(md->m).growing) {
    size_t id = rnd_below(&md->rng, md->kind->universe);
    if (md->present[id])
      op_insert(md, id);
  }
}

/* Deletes every present id in random order: len reaches 0, the map looks
 * empty, and the bytes held by buckets do not change. */
static void delete_all(model_t *md) {
  const char *name = md->kind->name;
  finish_growth(md);
  gomap_stats_t before = stats_of(md->m);
  size_t n = 0, *ids = xcalloc(md->count, sizeof *ids);
  for (size_t id = 0; id < md->kind->universe; id++)
    if (md->present[id])
      ids[n++] = id;
  for (size_t i = n; i > 1; i--) {
    size_t j = rnd_below(&md->rng, i), t = ids[i - 1];
    ids[i - 1] = ids[j];
    ids[j] = t;
  }
  for (size_t i = 0; i < n; i++) {
    op_delete(md, ids[i]);
    if (i % 64 == 0)
      check_lookup(md, rnd_below(&md->rng, md->kind->universe));
  }
  free(ids);
  gomap_stats_t after = stats_of(md->m);
  CHECK(after.count == 0 && gomap_len(md->m) == 0, "%s: len after deletes",
        name);
  CHECK(!after.growing && after.nbuckets == before.nbuckets,
        "%s: deletes changed the table", name);
  CHECK(after.array_bytes == before.array_bytes &&
            after.overflow_bytes == before.overflow_bytes,
        "%s: bucket bytes %zu+%zu became %zu+%zu", name, before.array_bytes,
        before.overflow_bytes, after.array_bytes, after.overflow_bytes);
  verify(md);
}

static void run_random(const kind_t *kind, size_t target, unsigned min_lg,
                       uint64_t seed) {
  model_t md;
  model_init(&md, kind, seed);
  growth_report_t r = grow_to(&md, target, 70, 15);
  gomap_stats_t s = stats_of(md.m);
  CHECK(s.lg_buckets >= min_lg, "%s: B %u < %u", kind->name, s.lg_buckets,
        min_lg);
  CHECK(r.doublings == s.lg_buckets, "%s: %u doublings for B %u", kind->name,
        r.doublings, s.lg_buckets);
  /* Doublings from 2^(B-1) >= 4 buckets last more than one operation. */
  CHECK(r.midway_checks >= s.lg_buckets - 2, "%s: only %u midway checks",
        kind->name, r.midway_checks);
  verify(&md);
  /* Churn at a steady size: mixes deletes into partly empty chains. */
  for (int i = 0; i < 100000; i++)
    random_op(&md, 50, 50);
  verify(&md);
  delete_all(&md);
  printf("%-6s %zu keys, B=%u, %u doublings, %u checks midway, "
         "%zu ops during evacuation: ok\n",
         kind->name, target, s.lg_buckets, r.doublings, r.midway_checks,
         r.ops_while_growing);
  model_free(&md);
}

/* Long chains: the weak hash puts every key into one of 4 chains, so
 * overflow buckets, the EMPTY_REST walk across buckets and the "too many
 * overflow buckets" growth all get exercised. */
static void run_weak(const kind_t *kind) {
  model_t md;
  model_init(&md, kind, 7);
  for (int round = 0; round < 40; round++) {
    unsigned ins = round % 4 == 3 ? 20 : 60;
    for (int i = 0; i < 1000; i++)
      random_op(&md, ins, 100 - ins - 10);
    verify(&md);
  }
  gomap_stats_t s = stats_of(md.m);
  CHECK(s.overflow_in_use > 100, "weak: only %zu overflow buckets",
        s.overflow_in_use);
  delete_all(&md);
  printf("weak   %zu ids, B=%u, %zu overflow buckets: ok\n", kind->universe,
         s.lg_buckets, s.overflow_in_use + s.overflow_free);
  model_free(&md);
}

/* The second growth trigger: keys move from chain to chain (fill one
 * hash class, delete it, fill the next), so emptied overflow buckets pile
 * up while len never passes 400, which 2^6 buckets hold at load 6.5. The
 * map must still double, on "too many overflow buckets". */
static void run_overflow_growth(const kind_t *weak) {
  const size_t n = 400;
  gomap_t *m = gomap_new(&weak->type, 0);
  CHECK(m != NULL, "overflow growth: gomap_new");
  unsigned char key[8];
  for (size_t round = 0; round < 8; round++) {
    size_t first = 4 * n * round + round % 4; /* id % 4 picks the class */
    for (size_t id = first; id < first + 4 * n; id += 4) {
      weak->make_key(id, 0, key);
      CHECK(gomap_insert(m, key, &id) == 0, "overflow growth: insert");
    }
    CHECK(gomap_len(m) == n, "overflow growth: len %zu", gomap_len(m));
    for (size_t id = first; id < first + 4 * n; id += 4) {
      weak->make_key(id, 0, key);
      size_t *v = gomap_lookup(m, key);
      CHECK(v != NULL && *v == id, "overflow growth: id %zu", id);
      CHECK(gomap_delete(m, key), "overflow growth: delete %zu", id);
    }
  }
  gomap_stats_t s = stats_of(m);
  CHECK(s.lg_buckets > 6, "overflow growth: still B=%u", s.lg_buckets);
  printf("overflow-trigger: len <= %zu, B grew to %u: ok\n", n, s.lg_buckets);
  gomap_free(m);
}

/* The showcase: 1,000,000 uint64 -> uint64 entries, all deleted, then a
 * rebuild. Prints the figures. */
static void run_showcase(void) {
  const size_t n = 1000000;
  gomap_type_t t = gomap_type_u64(sizeof(uint64_t));
  gomap_t *m = gomap_new(&t, 0);
  CHECK(m != NULL, "showcase: gomap_new");
  for (uint64_t k = 0; k < n; k++)
    CHECK(gomap_insert_u64(m, k, &k) == 0, "showcase: insert %" PRIu64, k);
  gomap_stats_t full = stats_of(m);
  CHECK(!full.growing && full.count == n, "showcase: state at 1M");
  for (uint64_t k = 0; k < n; k++)
    CHECK(gomap_delete_u64(m, k), "showcase: delete %" PRIu64, k);
  gomap_stats_t empty = stats_of(m);
  CHECK(empty.count == 0 && empty.array_bytes == full.array_bytes &&
            empty.overflow_bytes == full.overflow_bytes,
        "showcase: deletes changed the bytes held");
  /* Refilling reuses the same slots: no byte more. */
  for (uint64_t k = 0; k < n; k++)
    CHECK(gomap_insert_u64(m, k, &k) == 0, "showcase: reinsert");
  gomap_stats_t refill = stats_of(m);
  CHECK(refill.array_bytes == full.array_bytes &&
            refill.overflow_bytes == full.overflow_bytes,
        "showcase: refill took new memory");
  for (uint64_t k = 10; k < n; k++)
    CHECK(gomap_delete_u64(m, k), "showcase: delete %" PRIu64, k);
  /* A rebuild copies the 10 survivors into a right-sized map. */
  gomap_t *r = gomap_new(&t, gomap_len(m));
  CHECK(r != NULL, "showcase: rebuild map");
  gomap_iter_t it;
  const void *key;
  void *val;
  gomap_iter_init(&it, m);
  while (gomap_iter_next(&it, &key, &val))
    CHECK(gomap_insert(r, key, val) == 0, "showcase: rebuild insert");
  gomap_stats_t rebuilt = stats_of(r);
  CHECK(rebuilt.count == 10 && rebuilt.array_bytes + rebuilt.overflow_bytes <
                                   1024,
        "showcase: rebuilt map holds %zu bytes", rebuilt.array_bytes);
  for (uint64_t k = 0; k < 10; k++) {
    uint64_t *v = gomap_lookup_u64(r, k);
    CHECK(v != NULL && *v == k, "showcase: rebuilt key %" PRIu64, k);
  }
  printf("showcase 1M uint64->uint64: B=%u, arrays %zu bytes + overflow %zu "
         "bytes (%zu in use, %zu free) full; after deleting all: %zu + %zu "
         "bytes, len %zu; rebuilt with 10 keys: %zu + %zu bytes\n",
         full.lg_buckets, full.array_bytes, full.overflow_bytes,
         full.overflow_in_use, full.overflow_free, empty.array_bytes,
         empty.overflow_bytes, empty.count, rebuilt.array_bytes,
         rebuilt.overflow_bytes);
  gomap_free(r);
  gomap_free(m);
}

/* --- Small cases --- */

static void run_edges(void) {
  gomap_type_t t = gomap_type_u64(sizeof(uint64_t));
  gomap_type_t bad = t;
  bad.key_size = 0;
  errno = 0;
  CHECK(gomap_new(&bad, 0) == NULL && errno == EINVAL, "bad type accepted");

  /* Empty map: nothing allocated, nothing found. */
  gomap_t *m = gomap_new(&t, 0);
  CHECK(m != NULL, "gomap_new");
  gomap_stats_t s = stats_of(m);
  CHECK(s.array_bytes == 0 && s.overflow_bytes == 0, "empty map holds bytes");
  CHECK(gomap_lookup_u64(m, 1) == NULL && !gomap_delete_u64(m, 1),
        "empty map found a key");
  gomap_iter_t it;
  gomap_iter_init(&it, m);
  CHECK(!gomap_iter_next(&it, NULL, NULL), "empty map iterated");

  /* NULL value stores zeroes; overwrite keeps len. */
  uint64_t nine = 9;
  CHECK(gomap_insert_u64(m, 5, NULL) == 0, "insert NULL value");
  uint64_t *v = gomap_lookup_u64(m, 5);
  CHECK(v != NULL && *v == 0, "NULL value not zero");
  CHECK(gomap_insert_u64(m, 5, &nine) == 0 && gomap_len(m) == 1 &&
            *(uint64_t *)gomap_lookup_u64(m, 5) == 9,
        "overwrite");

  /* Reset gives every byte back and leaves a usable map. */
  for (uint64_t k = 0; k < 5000; k++)
    CHECK(gomap_insert_u64(m, k, &k) == 0, "insert before reset");
  gomap_reset(m);
  s = stats_of(m);
  CHECK(s.count == 0 && s.array_bytes == 0 && s.overflow_bytes == 0,
        "reset kept bytes");
  CHECK(gomap_lookup_u64(m, 7) == NULL, "reset kept a key");
  CHECK(gomap_insert_u64(m, 7, &nine) == 0 && gomap_len(m) == 1,
        "insert after reset");
  gomap_free(m);
  gomap_free(NULL);

  /* A set: value_size 0. */
  gomap_type_t st = gomap_type_str(0);
  gomap_t *set = gomap_new(&st, 0);
  CHECK(set != NULL, "set");
  CHECK(gomap_insert_str(set, "a", NULL) == 0 &&
            gomap_insert_str(set, "b", NULL) == 0,
        "set insert");
  char a[] = "a";
  CHECK(gomap_lookup_str(set, a) != NULL && gomap_lookup_str(set, "c") == NULL,
        "set lookup");
  CHECK(gomap_delete_str(set, a) && gomap_len(set) == 1, "set delete");
  gomap_free(set);

  /* A hint sizes the array up front: 1M inserts never grow. */
  m = gomap_new(&t, 1000000);
  CHECK(m != NULL, "hinted map");
  unsigned lg = stats_of(m).lg_buckets;
  CHECK(lg == 18, "hint 1M gave B=%u", lg);
  for (uint64_t k = 0; k < 1000000; k += 1)
    CHECK(gomap_insert_u64(m, k * K, &k) == 0, "hinted insert");
  s = stats_of(m);
  CHECK(s.lg_buckets == lg && !s.growing, "hinted map grew");
  gomap_free(m);
  printf("edges: ok\n");
}

/* Allocation failure: with the address space capped, inserts fail with
 * -ENOMEM once a doubling cannot get its array, and the map keeps every
 * key it had. Uncapped again, it carries on. */
static size_t vm_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  CHECK(f != NULL, "cannot open /proc/self/statm");
  unsigned long pages = 0;
  CHECK(fscanf(f, "%lu", &pages) == 1, "cannot read /proc/self/statm");
  fclose(f);
  return pages * (size_t)sysconf(_SC_PAGESIZE);
}

static void check_keys(gomap_t *m, uint64_t lo, uint64_t hi) {
  CHECK(gomap_len(m) == hi - lo, "enomem: len %zu want %" PRIu64,
        gomap_len(m), hi - lo);
  for (uint64_t k = lo; k < hi; k++) {
    uint64_t *v = gomap_lookup_u64(m, k);
    CHECK(v != NULL && *v == k, "enomem: key %" PRIu64 " lost", k);
  }
}

static void run_enomem(void) {
#ifdef __SANITIZE_ADDRESS__
  fprintf(stderr, "test_gomap: NOTE: the -ENOMEM scenario is not run under "
                  "AddressSanitizer, whose shadow memory defeats RLIMIT_AS\n");
  return;
#endif
  gomap_type_t t = gomap_type_u64(sizeof(uint64_t));
  gomap_t *m = gomap_new(&t, 0);
  CHECK(m != NULL, "enomem: gomap_new");
  struct rlimit saved, capped;
  CHECK(getrlimit(RLIMIT_AS, &saved) == 0, "getrlimit");
  capped = saved;
  capped.rlim_cur = vm_bytes() + (8u << 20);
  CHECK(capped.rlim_cur <= saved.rlim_max, "RLIMIT_AS hard limit too low");
  CHECK(setrlimit(RLIMIT_AS, &capped) == 0, "setrlimit");
  uint64_t n = 0;
  int rc = 0;
  while (n < 10000000 && (rc = gomap_insert_u64(m, n, &n)) == 0)
    n++;
  CHECK(rc == -ENOMEM, "enomem: insert %" PRIu64 " returned %d", n, rc);
  check_keys(m, 0, n);
  CHECK(gomap_lookup_u64(m, n) == NULL, "enomem: failed insert left a key");
  CHECK(gomap_delete_u64(m, 0), "enomem: delete under the cap");
  CHECK(setrlimit(RLIMIT_AS, &saved) == 0, "setrlimit restore");
  CHECK(gomap_insert_u64(m, 0, &(uint64_t){0}) == 0, "enomem: reinsert");
  for (uint64_t k = n; k < 2 * n; k++)
    CHECK(gomap_insert_u64(m, k, &k) == 0, "enomem: insert after the cap");
  check_keys(m, 0, 2 * n);
  printf("enomem: %" PRIu64 " keys fit under an 8 MiB cap, then -ENOMEM, "
         "map intact: ok\n",
         n);
  gomap_free(m);
}

int main(void) {
  clock_t start = clock();
  init_k_inverse();
  run_edges();
  run_enomem();
  run_showcase();

  kind_t u64 = {"u64", gomap_type_u64(sizeof(uint64_t)), 1u << 21, 1,
                u64_key, u64_id};
  run_random(&u64, 1000000, 18, 1);

  init_strings(300000);
  kind_t str = {"str", gomap_type_str(sizeof(uint64_t)), 300000, 2, str_key,
                str_id};
  run_random(&str, 200000, 15, 2);

  kind_t weak = {"weak",
                 {sizeof(uint64_t), sizeof(uint64_t), weak_hash,
                  gomap_equal_u64},
                 3000, 1, u64_key, u64_id};
  run_weak(&weak);
  run_overflow_growth(&weak);

  for (int c = 0; c < 2; c++) {
    free(strs[c]);
    free(str_pool[c]);
  }
  printf("test_gomap: all passed in %.2f s CPU\n",
         (double)(clock() - start) / CLOCKS_PER_SEC);
  return 0;
}
