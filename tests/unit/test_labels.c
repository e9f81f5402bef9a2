/*
 * test_labels — profile/labels.{h,c}: the push tree and its interned label
 * sets, with no interposer.
 *
 *   test_labels           nesting and replacing, one set for one content
 *                         whatever the push order, interning and copying,
 *                         every rule of labels_key_ok / labels_value_ok,
 *                         the per-set and depth caps, may_insert, lookups
 *                         by id
 *   test_labels threads   threads pushing the same paths at once (and a
 *                         reader walking the nodes by id meanwhile): one
 *                         node per (parent, key, value), tables consistent
 *   test_labels sets | nodes | strings | nomem
 *                         one process-wide limit each: what a table holds
 *                         is never given back, so a process can be brought
 *                         to one cap only, and these run as their own
 *                         processes (CTest entries) to starve no other test
 *
 * "Nothing changes" after a refused push means: the same counts of sets,
 * nodes and string bytes (labels_usage), no node or set behind the next
 * id, and every node made before still found.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "labels.h"
#include "testlib.h"
#include "unit_heap.h"

/* ---- helpers ---- */

typedef struct usage {
  size_t sets, nodes, bytes;
} usage_t;

static usage_t usage(void) {
  usage_t u;
  labels_usage(&u.sets, &u.nodes, &u.bytes);
  return u;
}

static const label_node_t *push(const label_node_t *at, const char *key,
                                const char *value) {
  const label_node_t *n = NULL;
  errno = 0;
  int rc = labels_push(at, key, value, 1, &n);
  CHECK(rc == 0 && n != NULL, "push %s=%.40s on node %u: rc %d errno %d", key,
        value, at ? at->id : 0, rc, errno);
  return n;
}

/* A push that must be refused with `err` and change nothing. */
static void refused(const label_node_t *at, const char *key,
                    const char *value, int may_insert, int err,
                    const char *why) {
  usage_t before = usage();
  const label_node_t *out = (const label_node_t *)&out; /* must stay put */
  errno = 0;
  int rc = labels_push(at, key, value, may_insert, &out);
  int got = errno;
  usage_t after = usage();
  CHECK(rc == -1 && got == err, "%s: push %.40s=%.40s gave rc %d errno %d, "
        "want -1 errno %d", why, key ? key : "(null)",
        value ? value : "(null)", rc, got, err);
  CHECK(out == (const label_node_t *)&out, "%s: *out written on failure", why);
  CHECK(after.sets == before.sets && after.nodes == before.nodes &&
            after.bytes == before.bytes,
        "%s: a refused push changed the tables: sets %zu→%zu, nodes "
        "%zu→%zu, string bytes %zu→%zu", why, before.sets, after.sets,
        before.nodes, after.nodes, before.bytes, after.bytes);
  CHECK(labels_node((uint32_t)after.nodes + 1) == NULL &&
            labels_set((uint32_t)after.sets + 1) == NULL,
        "%s: a node or set behind the next id", why);
}

/* Set `id` holds exactly the pairs kv[0..2n), given sorted by key. */
static void check_set(uint32_t id, const char *const *kv, uint32_t n,
                      const char *why) {
  const label_set_t *s = labels_set(id);
  CHECK(s != NULL && s->id == id, "%s: no set %u", why, id);
  CHECK(s->n == n, "%s: set %u has %u labels, want %u", why, id, s->n, n);
  for (uint32_t i = 0; i < 2 * n; i++)
    CHECK(strcmp(s->kv[i], kv[i]) == 0, "%s: set %u item %u is %s, want %s",
          why, id, i, s->kv[i], kv[i]);
}

/* ---- nesting, sharing, interning ---- */

