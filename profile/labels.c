/*
 * labels — interned label sets and the push tree over them (labels.h).
 *
 * Three tables, each a fixed array of chain heads whose chains only grow
 * at their head: strings, sets and nodes. Only the nodes are read without
 * the lock (every push looks its node up); strings and sets are looked up
 * only while a node is made, under `lock`. A node or set is complete
 * (every field written, the set's strings and the node's set published
 * before it) when a release store puts it on its chain or in its by-id
 * slot, and no field changes afterwards; a reader that acquires the chain
 * head or slot sees all of it.
 *
 * `lock` protects the tables' inserts, the counts and the pool below.
 * It is taken only to make a node, and holds no other lock of heapprof's
 * but the permanent allocator's.
 */
#include "labels.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#define STR_HEADS 1024
#define SET_HEADS 1024
#define NODE_HEADS 4096
/* Strings, sets and nodes are carved from pools of this size: the
 * permanent allocator aligns each request to a cache line, too much to
 * spend per 8-byte string. The largest piece (a full set) is 280 bytes. */
#define POOL_BYTES (64 << 10)

typedef struct label_str {
  struct label_str *next;
  uint64_t hash;
  char s[];
} label_str_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static label_str_t *str_heads[STR_HEADS];
static label_set_t *set_heads[SET_HEADS];
static label_node_t *_Atomic node_heads[NODE_HEADS];
static const label_set_t *_Atomic set_by_id[LABEL_SETS_MAX + 1];
static const label_node_t *_Atomic node_by_id[LABEL_NODES_MAX + 1];
static _Atomic uint32_t nsets, nnodes;
static _Atomic size_t string_bytes;
static char *pool;
static size_t pool_left;
static void *(*_Atomic permanent)(size_t bytes);

void labels_set_memory(void *(*alloc_permanent)(size_t bytes)) {
  atomic_store_explicit(&permanent, alloc_permanent, memory_order_relaxed);
}

/* ---- what a label may be ---- */

int labels_key_ok(const char *key) {
  if (key == NULL)
    return 0;
  size_t n = 0;
  for (; key[n] != '\0'; n++) {
    char c = key[n];
    int alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    if (n == LABEL_KEY_MAX || !(alpha || (n > 0 && c >= '0' && c <= '9')))
      return 0;
  }
  return n > 0 && strcmp(key, "bytes") != 0 && strncmp(key, "__", 2) != 0;
}

/* One UTF-8 sequence at `s` (n bytes left, n ≥ 1): its length, or 0 if
 * it is malformed (overlong, a surrogate, past U+10FFFF, cut short) or a
 * control character (C0, DEL, C1). */
