/*
 * test_triggers — profiles written by the dump thread on its own triggers.
 *
 *   interval DIR   HEAPPROF_INTERVAL=1: a profile a second, each complete
 *   growth DIR     HEAPPROF_GROWTH=64M at rate 1: 330 MiB of growth gives
 *                  exactly 5 profiles
 *   peak DIR       runs itself as a child with HEAPPROF_PEAK=1 that rises
 *                  to 500 MB at one site, falls to 50 MB and exits: the peak
 *                  profile shows ~500 MB there, the exit profile 50 MB
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"

#define MIB ((size_t)1 << 20)

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Finished profiles in `dir` (temp files excluded). */
static int profiles(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d)) != NULL;)
    n += strstr(e->d_name, ".pb.gz") != NULL && strstr(e->d_name, ".tmp.") == NULL;
  if (d)
    closedir(d);
  return n;
}

static void check_all_parse(const char *dir, const char *prefix, int n) {
  for (int i = 1; i <= n; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s%d.pb.gz", dir, prefix, i);
    tl_profile_t p;
    tl_read_profile(path, &p);
    tl_free_profile(&p);
  }
}

static void interval(const char *dir) {
  double start = now_s();
  void *keep[64];
  for (int i = 0; i < 64; i++)
    keep[i] = malloc(64 * 1024);
  while (profiles(dir) < 3 && now_s() - start < 20)
    sleep_ms(50);
  double took = now_s() - start;
  int n = profiles(dir);
  CHECK(n >= 3, "%d profiles after %.1f s at HEAPPROF_INTERVAL=1", n, took);
  CHECK(n <= (int)took + 1, "%d profiles in %.1f s: more than one a second", n,
        took);
  check_all_parse(dir, "p.", 3);
  printf("ok: %d interval profiles in %.1f s\n", n, took);
  for (int i = 0; i < 64; i++)
    free(keep[i]);
}

static __attribute__((noipa)) void *grow(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}

static void growth(const char *dir) {
  static void *keep[330];
  for (int i = 0; i < 330; i++)
    keep[i] = grow(MIB);
  double start = now_s();
  while (profiles(dir) < 5 && now_s() - start < 20)
    sleep_ms(20);
  sleep_ms(500); /* a sixth would have shown up by now */
  int n = profiles(dir);
  CHECK(n == 5, "%d growth profiles for 330 MiB at 64M steps, want 5", n);
  check_all_parse(dir, "p.", 5);
  char last[1024];
  snprintf(last, sizeof last, "%s/p.5.pb.gz", dir);
  tl_profile_t p;
  tl_read_profile(last, &p);
  int64_t v[4];
  tl_site(&p, "grow", v);
  CHECK(v[3] >= (int64_t)(320 * MIB), "the 5th profile shows %lld B in use",
        (long long)v[3]);
  tl_free_profile(&p);
  printf("ok: 5 growth profiles, the last with %lld MiB in use\n",
         (long long)(v[3] / (int64_t)MIB));
  for (int i = 0; i < 330; i++)
    free(keep[i]);
}

static __attribute__((noipa)) void *rise(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}

/* The child: up to 500 MB at `rise`, down to 50 MB, exit. */
static void peak_child(void) {
  static void *blocks[500];
  for (int i = 0; i < 500; i++) {
    blocks[i] = rise(1000000);
    memset(blocks[i], 1, 4096);
  }
  for (int i = 50; i < 500; i++)
    free(blocks[i]);
  exit(0);
}

/* Runs this program as `mode` (a child mode) under the preload, with
 * HEAPPROF_OUT=DIR/p.%n.pb.gz and the two extra settings given; fails the
 * test unless it exits 0; returns its stderr. */
static char *run_child(const char *self, const char *mode, const char *dir,
                       char *setting1, char *setting2) {
  char out[1024], preload[1024];
  snprintf(out, sizeof out, "HEAPPROF_OUT=%s/p.%%n.pb.gz", dir);
  const char *lib = getenv("LD_PRELOAD");
  CHECK(lib != NULL, "run with LD_PRELOAD (CTest sets it)");
  snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lib);
  char *env[] = {"PATH=/usr/bin:/bin", preload, out, "HEAPPROF_SIGNAL=none",
                 setting1, setting2, NULL};
  char *args[] = {(char *)self, (char *)mode, (char *)dir, NULL};
  char *o, *e;
  CHECK(tl_run_env(args, env, &o, &e) == 0, "child %s failed: %s%s", mode, o, e);
  free(o);
  return e;
}

