/*
 * testlib — what heapprof's tests share: failing loudly, running commands
 * in a clean environment, and reading profiles back through the real
 * `go tool pprof -raw`.
 */
#ifndef HEAPPROF_TESTLIB_H
#define HEAPPROF_TESTLIB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond))                                                               \
      tl_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                         \
  } while (0)

void tl_fail(const char *file, int line, const char *cond, const char *fmt,
             ...) __attribute__((noreturn, format(printf, 4, 5)));

/* Runs argv with LD_PRELOAD and HEAPPROF_* removed from the environment;
 * returns its exit status (or -1) and, if `out` is given, its stdout as a
 * malloc'd string. stderr passes through. */
int tl_run(char *const argv[], char **out);

/* Runs argv with exactly `env`, capturing stdout and stderr separately
 * (malloc'd); returns the exit status or -1. */
int tl_run_env(char *const argv[], char *const env[], char **out, char **err);

/* A copy of the environment without the entries that start with one of
 * `drop` (a NULL-ended list of "NAME=" or prefixes), with `add` ("NAME=v",
 * or NULL) at its end: for tl_run_env. Never freed (tests are short). */
char **tl_env(const char *const *drop, const char *add);

typedef struct tl_sample {
  int64_t v[4];         /* alloc_objects alloc_space inuse_objects inuse_space */
  int64_t bytes;        /* the "bytes" label, -1 if none */
  size_t nlocs;
  const char **funcs;   /* function per location, leaf first ("" if none):
                           the one holding the code, not one inlined there */
  size_t nlabels;       /* string labels (pprof prints them as
                           `key:[value]` under the sample) */
  char **labels;        /* key, value, key, value…: 2·nlabels strings */
} tl_sample_t;

typedef struct tl_profile {
  tl_sample_t *samples;
  size_t nsamples;
  int64_t period;
  char *raw;            /* the whole -raw text */
  char **names;         /* location function names (owned) */
  size_t nnames;
} tl_profile_t;

/* Reads `path` with `go tool pprof -raw`; aborts the test if pprof fails. */
void tl_read_profile(const char *path, tl_profile_t *p);

/* Sums the values of every sample whose leaf function is `func`; returns
 * the number of such samples. */
size_t tl_site(const tl_profile_t *p, const char *func, int64_t v[4]);

/* Sums every sample whose stack contains `func` anywhere. */
size_t tl_site_any(const tl_profile_t *p, const char *func, int64_t v[4]);

/* The value of string label `key` on sample `s`, or NULL if it has none
 * (a key with several values gives them as pprof prints them: joined by
 * spaces). */
const char *tl_sample_label(const tl_sample_t *s, const char *key);

/* Sums the values of every sample whose leaf function is `func` (NULL:
 * any sample) and whose string label `key` is `value` (value NULL: that
 * has no label `key`); returns the number of such samples. */
size_t tl_site_label(const tl_profile_t *p, const char *func, const char *key,
                     const char *value, int64_t v[4]);

void tl_free_profile(tl_profile_t *p);

/* The heapprof API, found at run time: works when the library is
 * preloaded and when it is linked. Aborts the test if it is not loaded. */
int tl_write_profile(const char *path, int allocs_view);
int tl_set_rate(long rate);

/* A fresh directory under $TMPDIR for this test's files. */
const char *tl_tmpdir(void);

#ifdef __cplusplus
}
#endif

#endif /* HEAPPROF_TESTLIB_H */