static size_t utf8_char(const unsigned char *s, size_t n) {
  unsigned c = s[0], cp, min;
  size_t k;
  if (c < 0x80)
    return c >= 0x20 && c != 0x7f;
  if (c >= 0xc2 && c <= 0xdf)
    k = 1, cp = c & 0x1f, min = 0xa0; /* U+0080..U+009F are C1 controls */
  else if ((c & 0xf0) == 0xe0)
    k = 2, cp = c & 0x0f, min = 0x800;
  else if (c >= 0xf0 && c <= 0xf4)
    k = 3, cp = c & 0x07, min = 0x10000;
  else
    return 0;
  if (n <= k)
    return 0;
  for (size_t j = 1; j <= k; j++) {
    if ((s[j] & 0xc0) != 0x80)
      return 0;
    cp = cp << 6 | (s[j] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return k + 1;
}

int labels_value_ok(const char *value) {
  if (value == NULL)
    return 0;
  size_t n = strnlen(value, LABEL_VALUE_MAX + 1);
  if (n == 0 || n > LABEL_VALUE_MAX)
    return 0;
  const unsigned char *s = (const unsigned char *)value;
  for (size_t i = 0, k; i < n; i += k)
    if ((k = utf8_char(s + i, n - i)) == 0)
      return 0;
  return 1;
}

/* ---- hashing ---- */

static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdULL;
}

static uint64_t fnv(const char *s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
  return h;
}

static uint64_t node_hash(const label_node_t *at, const char *key,
                          const char *value) {
  return mix(mix(mix(0, (uintptr_t)at), fnv(key)), fnv(value));
}

/* ---- making things (lock held) ----
 *
 * A new node is planned before anything is stored: its strings looked up,
 * its set composed and looked up, every cap checked and the pool made big
 * enough for all its pieces. Only then is anything made, and nothing can
 * fail from there, so a refused push leaves the tables as they were. */

static size_t piece(size_t bytes) { return (bytes + 7) & ~(size_t)7; }

/* Makes room for `bytes` of pieces in the pool: 0, or -1 with errno
 * ENOMEM. What is left of the old pool is abandoned. */
static int reserve_locked(size_t bytes) {
  if (bytes <= pool_left)
    return 0;
  if (bytes > POOL_BYTES) { /* cannot happen: every piece is capped */
    errno = ENOMEM;
    return -1;
  }
  void *(*get)(size_t) = atomic_load_explicit(&permanent, memory_order_relaxed);
  char *p = get != NULL ? get(POOL_BYTES) : NULL;
  if (p == NULL) {
    errno = ENOMEM;
    return -1;
  }
  pool = p, pool_left = POOL_BYTES;
  return 0;
}

/* A piece of zeroed memory reserved before. */
static void *carve_locked(size_t bytes) {
  void *p = pool;
  pool += piece(bytes), pool_left -= piece(bytes);
  return p;
}

static const char *find_str_locked(const char *s, uint64_t h) {
  for (label_str_t *e = str_heads[h % STR_HEADS]; e != NULL; e = e->next)
    if (e->hash == h && strcmp(e->s, s) == 0)
      return e->s;
  return NULL;
}

/* The one copy of `s` (fnv hash `h`), made if it is new. */
static const char *intern_locked(const char *s, uint64_t h) {
  const char *found = find_str_locked(s, h);
  if (found != NULL)
    return found;
  size_t len = strlen(s) + 1;
  label_str_t *e = carve_locked(sizeof *e + len);
  e->hash = h;
  memcpy(e->s, s, len);
  e->next = str_heads[h % STR_HEADS];
  str_heads[h % STR_HEADS] = e;
  atomic_store_explicit(&string_bytes, string_bytes + len, memory_order_relaxed);
  return e->s;
}

/* The pairs of `base` (NULL: none) with `key` set to `value`, sorted by
 * key, into kv: how many (LABELS_PER_SET + 1 at most). */
static uint32_t compose(const label_set_t *base, const char *key,
                        const char *value, const char **kv) {
  uint32_t n = 0, from = base != NULL ? base->n : 0, i = 0;
  for (; i < from && strcmp(base->kv[2 * i], key) < 0; i++, n++)
    kv[2 * n] = base->kv[2 * i], kv[2 * n + 1] = base->kv[2 * i + 1];
  kv[2 * n] = key, kv[2 * n + 1] = value, n++;
  if (i < from && strcmp(base->kv[2 * i], key) == 0)
    i++; /* replaced */
  for (; i < from; i++, n++)
    kv[2 * n] = base->kv[2 * i], kv[2 * n + 1] = base->kv[2 * i + 1];
  return n;
}

/* Sets are compared by their interned strings' addresses. */
static uint64_t set_hash(const char *const *kv, uint32_t n) {
  uint64_t h = n;
  for (uint32_t j = 0; j < 2 * n; j++)
    h = mix(h, (uintptr_t)kv[j]);
  return h;
}

static const label_set_t *find_set_locked(const char *const *kv, uint32_t n) {
  uint64_t h = set_hash(kv, n);
  for (label_set_t *s = set_heads[h % SET_HEADS]; s != NULL; s = s->next)
    if (s->hash == h && s->n == n && memcmp(s->kv, kv, 2 * n * sizeof *kv) == 0)
      return s;
  return NULL;
}

/* A new set of the `n` interned pairs in kv, room reserved. */
static const label_set_t *add_set_locked(const char *const *kv, uint32_t n) {
  uint32_t id = atomic_load_explicit(&nsets, memory_order_relaxed) + 1;
  label_set_t *s = carve_locked(sizeof *s + 2 * n * sizeof *kv);
  s->hash = set_hash(kv, n), s->id = id, s->n = n;
  memcpy(s->kv, kv, 2 * n * sizeof *kv);
  s->next = set_heads[s->hash % SET_HEADS];
  set_heads[s->hash % SET_HEADS] = s;
  atomic_store_explicit(&set_by_id[id], s, memory_order_release);
  atomic_store_explicit(&nsets, id, memory_order_relaxed);
  return s;
}

/* What making the node (at, key, value) needs: 0 with the pool's room
 * reserved and *set the existing set (NULL: one is to be made), or -1
 * with errno ENOSPC (a cap) or ENOMEM. Nothing is stored. */
static int plan_locked(const label_node_t *at, const char *key,
                       const char *value, const label_set_t **set) {
  uint64_t hk = fnv(key), hv = fnv(value);
  const char *k = find_str_locked(key, hk), *v = find_str_locked(value, hv);
  size_t klen = strlen(key) + 1, vlen = strlen(value) + 1;
  int new_v = v == NULL && strcmp(key, value) != 0; /* else shares key's */
  size_t strings = (k ? 0 : klen) + (new_v ? vlen : 0);
  size_t pieces = piece(sizeof(label_node_t)) +
                  (k ? 0 : piece(sizeof(label_str_t) + klen)) +
                  (new_v ? piece(sizeof(label_str_t) + vlen) : 0);
  const char *kv[2 * (LABELS_PER_SET + 1)];
  uint32_t n = compose(at ? labels_set(at->set_id) : NULL, k ? k : key,
                       v ? v : value, kv);
  *set = k && v ? find_set_locked(kv, n) : NULL; /* else a new string's */
  if (*set == NULL)
    pieces += piece(sizeof(label_set_t) + 2 * n * sizeof *kv);
  if (atomic_load_explicit(&nnodes, memory_order_relaxed) >= LABEL_NODES_MAX ||
      string_bytes + strings > LABEL_STRING_BYTES || n > LABELS_PER_SET ||
      (*set == NULL &&
       atomic_load_explicit(&nsets, memory_order_relaxed) >= LABEL_SETS_MAX)) {
    errno = ENOSPC;
    return -1;
  }
  return reserve_locked(pieces);
}

static const label_node_t *find_node(const label_node_t *n,
                                     const label_node_t *at, uint64_t hash,
                                     const char *key, const char *value) {
  for (; n != NULL;
       n = atomic_load_explicit(&n->next, memory_order_acquire))
    if (n->hash == hash && n->parent == at && strcmp(n->key, key) == 0 &&
        strcmp(n->value, value) == 0)
      return n;
  return NULL;
}

static const label_node_t *insert_locked(label_node_t *_Atomic *head,
                                         const label_node_t *at, uint64_t hash,
                                         const char *key, const char *value) {
  label_node_t *first = atomic_load_explicit(head, memory_order_relaxed);
  const label_node_t *found = find_node(first, at, hash, key, value);
  const label_set_t *set;
  if (found != NULL || plan_locked(at, key, value, &set) != 0)
    return found;
  /* Nothing fails from here. */
  const char *k = intern_locked(key, fnv(key));
  const char *v = intern_locked(value, fnv(value));
  if (set == NULL) {
    const char *kv[2 * (LABELS_PER_SET + 1)];
    set = add_set_locked(kv, compose(at ? labels_set(at->set_id) : NULL, k, v, kv));
  }
  uint32_t id = atomic_load_explicit(&nnodes, memory_order_relaxed) + 1;
  label_node_t *n = carve_locked(sizeof *n);
  n->parent = at, n->key = k, n->value = v, n->hash = hash;
  n->set_id = set->id, n->id = id, n->depth = at ? at->depth + 1 : 1;
  atomic_store_explicit(&n->next, first, memory_order_relaxed);
  atomic_store_explicit(&node_by_id[id], n, memory_order_release);
  atomic_store_explicit(head, n, memory_order_release);
  atomic_store_explicit(&nnodes, id, memory_order_relaxed);
  return n;
}

/* ---- the interface ---- */

/* `s` copied into buf (`size` bytes): 1, or 0 if it does not fit. The
 * caller's string is read once, here: another thread may be rewriting it,
 * and every check and copy after this one must see the same bytes. */
static int take(const char *s, char *buf, size_t size) {
  size_t n = strnlen(s, size);
  if (n == size)
    return 0;
  memcpy(buf, s, n);
  buf[n] = '\0';
  return 1;
}

/* A push that finds its node needs no check: a node exists only for a
 * key and value that passed them, under a parent short of the depth cap. */
int labels_push(const label_node_t *at, const char *key_in,
                const char *value_in, int may_insert, const label_node_t **out) {
  char key[LABEL_KEY_MAX + 1], value[LABEL_VALUE_MAX + 1];
  if (key_in == NULL || value_in == NULL || !take(key_in, key, sizeof key) ||
      !take(value_in, value, sizeof value)) {
    errno = EINVAL;
    return -1;
  }
  uint64_t hash = node_hash(at, key, value);
  label_node_t *_Atomic *head = &node_heads[hash % NODE_HEADS];
  const label_node_t *n =
      find_node(atomic_load_explicit(head, memory_order_acquire), at, hash,
                key, value);
  if (n == NULL && (!labels_key_ok(key) || !labels_value_ok(value))) {
    errno = EINVAL;
    return -1;
  }
  if (n == NULL && at != NULL && at->depth >= LABEL_DEPTH_MAX) {
    errno = ENOSPC;
    return -1;
  }
  if (n == NULL && !may_insert) {
    errno = EAGAIN;
    return -1;
  }
  if (n == NULL) {
    pthread_mutex_lock(&lock);
    n = insert_locked(head, at, hash, key, value);
    pthread_mutex_unlock(&lock);
    if (n == NULL)
      return -1;
  }
  *out = n;
  return 0;
}

const label_node_t *labels_node(uint32_t id) {
  return id >= 1 && id <= LABEL_NODES_MAX
             ? atomic_load_explicit(&node_by_id[id], memory_order_acquire)
             : NULL;
}

const label_set_t *labels_set(uint32_t id) {
  return id >= 1 && id <= LABEL_SETS_MAX
             ? atomic_load_explicit(&set_by_id[id], memory_order_acquire)
             : NULL;
}

void labels_usage(size_t *sets, size_t *nodes, size_t *bytes) {
  *sets = atomic_load_explicit(&nsets, memory_order_relaxed);
  *nodes = atomic_load_explicit(&nnodes, memory_order_relaxed);
  *bytes = atomic_load_explicit(&string_bytes, memory_order_relaxed);
}

void labels_fork_prepare(void) { pthread_mutex_lock(&lock); }
void labels_fork_parent(void) { pthread_mutex_unlock(&lock); }
void labels_fork_child(void) { pthread_mutex_init(&lock, NULL); }