static void peak(const char *dir, const char *self) {
  free(run_child(self, "peak-child", dir, "HEAPPROF_PEAK=1", "HEAPPROF_RATE=1"));
  char exit_path[1024], peak_path[1024];
  snprintf(exit_path, sizeof exit_path, "%s/p.1.pb.gz", dir);
  snprintf(peak_path, sizeof peak_path, "%s/p.2.peak.pb.gz", dir);
  tl_profile_t pe, pp;
  int64_t ve[4], vp[4];
  tl_read_profile(exit_path, &pe);
  tl_read_profile(peak_path, &pp);
  tl_site(&pe, "rise", ve);
  tl_site(&pp, "rise", vp);
  printf("rise: in use %lld B at the peak, %lld B at exit\n", (long long)vp[3],
         (long long)ve[3]);
  CHECK(ve[3] == 50 * 1000000LL, "exit profile: %lld B in use at rise, want 50 MB",
        (long long)ve[3]);
  /* The copy is taken each time in-use passes the mark by 1/32: the last
   * one is within 1/32 of the true high-water mark (500 MB). */
  CHECK(vp[3] <= 500 * 1000000LL && vp[3] >= 500 * 1000000LL / 33 * 32,
        "peak profile: %lld B in use at rise, want about 500 MB",
        (long long)vp[3]);
  CHECK(strstr(pp.raw, "peak") != NULL, "the peak profile does not say so");
  tl_free_profile(&pe);
  tl_free_profile(&pp);
  printf("ok\n");
}

static __attribute__((noipa)) void *leak_site(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}

/* The child: grows at leak_site for ~3.5 s, past HEAPPROF_LEAKWATCH=1:2. */
static void leak_child(void) {
  for (int i = 0; i < 350; i++) {
    leak_site(100000);
    sleep_ms(10);
  }
  exit(0);
}

static void leak(const char *dir, const char *self) {
  char *e = run_child(self, "leak-child", dir, "HEAPPROF_LEAKWATCH=1:2",
                      "HEAPPROF_RATE=524288");
  char path[1024];
  CHECK(sscanf(e, "heapprof: leak watch: in-use grew for 2 looks 1s apart, to "
                  "%*f MB; growing most: leak_site +%*f MB; profile %1023s",
               path) == 1, "want a leak-watch line naming leak_site, got:\n%s",
        e);
  tl_profile_t p;
  tl_read_profile(path, &p);
  int64_t v[4];
  CHECK(tl_site(&p, "leak_site", v) > 0, "the leak profile lacks leak_site");
  tl_free_profile(&p);
  printf("ok: %s", e);
}

static __attribute__((noipa)) void *live_site(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}

/* The child: 3,000 blocks held, nothing growing, for ~6 s (three looks a
 * second apart are needed; the slack is for a loaded machine). */
static void live_child(void) {
  for (int i = 0; i < 3000; i++)
    live_site(64);
  sleep_ms(6000);
  exit(0);
}

/* The second sign of a leak: mallocs − frees staying above a level. */
static void live(const char *dir, const char *self) {
  char *e = run_child(self, "live-child", dir, "HEAPPROF_LEAKWATCH=1:3:1K",
                      "HEAPPROF_RATE=1");
  CHECK(strstr(e, "heapprof: leak watch: mallocs - frees stayed above 1024 for 3 "
                  "looks 1s apart") == e && strstr(e, "holding most: live_site"),
        "want a mallocs-frees leak-watch line naming live_site, got:\n%s", e);
  printf("ok: %s", e);
}

int main(int argc, char **argv) {
  CHECK(argc == 3, "usage: test_triggers interval|growth|peak|leak|live DIR");
  if (strcmp(argv[1], "interval") == 0)
    interval(argv[2]);
  else if (strcmp(argv[1], "growth") == 0)
    growth(argv[2]);
  else if (strcmp(argv[1], "peak") == 0)
    peak(argv[2], argv[0]);
  else if (strcmp(argv[1], "leak") == 0)
    leak(argv[2], argv[0]);
  else if (strcmp(argv[1], "leak-child") == 0)
    leak_child();
  else if (strcmp(argv[1], "live") == 0)
    live(argv[2], argv[0]);
  else if (strcmp(argv[1], "live-child") == 0)
    live_child();
  else
    peak_child();
  return 0;
}