static void nesting_test(void) {
  const label_node_t *a1 = push(NULL, "a", "1");
  const label_node_t *b2 = push(a1, "b", "2");
  const label_node_t *a3 = push(b2, "a", "3");
  check_set(a1->set_id, (const char *[]){"a", "1"}, 1, "push a=1");
  check_set(b2->set_id, (const char *[]){"a", "1", "b", "2"}, 2, "then b=2");
  check_set(a3->set_id, (const char *[]){"a", "3", "b", "2"}, 2,
            "then a=3 replaces a");
  /* Popping is following the parent: the sets in force before. */
  CHECK(a3->parent == b2 && b2->parent == a1 && a1->parent == NULL,
        "parent chain");
  CHECK(a1->depth == 1 && b2->depth == 2 && a3->depth == 3, "depths %u %u %u",
        a1->depth, b2->depth, a3->depth);
  CHECK(strcmp(a3->key, "a") == 0 && strcmp(a3->value, "3") == 0 &&
            strcmp(b2->key, "b") == 0 && strcmp(b2->value, "2") == 0,
        "a node names its own push");
  check_set(a3->parent->set_id, (const char *[]){"a", "1", "b", "2"}, 2,
            "a3's parent after the replace");
  check_set(a3->parent->parent->set_id, (const char *[]){"a", "1"}, 1,
            "a3's grandparent");
  CHECK(a1->set_id != b2->set_id && b2->set_id != a3->set_id &&
            a1->set_id != a3->set_id,
        "three contents, three sets");

  /* The same step again is the same node; a step is (parent, key, value). */
  CHECK(push(NULL, "a", "1") == a1 && push(a1, "b", "2") == b2 &&
            push(b2, "a", "3") == a3,
        "pushing a known step made a new node");
  CHECK(push(NULL, "b", "2") != b2, "(root, b, 2) is not (a1, b, 2)");

  /* One content, one set, whatever order reached it. */
  const label_node_t *o1 = push(push(NULL, "b", "2"), "a", "1");
  CHECK(o1 != b2 && o1->set_id == b2->set_id,
        "b=2 then a=1 must reach {a=1,b=2}'s set (%u), got %u", b2->set_id,
        o1->set_id);
  const label_node_t *o3 = push(push(NULL, "b", "2"), "a", "3");
  CHECK(o3->set_id == a3->set_id, "{a=3,b=2} by two paths, two sets");
  const label_node_t *same = push(a1, "a", "1");
  CHECK(same != a1 && same->depth == 2 && same->set_id == a1->set_id,
        "re-pushing the pair in force: a new position, the same set");
  const label_node_t *back = push(push(a1, "a", "9"), "a", "1");
  CHECK(back->set_id == a1->set_id, "a=1, a=9, a=1 is {a=1}");

  /* Sorted by key as strcmp orders bytes: upper case, '_', lower case. */
  const label_node_t *m = push(push(push(push(NULL, "zone", "z"), "Tier", "t"),
                                    "_x", "u"),
                               "app", "w");
  check_set(m->set_id,
            (const char *[]){"Tier", "t", "_x", "u", "app", "w", "zone", "z"},
            4, "four keys pushed unsorted");
  const label_node_t *m2 = push(push(push(push(NULL, "app", "w"), "_x", "u"),
                                     "zone", "z"),
                                "Tier", "t");
  CHECK(m2 != m && m2->set_id == m->set_id,
        "four keys in another order: another set (%u, %u)", m->set_id,
        m2->set_id);
  printf("nesting: replace, parents, one set per content\n");
}

static void interning_test(void) {
  char key[LABEL_KEY_MAX + 1], value[LABEL_VALUE_MAX + 1];
  strcpy(key, "copied_key");
  strcpy(value, "copied value");
  const label_node_t *n = push(NULL, key, value);
  CHECK(n->key != key && n->value != value, "the caller's buffers kept");
  /* The caller may reuse its buffers at once. */
  memset(key, 'q', LABEL_KEY_MAX);
  key[LABEL_KEY_MAX] = '\0';
  memset(value, '?', LABEL_VALUE_MAX);
  value[LABEL_VALUE_MAX] = '\0';
  const label_set_t *s = labels_set(n->set_id);
  CHECK(strcmp(n->key, "copied_key") == 0 &&
            strcmp(n->value, "copied value") == 0 && s->n == 1 &&
            strcmp(s->kv[0], "copied_key") == 0 &&
            strcmp(s->kv[1], "copied value") == 0,
        "overwriting the caller's strings changed a label: %s=%s", n->key,
        n->value);
  CHECK(n == push(NULL, "copied_key", "copied value"),
        "the node is found by its content, not by the caller's address");

  /* Equal strings, one address: across nodes, sets, keys and values. */
  char k2[] = "copied_key", v2[] = "copied value";
  const label_node_t *x = push(NULL, "other", v2);
  const label_node_t *y = push(x, k2, "w");
  const label_set_t *sy = labels_set(y->set_id);
  CHECK(x->value == n->value && y->key == n->key,
        "equal strings interned twice (%p %p, %p %p)", (const void *)x->value,
        (const void *)n->value, (const void *)y->key, (const void *)n->key);
  CHECK(sy->n == 2 && sy->kv[0] == n->key && sy->kv[3] == n->value &&
            sy->kv[2] == x->key && s->kv[0] == n->key,
        "a set's strings are the nodes' interned ones");
  const label_node_t *kv = push(NULL, "other", "other");
  CHECK(kv->key == kv->value && kv->key == x->key,
        "a value equal to a key is one string");
  printf("interning: copies taken, equal strings one address\n");
}

/* ---- validation ---- */

static void check_key(const char *key, int want) {
  CHECK(labels_key_ok(key) == want, "labels_key_ok(\"%s\") = %d, want %d",
        key ? key : "(null)", labels_key_ok(key), want);
  if (!want)
    refused(NULL, key, "v", 1, EINVAL, "an invalid key");
}

static void check_value(const char *what, const char *value, int want) {
  CHECK(labels_value_ok(value) == want, "labels_value_ok(%s) = %d, want %d",
        what, labels_value_ok(value), want);
  if (!want)
    refused(NULL, "k", value, 1, EINVAL, what);
}

