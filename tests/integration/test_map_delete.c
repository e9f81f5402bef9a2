/*
 * test_map_delete — the map story, checked as a user would see it: runs the
 * real examples/map_delete program and reads its three profiles with
 * `go tool pprof`.
 *
 * usage: test_map_delete MAP_DELETE_BINARY int|str exact|sampled
 *
 * exact (HEAPPROF_RATE=1): the bucket-array site's inuse_space is the same
 * within 1% before and after the deletes, its alloc_space unchanged, and
 * after the rebuild it falls by at least 99%. sampled (default rate, fixed
 * seed): the same statements, and the estimate lies within 5 standard
 * deviations (derived from the sample count) of the bytes the map reports.
 * Statistics: mallocs − frees is unchanged by deletes for int → int, and
 * falls by exactly one per entry for string → pointer (the values).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "testlib.h"

static int mkdir_p(const char *d) { return mkdir(d, 0700) == 0 || access(d, F_OK) == 0 ? 0 : -1; }

#define ENTRIES 1000000

typedef struct phase {
  unsigned long long mallocs, frees, live;
  double map_mb;
} phase_t;

/* Parses the example's statistics line for `name`. */
static void parse_phase(const char *out, const char *name, phase_t *ph) {
  const char *line = strstr(out, name);
  CHECK(line != NULL, "no '%s' line in:\n%s", name, out);
  double inuse, alloc, os;
  size_t entries;
  int n = sscanf(line + strlen(name),
                 " in use %lf MB | allocated %lf MB | mallocs %llu | frees %llu"
                 " | mallocs-frees %llu | from OS %lf MB | map %zu entries, %lf",
                 &inuse, &alloc, &ph->mallocs, &ph->frees, &ph->live, &os,
                 &entries, &ph->map_mb);
  CHECK(n == 8, "cannot parse the '%s' line (%d fields):\n%s", name, n, line);
}

static void site(const char *dir, const char *kind, const char *phase,
                 const char *func, int64_t v[4]) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s-%s.pb.gz", dir, kind, phase);
  tl_profile_t p;
  tl_read_profile(path, &p);
  size_t n = tl_site(&p, func, v);
  if (strcmp(phase, "after-rebuild") != 0)
    CHECK(n > 0, "%s: no sample at %s:\n%s", path, func, p.raw);
  tl_free_profile(&p);
}

int main(int argc, char **argv) {
  CHECK(argc == 4, "usage: test_map_delete BINARY int|str exact|sampled");
  const char *kind = argv[2];
  int exact = strcmp(argv[3], "exact") == 0;
  char dir[600];
  snprintf(dir, sizeof dir, "%s/%s-%s", tl_tmpdir(), kind, argv[3]);
  CHECK(mkdir_p(dir) == 0, "mkdir %s", dir);
  char *out = NULL;
  char *args[] = {argv[1], (char *)kind, dir, NULL};
  char *env[] = {exact ? "HEAPPROF_RATE=1" : "HEAPPROF_SEED=3", "HEAPPROF_SIGNAL=none",
                 "PATH=/usr/bin:/bin", NULL};
  char *err = NULL;
  int rc = tl_run_env(args, env, &out, &err);
  CHECK(rc == 0, "map_delete failed (%d): %s%s", rc, out, err);
  fputs(out, stdout);

  phase_t before, deleted, rebuilt;
  parse_phase(out, "before ", &before);
  parse_phase(out, "after-delete ", &deleted);
  parse_phase(out, "after-rebuild ", &rebuilt);
  if (strcmp(kind, "int") == 0)
    CHECK(deleted.live == before.live,
          "int map: mallocs-frees %llu before, %llu after the deletes",
          before.live, deleted.live);
  else
    CHECK(before.live - deleted.live == ENTRIES,
          "str map: mallocs-frees fell by %llu, want %d (one per value)",
          before.live - deleted.live, ENTRIES);
  CHECK(rebuilt.live < before.live / 100, "the rebuild left %llu blocks",
        rebuilt.live);

  int64_t b[4], d[4], r[4];
  site(dir, kind, "before", "gomap_alloc_buckets", b);
  site(dir, kind, "after-delete", "gomap_alloc_buckets", d);
  site(dir, kind, "after-rebuild", "gomap_alloc_buckets", r);
  printf("gomap_alloc_buckets inuse_space: before %lld, after delete %lld, "
         "after rebuild %lld; alloc_space %lld → %lld\n", (long long)b[3],
         (long long)d[3], (long long)r[3], (long long)b[1], (long long)d[1]);
  CHECK(fabs((double)d[3] - (double)b[3]) <= 0.01 * (double)b[3],
        "inuse_space changed by the deletes: %lld → %lld", (long long)b[3],
        (long long)d[3]);
  CHECK(d[1] == b[1], "alloc_space changed by the deletes: %lld → %lld",
        (long long)b[1], (long long)d[1]);
  CHECK(r[3] <= b[3] / 100, "after the rebuild %lld of %lld remain",
        (long long)r[3], (long long)b[3]);

  /* The whole map: bucket arrays and overflow buckets, against what the
   * map itself says it holds. */
  int64_t o[4];
  site(dir, kind, "before", "gomap_alloc_overflow", o);
  double truth = before.map_mb * 1e6, est = (double)(b[3] + o[3]);
  if (exact) {
    CHECK(fabs(est - truth) <= 0.001 * truth + 1e5,
          "profile %.0f vs map %.0f bytes", est, truth);
  } else {
    /* The array is one block far above the rate (sampled with certainty);
     * the overflow buckets are 144-byte blocks, each sampled with
     * probability p = 1 − e^(−144/rate): sd of their estimate is
     * sqrt(n·p·(1−p))/p · 144 with n = overflow bytes / 144. */
    double p = 1 - exp(-144.0 / 524288), n = (truth - (double)b[3]) / 144;
    double sd = n > 0 ? sqrt(n * p * (1 - p)) / p * 144 : 1;
    CHECK(fabs(est - truth) <= 5 * sd + 0.001 * truth,
          "profile %.0f vs map %.0f bytes: %.1f sd", est, truth,
          fabs(est - truth) / sd);
  }
  printf("ok: profile shows %.1f MB of map, the map holds %.1f MB\n", est / 1e6,
         truth / 1e6);
  return 0;
}
