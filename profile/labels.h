/*
 * labels — the label sets a program attaches to its allocations
 * (heapprof_label_push), interned once and kept forever.
 *
 * A thread's labels are a position in a tree of push nodes: pushing
 * (key, value) on node N moves to the child of N named (key, value), made
 * the first time any thread takes that step; popping moves back to N. A
 * node never changes and is never freed, so a position is one pointer
 * that costs nothing to keep, copy across fork, hand to another thread or
 * leave behind when a thread exits. Each node names the set of labels in
 * force there (the parent's set with `key` set to `value`), and equal sets
 * reached by different pushes are one set with one small id: the id is
 * what a bucket's key carries, and what the encoders look up.
 *
 * Lookups of existing nodes take no lock (a node is complete before it is
 * published with a release store, as buckets are); making one is
 * serialised by one lock. No malloc: memory comes from the permanent
 * allocator handed in (labels_set_memory), in pools. Everything is capped
 * (below), so a program that labels by request id gets an error, not a
 * profiler that grows without end.
 */
#ifndef HEAPPROF_LABELS_H
#define HEAPPROF_LABELS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define LABEL_KEY_MAX 63          /* bytes of a key */
#define LABEL_VALUE_MAX 255       /* bytes of a value */
#define LABELS_PER_SET 16         /* labels in force at once */
#define LABEL_DEPTH_MAX 64        /* pushes outstanding on one thread */
#define LABEL_SETS_MAX 4096       /* distinct sets in the process */
#define LABEL_NODES_MAX 16384     /* distinct push positions */
#define LABEL_STRING_BYTES (1 << 20) /* interned key and value bytes */

/* A set: `n` pairs, kv[2i] the key and kv[2i+1] its value, sorted by key;
 * the strings are interned (equal strings, one address). Immutable. */
typedef struct label_set {
  struct label_set *_Atomic next; /* hash chain */
  uint64_t hash;
  uint32_t id; /* 1, 2, …: dense, never reused */
  uint32_t n;
  const char *kv[];
} label_set_t;

/* A push position. Immutable once published. */
typedef struct label_node {
  struct label_node *_Atomic next; /* hash chain */
  const struct label_node *parent; /* NULL: the pushes began on no labels */
  const char *key, *value;         /* this push's pair, interned */
  uint64_t hash;
  uint32_t set_id; /* the labels in force here (never 0) */
  uint32_t id;     /* 1, 2, …: dense, never reused (a token, labels_node) */
  uint32_t depth;  /* pushes from the root: 1 for a first push */
} label_node_t;

/* Where the tables' memory comes from: zeroed, aligned for a pointer,
 * never given back; NULL when there is no more. Set before the first push
 * (calling it again with the same function is harmless). */
void labels_set_memory(void *(*alloc_permanent)(size_t bytes));

/*
 * Whether `key` / `value` can be a label (the same answer every time):
 * a key is 1..LABEL_KEY_MAX bytes of [A-Za-z_][A-Za-z0-9_]*, neither
 * "bytes" (the profile's own numeric label) nor starting with "__"
 * (names reserved by Prometheus-style label stores); a value is
 * 1..LABEL_VALUE_MAX bytes of UTF-8 with no control character.
 */
int labels_key_ok(const char *key);
int labels_value_ok(const char *value);

/*
 * The node reached by pushing (key, value) on `at` (NULL: no labels):
 * 0 and *out, or -1 with errno EINVAL (not a label), ENOSPC (a cap was
 * reached: labels in a set, depth, sets, nodes or string bytes) or ENOMEM
 * (the permanent allocator said no). An existing node is found without a
 * lock; `may_insert` 0 refuses to make one (-1, errno EAGAIN). Each
 * string is read once (copied), so one another thread rewrites meanwhile
 * is taken whole as it was at that read, or refused.
 */
int labels_push(const label_node_t *at, const char *key, const char *value,
                int may_insert, const label_node_t **out);

/* Node `id` (labels_node) or set `id`; NULL if there is none (0 included). */
const label_node_t *labels_node(uint32_t id);
const label_set_t *labels_set(uint32_t id);

/* Sets and nodes made so far, and the string bytes they hold. */
void labels_usage(size_t *sets, size_t *nodes, size_t *string_bytes);

void labels_fork_prepare(void);
void labels_fork_parent(void);
void labels_fork_child(void);

#endif /* HEAPPROF_LABELS_H */