static void validation_test(void) {
  char s[LABEL_VALUE_MAX + 8];
  /* Keys: [A-Za-z_][A-Za-z0-9_]*, 1..63 bytes. */
  static const char *good_keys[] = {"a", "Z", "_", "_x", "x__", "a1", "A_9_z",
                                    "Bytes", "bytes_", "bytes2", "xbytes", "_b"};
  for (size_t i = 0; i < sizeof good_keys / sizeof *good_keys; i++)
    check_key(good_keys[i], 1);
  static const char *bad_keys[] = {
      "", "1a", "9", "a-b", "a.b", "a b", " a", "a ", "a:b", "a/b", "a\"",
      "\xc3\xa9t\xc3\xa9", "k\xc3\xa9", "a\tb", "a\nb", "a\x7f", "\x01",
      "bytes", /* the profile's own numeric label */
      "__", "__x", "__bytes", /* reserved by Prometheus-style stores */
  };
  for (size_t i = 0; i < sizeof bad_keys / sizeof *bad_keys; i++)
    check_key(bad_keys[i], 0);
  check_key(NULL, 0);
  memset(s, 'k', LABEL_KEY_MAX);
  s[LABEL_KEY_MAX] = '\0';
  check_key(s, 1); /* exactly 63 */
  s[0] = '_';
  s[1] = '9';
  check_key(s, 1);
  s[0] = 'k';
  s[LABEL_KEY_MAX] = 'k';
  s[LABEL_KEY_MAX + 1] = '\0';
  check_key(s, 0); /* 64 */
  s[LABEL_KEY_MAX] = '-';
  check_key(s, 0); /* 64, and a bad character past the limit */

  /* Values: 1..255 bytes of UTF-8, no control character. */
  static const struct {
    const char *what, *s;
    int ok;
  } values[] = {
      {"one letter", "v", 1},
      {"printable ASCII", " !\"#$%&'()*+,-./0-9:;<=>?@A-Z[\\]^_`a-z{|}~", 1},
      {"a space alone", " ", 1},
      {"empty", "", 0},
      {"C0 NUL-next \\x01", "\x01", 0},
      {"C0 tab", "a\tb", 0},
      {"C0 newline", "line\n", 0},
      {"C0 \\x1f", "\x1f", 0},
      {"DEL", "a\x7f", 0},
      {"C1 U+0080", "\xc2\x80", 0},
      {"C1 U+009F", "x\xc2\x9f", 0},
      {"U+00A0 (first after C1)", "\xc2\xa0", 1},
      {"2-byte e-acute", "caf\xc3\xa9", 1},
      {"3-byte euro", "\xe2\x82\xac", 1},
      {"4-byte emoji", "\xf0\x9f\x98\x80", 1},
      {"U+07FF", "\xdf\xbf", 1},
      {"U+0800", "\xe0\xa0\x80", 1},
      {"U+FFFF", "\xef\xbf\xbf", 1},
      {"U+10000", "\xf0\x90\x80\x80", 1},
      {"U+10FFFF", "\xf4\x8f\xbf\xbf", 1},
      {"overlong '/' in 2 bytes (C0)", "\xc0\xaf", 0},
      {"overlong U+007F in 2 bytes (C1)", "\xc1\xbf", 0},
      {"overlong '/' in 3 bytes", "\xe0\x80\xaf", 0},
      {"overlong U+07FF in 3 bytes", "\xe0\x9f\xbf", 0},
      {"overlong '/' in 4 bytes", "\xf0\x80\x80\xaf", 0},
      {"overlong U+FFFF in 4 bytes", "\xf0\x8f\xbf\xbf", 0},
      {"surrogate U+D800", "\xed\xa0\x80", 0},
      {"surrogate U+DFFF", "a\xed\xbf\xbf", 0},
      {"U+D7FF (below the surrogates)", "\xed\x9f\xbf", 1},
      {"U+E000 (above the surrogates)", "\xee\x80\x80", 1},
      {"U+110000", "\xf4\x90\x80\x80", 0},
      {"lead F5", "\xf5\x80\x80\x80", 0},
      {"lead F8 (5 bytes)", "\xf8\x88\x80\x80\x80", 0},
      {"byte FF", "\xff", 0},
      {"byte FE", "a\xfe", 0},
      {"lone continuation", "\x80", 0},
      {"continuation after ASCII", "a\xbf", 0},
      {"2-byte cut at the end", "ab\xc3", 0},
      {"3-byte cut at the end", "\xe2\x82", 0},
      {"4-byte cut at the end", "\xf0\x9f\x98", 0},
      {"3-byte cut by ASCII", "\xe2\x82x", 0},
      {"4-byte cut by a lead", "\xf0\x9f\xc3\xa9", 0},
  };
  for (size_t i = 0; i < sizeof values / sizeof *values; i++)
    check_value(values[i].what, values[i].s, values[i].ok);
  check_value("NULL", NULL, 0);

  memset(s, 'v', LABEL_VALUE_MAX);
  s[LABEL_VALUE_MAX] = '\0';
  check_value("255 bytes", s, 1);
  s[LABEL_VALUE_MAX] = 'v';
  s[LABEL_VALUE_MAX + 1] = '\0';
  check_value("256 bytes", s, 0);
  /* The limit is in bytes: 85 euros are 255 bytes, 86 are 258. */
  for (int i = 0; i < 86; i++)
    memcpy(s + 3 * i, "\xe2\x82\xac", 3);
  s[255] = '\0';
  check_value("85 three-byte characters (255 bytes)", s, 1);
  s[255] = '\xe2';
  s[258] = '\0';
  check_value("86 three-byte characters (258 bytes)", s, 0);
  memset(s, 'v', 253);
  memcpy(s + 253, "\xc3\xa9", 3);
  check_value("253 + a 2-byte character (255 bytes)", s, 1);
  memset(s, 'v', 254);
  memcpy(s + 254, "\xc3\xa9", 3);
  check_value("254 + a 2-byte character (256 bytes)", s, 0);
  memset(s, 'v', 254);
  memcpy(s + 254, "\xc3\xa9\xc3\xa9", 5);
  s[255] = '\0'; /* the 2-byte character cut at the limit */
  check_value("254 + a cut 2-byte character", s, 0);

  /* What is accepted can be pushed and reads back byte for byte. */
  const char *odd = "\"quoted\" back\\slash \xc2\xa0\xf4\x8f\xbf\xbf";
  const label_node_t *n = push(NULL, "_9", odd);
  CHECK(strcmp(n->value, odd) == 0, "value changed on the way in");
  printf("validation: every key and value rule, limits at the byte\n");
}

