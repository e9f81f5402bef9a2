/*
 * gomap — a hash map laid out and grown like Go's runtime map (Go 1.19,
 * runtime/map.go), so that C example programs show a heap profiler the
 * memory behaviour of a Go map.
 *
 * Keys and values are fixed-size blobs described by a gomap_type_t, like
 * Go's maptype. The table is an array of 2^B buckets of 8 slots; a bucket
 * that fills up chains overflow buckets. When the map grows it doubles,
 * keeps the old array and moves ("evacuates") one or two old buckets per
 * insert or delete until the old array can be freed.
 *
 * Memory is never given back by deletes: a deleted slot is only marked
 * empty, so a map that once held N entries keeps the buckets for N entries
 * until gomap_reset() or gomap_free(), or until its live entries are copied
 * into a new map (a rebuild). A delete may finish a growth that was already
 * under way, which frees the old array; it never starts one.
 *
 * In a heap profile the memory shows under gomap_alloc_buckets (bucket
 * arrays), gomap_alloc_overflow (overflow buckets) and gomap_alloc_map (the
 * header), each a real, non-inlined frame.
 *
 * Keys and values must need no more than 8-byte alignment. A map is not
 * thread-safe: callers serialise every call on one map, including lookups
 * against writers. Failures are reported, never fatal: gomap_insert
 * returns -ENOMEM and the map keeps exactly the entries it had;
 * gomap_new returns NULL with errno set.
 */
#ifndef GOMAP_H
#define GOMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hashes the key at `key` (key_size bytes); `seed` is per map. Buckets are
 * chosen by the low bits and in-bucket tags by the top 8 bits, so both
 * must be well mixed. */
typedef uint64_t (*gomap_hash_fn)(const void *key, uint64_t seed);
/* True when the keys at `a` and `b` are equal; equal keys must hash alike. */
typedef bool (*gomap_equal_fn)(const void *a, const void *b);

typedef struct gomap_type {
  size_t key_size;   /* 1..4096 bytes, stored inline */
  size_t value_size; /* 0..4096 bytes; 0 makes a set */
  gomap_hash_fn hash;
  gomap_equal_fn equal;
} gomap_type_t;

typedef struct gomap gomap_t;

typedef struct gomap_stats {
  size_t count;            /* live entries, as gomap_len() */
  unsigned lg_buckets;     /* B: the current array has 2^B buckets */
  size_t nbuckets;         /* 2^B, or 0 before the first insert */
  size_t bucket_bytes;     /* size of one bucket, array or overflow */
  size_t overflow_in_use;  /* overflow buckets linked into chains */
  size_t overflow_free;    /* overflow buckets on the free list */
  size_t array_bytes;      /* current array, plus the old one while growing */
  size_t overflow_bytes;   /* (overflow_in_use + overflow_free) buckets */
  bool growing;            /* an old array is being evacuated */
  size_t old_nbuckets;     /* buckets in the old array (0 unless growing) */
  size_t evacuated;        /* old buckets already moved (0 unless growing) */
} gomap_stats_t;

/* Walks the entries in an unspecified order. Any insert, delete or reset
 * of the map invalidates the iterator (checked by assert); writing through
 * a returned value pointer is allowed. */
typedef struct gomap_iter {
  gomap_t *m;
  size_t step;      /* next chain head to visit, in [0, 2^B] */
  void *bucket;     /* bucket being walked, NULL between chains */
  unsigned slot;    /* next slot of `bucket` */
  uint64_t version; /* m's mutation counter at gomap_iter_init */
} gomap_iter_t;

/* Creates an empty map sized for `hint` entries (0: allocate on first
 * insert) with a fixed hash seed, so runs are reproducible. Returns NULL
 * with errno EINVAL (bad type) or ENOMEM. The type is copied. */
gomap_t *gomap_new(const gomap_type_t *type, size_t hint);
gomap_t *gomap_new_seeded(const gomap_type_t *type, size_t hint,
                          uint64_t seed);
/* Frees the map and every bucket it holds. NULL is allowed. */
void gomap_free(gomap_t *m);
/* Frees every bucket and empties the map; it stays usable. Unlike Go's
 * clear(m), which keeps the buckets, this gives all memory back. */
void gomap_reset(gomap_t *m);

/* Inserts or overwrites: copies key_size bytes from `key` (also on
 * overwrite, as Go updates string keys) and value_size bytes from
 * `value` (NULL: zeroes). Returns 0 or -ENOMEM. */
int gomap_insert(gomap_t *m, const void *key, const void *value);
/* The stored value for `key`, or NULL. Valid until the next insert,
 * delete or reset. For a set (value_size 0) any non-NULL means present. */
void *gomap_lookup(const gomap_t *m, const void *key);
/* Removes `key`; true if it was present. Never fails. During a growth it
 * also evacuates, as Go's does, which may take overflow buckets; if that
 * allocation fails, the evacuation is left to a later call. */
bool gomap_delete(gomap_t *m, const void *key);
size_t gomap_len(const gomap_t *m);
void gomap_stats(const gomap_t *m, gomap_stats_t *out);

void gomap_iter_init(gomap_iter_t *it, gomap_t *m);
/* Stores the next entry's key and value pointers and returns true, or
 * returns false at the end. Either out-pointer may be NULL. */
bool gomap_iter_next(gomap_iter_t *it, const void **key, void **value);

/* Ready-made key kinds. uint64_t keys: the key is the 8 bytes. C-string
 * keys: the key is a `const char *`; hash and equality read the string,
 * and the map stores only the pointer, so the caller keeps the string
 * alive while it is in the map. */
uint64_t gomap_hash_u64(const void *key, uint64_t seed);
bool gomap_equal_u64(const void *a, const void *b);
uint64_t gomap_hash_str(const void *key, uint64_t seed);
bool gomap_equal_str(const void *a, const void *b);
/* A seeded hash of n bytes, for writing hash functions of other types. */
uint64_t gomap_hash_bytes(const void *p, size_t n, uint64_t seed);

static inline gomap_type_t gomap_type_u64(size_t value_size) {
  return (gomap_type_t){sizeof(uint64_t), value_size, gomap_hash_u64,
                        gomap_equal_u64};
}

static inline gomap_type_t gomap_type_str(size_t value_size) {
  return (gomap_type_t){sizeof(const char *), value_size, gomap_hash_str,
                        gomap_equal_str};
}

static inline int gomap_insert_u64(gomap_t *m, uint64_t key,
                                   const void *value) {
  return gomap_insert(m, &key, value);
}

static inline void *gomap_lookup_u64(const gomap_t *m, uint64_t key) {
  return gomap_lookup(m, &key);
}

static inline bool gomap_delete_u64(gomap_t *m, uint64_t key) {
  return gomap_delete(m, &key);
}

static inline int gomap_insert_str(gomap_t *m, const char *key,
                                   const void *value) {
  return gomap_insert(m, &key, value);
}

static inline void *gomap_lookup_str(const gomap_t *m, const char *key) {
  return gomap_lookup(m, &key);
}

static inline bool gomap_delete_str(gomap_t *m, const char *key) {
  return gomap_delete(m, &key);
}

#endif /* GOMAP_H */