/* ---- the caps one thread meets ---- */

static void per_set_test(void) {
  char key[8], value[8];
  const label_node_t *n = NULL;
  for (int i = 0; i < LABELS_PER_SET; i++) {
    snprintf(key, sizeof key, "s%02d", i);
    n = push(n, key, "v");
  }
  CHECK(labels_set(n->set_id)->n == LABELS_PER_SET, "%u labels, want %d",
        labels_set(n->set_id)->n, LABELS_PER_SET);
  /* A 17th key, new everywhere (so nothing may be interned either), and
   * one already known. */
  refused(n, "s16_never_seen", "v_never_seen", 1, ENOSPC,
          "a 17th label (new strings)");
  refused(n, "_9", "v", 1, ENOSPC, "a 17th label (known strings)");
  /* Replacing one of the 16 is no 17th. */
  for (int i = 0; i < LABELS_PER_SET; i += 5) {
    snprintf(key, sizeof key, "s%02d", i);
    snprintf(value, sizeof value, "w%d", i);
    const label_node_t *r = push(n, key, value);
    CHECK(labels_set(r->set_id)->n == LABELS_PER_SET,
          "replacing in a full set");
  }
  printf("per set: %d labels, the next refused (ENOSPC), replacing works\n",
         LABELS_PER_SET);
}

static void depth_test(void) {
  char value[16];
  const label_node_t *n = NULL;
  /* One key over and over: the set stays one label, the depth grows. */
  for (int d = 1; d <= LABEL_DEPTH_MAX; d++) {
    snprintf(value, sizeof value, "d%d", d);
    n = push(n, "deep", value);
    CHECK(n->depth == (uint32_t)d, "depth %u, want %d", n->depth, d);
  }
  refused(n, "deep", "d_never_seen", 1, ENOSPC, "push 65 (new strings)");
  refused(n, "deep", "d1", 1, ENOSPC, "push 65 (known strings)");
  refused(n, "deep", "d1", 0, ENOSPC, "push 65 (may_insert 0)");
  /* Its parent still takes a push: only depth LABEL_DEPTH_MAX is full. */
  CHECK(push(n->parent, "deep", "other")->depth == LABEL_DEPTH_MAX,
        "a second node at the deepest level");
  printf("depth: %d pushes, the next refused (ENOSPC)\n", LABEL_DEPTH_MAX);
}

static void may_insert_test(void) {
  const label_node_t *at = push(NULL, "mi", "1");
  refused(at, "mi_new", "x", 0, EAGAIN, "may_insert 0, new node");
  refused(NULL, "mi_new", "x", 0, EAGAIN, "may_insert 0, new node at root");
  refused(NULL, "mi new", "x", 0, EINVAL, "may_insert 0, bad key first");
  const label_node_t *made = push(at, "mi_new", "x"), *found = NULL;
  CHECK(labels_push(at, "mi_new", "x", 0, &found) == 0 && found == made,
        "may_insert 0 must find a node that exists");
  CHECK(labels_push(NULL, "mi", "1", 0, &found) == 0 && found == at,
        "may_insert 0 must find a node at the root");
  printf("may_insert 0: EAGAIN for a new node, finds an old one\n");
}

static void by_id_test(void) {
  usage_t u = usage();
  CHECK(u.nodes > 0 && u.sets > 0, "the tests above made nothing");
  CHECK(labels_node(0) == NULL && labels_set(0) == NULL, "id 0 is none");
  CHECK(labels_node((uint32_t)u.nodes + 1) == NULL &&
            labels_set((uint32_t)u.sets + 1) == NULL,
        "an id not yet given");
  CHECK(labels_node(LABEL_NODES_MAX + 1) == NULL &&
            labels_set(LABEL_SETS_MAX + 1) == NULL,
        "one past the last id");
  CHECK(labels_node(UINT32_MAX) == NULL && labels_set(UINT32_MAX) == NULL,
        "UINT32_MAX");
  for (uint32_t id = 1; id <= u.nodes; id++) {
    const label_node_t *n = labels_node(id);
    CHECK(n != NULL && n->id == id, "node %u", id);
    const label_node_t *again = NULL;
    CHECK(labels_push(n->parent, n->key, n->value, 0, &again) == 0 &&
              again == n,
          "node %u is not what its own push finds", id);
    CHECK(labels_set(n->set_id) != NULL, "node %u: set %u", id, n->set_id);
  }
  for (uint32_t id = 1; id <= u.sets; id++)
    CHECK(labels_set(id) != NULL && labels_set(id)->id == id, "set %u", id);
  printf("by id: %zu nodes and %zu sets found, 0 and out of range NULL\n",
         u.nodes, u.sets);
}

/* ---- threads ---- */

/* Every path of 1..3 steps over STEPS (key, value) pairs; each round has
 * its own values, so that every round makes new nodes while the threads
 * race. All threads but the last walk the paths in one order (so they
 * reach each new node together), the last in a shuffled order. With the
 * re-check under the lock taken out of labels.c, 20 runs in 20 got two
 * nodes for one step (Release, 2 cores); with half the threads shuffled
 * and 4 rounds, only 3 in 5 did. */
#define THREADS 4
#define ROUNDS 8
#define NKEYS 4
#define NVALS 3
#define STEPS (NKEYS * NVALS)
#define PATHS (STEPS + STEPS * STEPS + STEPS * STEPS * STEPS)
_Static_assert(ROUNDS * PATHS <= LABEL_NODES_MAX, "the paths fit the nodes");
_Static_assert(NVALS + 1 == 4 && NKEYS == 4, "path_content's codes: 8 bits");

static const char *const tkeys[NKEYS] = {"a", "b", "c", "d"};
static char tvals[ROUNDS][NVALS][8];
static const label_node_t *got[THREADS][ROUNDS][PATHS];
static pthread_barrier_t start;
static _Atomic int writers_done;

/* Path p as steps (key index * NVALS + value index), first step first. */
static int path_steps(int p, int *steps) {
  int len = 1, span = STEPS;
  while (p >= span)
    p -= span, span *= STEPS, len++;
  for (int i = len - 1; i >= 0; i--)
    steps[i] = p % STEPS, p /= STEPS;
  return len;
}

static void *writer(void *arg) {
  int t = (int)(intptr_t)arg;
  int order[PATHS];
  for (int i = 0; i < PATHS; i++)
    order[i] = i;
  uint64_t x = 0x9e3779b97f4a7c15ULL * (uint64_t)(t + 1);
  for (int i = PATHS - 1; t == THREADS - 1 && i > 0; i--) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    int j = (int)(x % (uint64_t)(i + 1)), k = order[i];
    order[i] = order[j], order[j] = k;
  }
  pthread_barrier_wait(&start);
  for (int r = 0; r < ROUNDS; r++)
    for (int i = 0; i < PATHS; i++) {
      int steps[3], len = path_steps(order[i], steps);
      const label_node_t *n = NULL;
      for (int s = 0; s < len; s++) {
        const label_node_t *next = NULL;
        int rc = labels_push(n, tkeys[steps[s] / NVALS],
                             tvals[r][steps[s] % NVALS], 1, &next);
        CHECK(rc == 0, "thread %d: push failed, errno %d", t, errno);
        n = next;
      }
      got[t][r][order[i]] = n;
    }
  atomic_fetch_add(&writers_done, 1);
  return NULL;
}

/* What a node must be, read at any moment: complete, and its set its
 * parent's with its own pair put in. */
static void check_node(const label_node_t *n, uint32_t id) {
  CHECK(n->id == id, "node %u has id %u", id, n->id);
  CHECK(n->key != NULL && n->value != NULL && labels_key_ok(n->key) &&
            labels_value_ok(n->value),
        "node %u: key or value not there", id);
  const label_node_t *p = n->parent;
  CHECK(p == NULL ? n->depth == 1
                  : p->id < id && n->depth == p->depth + 1 &&
                        labels_node(p->id) == p,
        "node %u: depth %u, parent %u", id, n->depth, p ? p->id : 0);
  const label_set_t *s = labels_set(n->set_id), *ps =
      p ? labels_set(p->set_id) : NULL;
  CHECK(s != NULL && s->id == n->set_id, "node %u: set %u missing", id,
        n->set_id);
  uint32_t want = 0, replaced = 0;
  for (uint32_t i = 0; ps != NULL && i < ps->n; i++)
    replaced |= ps->kv[2 * i] == n->key;
  want = (ps ? ps->n : 0) + !replaced;
  CHECK(s->n == want, "node %u: set of %u labels, want %u", id, s->n, want);
  for (uint32_t i = 0, j = 0; i < s->n; i++) {
    CHECK(i == 0 || strcmp(s->kv[2 * (i - 1)], s->kv[2 * i]) < 0,
          "set %u unsorted", s->id);
    if (s->kv[2 * i] == n->key) {
      CHECK(s->kv[2 * i + 1] == n->value, "node %u: set has another value",
            id);
      if (ps != NULL && j < ps->n && ps->kv[2 * j] == n->key)
        j++;
      continue;
    }
    CHECK(ps != NULL && j < ps->n && ps->kv[2 * j] == s->kv[2 * i] &&
              ps->kv[2 * j + 1] == s->kv[2 * i + 1],
          "node %u: set %u is not its parent's set %u with %s=%s", id, s->id,
          ps ? ps->id : 0, n->key, n->value);
    j++;
  }
}

static void *reader(void *arg) {
  long *checked = arg;
  pthread_barrier_wait(&start);
  while (atomic_load(&writers_done) < THREADS) {
    for (uint32_t id = 1; id <= LABEL_NODES_MAX; id++) {
      const label_node_t *n = labels_node(id);
      if (n == NULL)
        break;
      check_node(n, id);
      (*checked)++;
    }
  }
  return NULL;
}

/* Which labels path p of round r ends with: per key, 0 (none) or value
 * index + 1, as a base-(NVALS + 1) number. */
static int path_content(int p) {
  int steps[3], len = path_steps(p, steps), v[NKEYS] = {0}, code = 0;
  for (int s = 0; s < len; s++)
    v[steps[s] / NVALS] = steps[s] % NVALS + 1;
  for (int k = 0; k < NKEYS; k++)
    code = code * (NVALS + 1) + v[k];
  return code;
}

static void threads_test(void) {
  for (int r = 0; r < ROUNDS; r++)
    for (int v = 0; v < NVALS; v++)
      snprintf(tvals[r][v], sizeof tvals[r][v], "r%dv%d", r, v);
  pthread_barrier_init(&start, NULL, THREADS + 1);
  pthread_t t[THREADS + 1];
  long checked = 0;
  for (int i = 0; i < THREADS; i++)
    CHECK(pthread_create(&t[i], NULL, writer, (void *)(intptr_t)i) == 0,
          "pthread_create");
  CHECK(pthread_create(&t[THREADS], NULL, reader, &checked) == 0,
        "pthread_create");
  for (int i = 0; i <= THREADS; i++)
    pthread_join(t[i], NULL);
  pthread_barrier_destroy(&start);

  /* One node per path, whichever thread got there first. */
  for (int r = 0; r < ROUNDS; r++)
    for (int p = 0; p < PATHS; p++)
      for (int i = 1; i < THREADS; i++)
        CHECK(got[i][r][p] == got[0][r][p],
              "round %d path %d: thread %d got node %u, thread 0 node %u", r,
              p, i, got[i][r][p]->id, got[0][r][p]->id);
  usage_t u = usage();
  CHECK(u.nodes == (size_t)ROUNDS * PATHS, "%zu nodes for %d distinct paths",
        u.nodes, ROUNDS * PATHS);
  /* One set per content: as many as the distinct contents of a round,
   * every round. */
  static char seen[1 << (2 * NKEYS)];
  size_t contents = 0;
  for (int p = 0; p < PATHS; p++)
    if (!seen[path_content(p)]++)
      contents++;
  CHECK(u.sets == ROUNDS * contents, "%zu sets for %zu contents", u.sets,
        ROUNDS * contents);
  /* Each path's node names its path; equal contents share a set. */
  uint32_t set_of[ROUNDS][1 << (2 * NKEYS)] = {{0}};
  for (int r = 0; r < ROUNDS; r++)
    for (int p = 0; p < PATHS; p++) {
      const label_node_t *n = got[0][r][p];
      int steps[3], len = path_steps(p, steps);
      CHECK((int)n->depth == len, "path %d: depth %u", p, n->depth);
      const label_node_t *w = n;
      for (int s = len - 1; s >= 0; s--, w = w->parent)
        CHECK(strcmp(w->key, tkeys[steps[s] / NVALS]) == 0 &&
                  strcmp(w->value, tvals[r][steps[s] % NVALS]) == 0,
              "path %d step %d: %s=%s", p, s, w->key, w->value);
      CHECK(w == NULL, "path %d: parent chain too long", p);
      uint32_t *id = &set_of[r][path_content(p)];
      CHECK(*id == 0 || *id == n->set_id,
            "round %d path %d: one content in sets %u and %u", r, p, *id,
            n->set_id);
      *id = n->set_id;
    }
  for (uint32_t id = 1; id <= u.nodes; id++) {
    CHECK(labels_node(id) != NULL, "node %u missing", id);
    check_node(labels_node(id), id);
  }
  CHECK(labels_node((uint32_t)u.nodes + 1) == NULL, "a node past the count");
  /* Every string once: a key's address is the same in every set. */
  const char *addr[NKEYS] = {0};
  for (uint32_t id = 1; id <= u.sets; id++) {
    const label_set_t *s = labels_set(id);
    CHECK(s != NULL && s->id == id, "set %u missing", id);
    for (uint32_t i = 0; i < s->n; i++) {
      int k = s->kv[2 * i][0] - 'a';
      CHECK(k >= 0 && k < NKEYS, "set %u: key %s", id, s->kv[2 * i]);
      CHECK(addr[k] == NULL || addr[k] == s->kv[2 * i],
            "key %s at two addresses", s->kv[2 * i]);
      addr[k] = s->kv[2 * i];
    }
  }
  printf("threads: %d writers × %d paths × %d rounds: %zu nodes, %zu sets, "
         "one node per step; the reader checked %ld nodes as they appeared\n",
         THREADS, PATHS, ROUNDS, u.nodes, u.sets, checked);
}

/* ---- the process-wide caps, one per process ---- */

static void sets_cap_test(void) {
  char v[16];
  /* {j=v1}, then {k=v1} … {k=v4095}: 4096 sets, and two keys known. */
  push(NULL, "j", "v1");
  const label_node_t *k1 = NULL, *k7 = NULL, *last = NULL;
  for (int i = 1; i < LABEL_SETS_MAX; i++) {
    snprintf(v, sizeof v, "v%d", i);
    last = push(NULL, "k", v);
    k1 = i == 1 ? last : k1;
    k7 = i == 7 ? last : k7;
  }
  usage_t u = usage();
  CHECK(u.sets == LABEL_SETS_MAX && last->set_id == LABEL_SETS_MAX,
        "%zu sets, last id %u", u.sets, last->set_id);
  refused(NULL, "k", "v_new", 1, ENOSPC, "set 4097 (a new value)");
  refused(NULL, "k_new", "v_newer", 1, ENOSPC, "set 4097 (new key and value)");
  refused(k1, "j", "v1", 1, ENOSPC, "set 4097 (known strings)");
  /* A new node whose content is a set that exists is still made. */
  const label_node_t *n = push(k1, "k", "v2");
  CHECK(n->set_id == push(NULL, "k", "v2")->set_id &&
            usage().sets == LABEL_SETS_MAX && usage().nodes == u.nodes + 1,
        "a new path to an old set");
  CHECK(push(NULL, "k", "v7") == k7, "old nodes still found");
  printf("sets: %d made, the next refused (ENOSPC), old sets reachable\n",
         LABEL_SETS_MAX);
}

static void nodes_cap_test(void) {
  /* 128 values of one key: 128 sets, and every (vi → vj) step a node. */
  enum { V = 128 };
  char v[V][8];
  const label_node_t *root[V];
  for (int i = 0; i < V; i++) {
    snprintf(v[i], sizeof v[i], "v%d", i);
    root[i] = push(NULL, "k", v[i]);
  }
  const label_node_t *made = NULL;
  for (int i = 0; i < V && usage().nodes < LABEL_NODES_MAX; i++)
    for (int j = 0; j < V && usage().nodes < LABEL_NODES_MAX; j++)
      made = push(root[i], "k", v[j]);
  usage_t u = usage();
  CHECK(u.nodes == LABEL_NODES_MAX && made->id == LABEL_NODES_MAX &&
            u.sets == V,
        "%zu nodes (last %u), %zu sets", u.nodes, made->id, u.sets);
  refused(made, "k", "v0", 1, ENOSPC, "node 16385 (known strings)");
  refused(root[V - 1], "k", "v_new", 1, ENOSPC, "node 16385 (new value)");
  refused(NULL, "k_new", "v_new", 1, ENOSPC, "node 16385 (new strings)");
  refused(made, "k", "v0", 0, EAGAIN, "may_insert 0 at the cap");
  CHECK(push(root[3], "k", v[5]) == labels_node(V + 3 * V + 5 + 1) &&
            push(NULL, "k", v[9]) == root[9],
        "old nodes still found");
  printf("nodes: %d made, the next refused (ENOSPC), old ones found\n",
         LABEL_NODES_MAX);
}

/* Every string costs its length + 1. Fill to exactly the budget with
 * 63-byte keys and 255-byte values (320 bytes a push), the rest with new
 * keys on a known value; then every new string is refused, and pushes of
 * known strings still work. */
static void strings_cap_test(void) {
  char key[LABEL_KEY_MAX + 1], value[LABEL_VALUE_MAX + 1];
  int i = 0;
  for (; usage().bytes + 320 <= LABEL_STRING_BYTES - 64; i++) {
    snprintf(key, sizeof key, "k%062d", i);
    snprintf(value, sizeof value, "v%0254d", i);
    push(NULL, key, value);
  }
  snprintf(value, sizeof value, "v%0254d", 0);
  for (; usage().bytes + 64 <= LABEL_STRING_BYTES - 4; i++) {
    snprintf(key, sizeof key, "k%062d", i);
    push(NULL, key, value);
  }
  size_t left = LABEL_STRING_BYTES - usage().bytes;
  CHECK(left >= 4 && left < 64 + 4, "%zu bytes left", left);
  memset(key, 'z', left - 3);
  key[left - 3] = '\0';
  push(NULL, key, value); /* a key of left - 2 bytes: 2 bytes left */
  CHECK(usage().bytes == LABEL_STRING_BYTES - 2, "%zu bytes, want %d",
        usage().bytes, LABEL_STRING_BYTES - 2);
  /* "a" (2 bytes) fits, "b" with it does not. */
  refused(NULL, "a", "bb", 1, ENOSPC, "the key fits, the value does not");
  refused(NULL, "ab", value, 1, ENOSPC, "3 bytes with 2 left");
  const label_node_t *a = push(NULL, "a", value);
  CHECK(usage().bytes == LABEL_STRING_BYTES, "%zu bytes, want exactly %d",
        usage().bytes, LABEL_STRING_BYTES);
  refused(NULL, "b", value, 1, ENOSPC, "a new key, none left");
  refused(a, "a", "b", 1, ENOSPC, "a new value, none left");
  snprintf(key, sizeof key, "k%062d", 1);
  const label_node_t *n = push(a, key, value);
  CHECK(labels_set(n->set_id)->n == 2 && usage().bytes == LABEL_STRING_BYTES,
        "known strings in a new set, at the budget");
  printf("strings: %d bytes in %zu sets, then no new string (ENOSPC)\n",
         LABEL_STRING_BYTES, usage().sets);
}

static void *no_memory(size_t bytes) {
  (void)bytes;
  return NULL;
}

static long pools_left;
static void *few_pools(size_t bytes) {
  return pools_left-- > 0 ? unit_permanent(bytes) : NULL;
}

static void nomem_test(void) {
  /* Before any memory is handed in, and with an allocator that has none. */
  refused(NULL, "k", "v", 1, ENOMEM, "no allocator");
  labels_set_memory(no_memory);
  refused(NULL, "k", "v", 1, ENOMEM, "an allocator with nothing");
  CHECK(labels_node(1) == NULL && labels_set(1) == NULL, "something made");
  /* Two pools, then nothing: pushes work until the pools are spent. */
  pools_left = 2;
  labels_set_memory(few_pools);
  char key[LABEL_KEY_MAX + 1], value[LABEL_VALUE_MAX + 1];
  const label_node_t *first = push(NULL, "k", "v");
  int i = 0;
  for (;; i++) {
    snprintf(key, sizeof key, "k%d", i);
    snprintf(value, sizeof value, "%0255d", i);
    const label_node_t *n = NULL;
    usage_t before = usage();
    errno = 0;
    if (labels_push(NULL, key, value, 1, &n) == 0)
      continue;
    int err = errno;
    usage_t after = usage();
    CHECK(err == ENOMEM, "push %d failed with errno %d, want ENOMEM", i, err);
    CHECK(after.sets == before.sets && after.nodes == before.nodes &&
              after.bytes == before.bytes,
          "push %d: ENOMEM changed the tables: sets %zu→%zu, nodes %zu→%zu, "
          "string bytes %zu→%zu", i, before.sets, after.sets, before.nodes,
          after.nodes, before.bytes, after.bytes);
    break;
  }
  CHECK(i > 100, "only %d pushes from two pools", i);
  CHECK(push(NULL, "k", "v") == first, "old nodes still found");
  snprintf(value, sizeof value, "%0255d", 0);
  refused(first, "k", value, 1, ENOMEM, "a new node of known strings");
  printf("nomem: ENOMEM with no memory and after %d pushes\n", i);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  CHECK(argc <= 2, "usage: test_labels [threads|sets|nodes|strings|nomem]");
  if (strcmp(mode, "nomem") == 0) {
    nomem_test();
    printf("ok\n");
    return 0;
  }
  labels_set_memory(unit_permanent);
  if (strcmp(mode, "") == 0) {
    nesting_test();
    interning_test();
    validation_test();
    per_set_test();
    depth_test();
    may_insert_test();
    by_id_test();
  } else if (strcmp(mode, "threads") == 0) {
    threads_test();
  } else if (strcmp(mode, "sets") == 0) {
    sets_cap_test();
  } else if (strcmp(mode, "nodes") == 0) {
    nodes_cap_test();
  } else if (strcmp(mode, "strings") == 0) {
    strings_cap_test();
  } else {
    CHECK(0, "unknown mode %s", mode);
  }
  printf("ok\n");
  return 0;
}
