/*
 * test_signal — `kill -USR2` writes complete profiles while threads keep
 * allocating and freeing; a program's own handler for the dump signal wins.
 *
 *   test_signal storm     20 signals, each answered by a new profile file
 *                         (HEAPPROF_OUT) that pprof reads, no temp files left
 *   test_signal own       the program installs its own USR2 handler: it
 *                         runs, and no profile appears
 *   test_signal flood     1,000 signals a millisecond apart while the
 *                         threads allocate: no deadlock, every file that
 *                         appears parses, no temp file is left
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"

#define THREADS 4
#define SIGNALS 20

static atomic_int stop;
static atomic_long rounds;

static __attribute__((noipa)) void *churn(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  void *slots[256] = {0};
  while (!atomic_load(&stop)) {
    int i = rand_r(&seed) % 256;
    free(slots[i]);
    slots[i] = malloc(16 + (size_t)(rand_r(&seed) % 8192));
    atomic_fetch_add(&rounds, 1);
  }
  for (int i = 0; i < 256; i++)
    free(slots[i]);
  return NULL;
}

static int count_files(const char *dir, const char *prefix, int *temps) {
  DIR *d = opendir(dir);
  int n = 0;
  *temps = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
      continue;
    if (strstr(e->d_name, ".tmp."))
      (*temps)++;
    else
      n++;
  }
  closedir(d);
  return n;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

/* Waits up to 20 s for `want` finished profiles. */
static int wait_files(const char *dir, int want) {
  int n = 0, temps;
  for (int i = 0; i < 2000 && (n = count_files(dir, "sig.", &temps)) < want; i++)
    sleep_ms(10);
  return n;
}

static void storm(const char *dir) {
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++)
    pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1));
  /* Every profile must show the workers: let them allocate first. */
  while (atomic_load(&rounds) < 200000)
    sleep_ms(1);
  for (int s = 1; s <= SIGNALS; s++) {
    kill(getpid(), SIGUSR2);
    int n = wait_files(dir, s);
    CHECK(n == s, "signal %d: %d profiles after 20 s", s, n);
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  int temps;
  CHECK(count_files(dir, "sig.", &temps) == SIGNALS && temps == 0,
        "%d temp files left", temps);
  for (int s = 1; s <= SIGNALS; s++) {
    char path[600];
    snprintf(path, sizeof path, "%s/sig.%d.pb.gz", dir, s);
    tl_profile_t p;
    tl_read_profile(path, &p);
    int64_t v[4];
    CHECK(tl_site_any(&p, "churn", v) > 0, "profile %d has no churn samples",
          s);
    tl_free_profile(&p);
  }
  printf("ok: %d profiles written during %ld allocations on %d threads\n",
         SIGNALS, atomic_load(&rounds), THREADS);
}

static void flood(const char *dir) {
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++)
    pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1));
  for (int s = 0; s < 1000; s++) {
    kill(getpid(), SIGUSR2);
    sleep_ms(1);
  }
  /* Signals that arrive during a dump are answered by it: wait until the
   * files stop coming (2 s without a new one), at most 60 s. */
  int n = 0, temps, quiet = 0;
  for (int i = 0; i < 600 && quiet < 20; i++) {
    sleep_ms(100);
    int now = count_files(dir, "sig.", &temps);
    quiet = now == n ? quiet + 1 : 0;
    n = now;
  }
  CHECK(quiet >= 20, "profiles still coming after 60 s");
  atomic_store(&stop, 1);
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  CHECK(n >= 1 && count_files(dir, "sig.", &temps) == n && temps == 0,
        "%d profiles, %d temp files", n, temps);
  for (int s = 1; s <= n; s++) {
    char path[600];
    snprintf(path, sizeof path, "%s/sig.%d.pb.gz", dir, s);
    tl_profile_t p;
    tl_read_profile(path, &p);
    tl_free_profile(&p);
  }
  printf("ok: 1000 signals answered by %d complete profiles during %ld "
         "allocations\n", n, atomic_load(&rounds));
}

static volatile sig_atomic_t own_ran[3];
static void own_handler(int sig) {
  own_ran[sig == SIGUSR1 ? 0 : sig == SIGUSR2 ? 1 : 2] = 1;
}

/* The program's own handlers for USR1, USR2 (the dump signal) and PROF
 * all run, while threads allocate; USR2 then writes no profile. */
static void own(const char *dir) {
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++)
    pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1));
  int sigs[3] = {SIGUSR1, SIGUSR2, SIGPROF};
  for (int k = 0; k < 3; k++) {
    signal(sigs[k], own_handler);
    kill(getpid(), sigs[k]);
    for (int i = 0; i < 100 && !own_ran[k]; i++)
      sleep_ms(10);
    CHECK(own_ran[k], "the program's own handler for signal %d did not run",
          sigs[k]);
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  sleep_ms(500);
  int temps;
  CHECK(count_files(dir, "sig.", &temps) == 0 && temps == 0,
        "a profile was written although the program handles USR2");
  printf("ok: the program's handler won\n");
}

int main(int argc, char **argv) {
  CHECK(argc == 3, "usage: test_signal storm|own|flood DIR");
  if (strcmp(argv[1], "storm") == 0)
    storm(argv[2]);
  else if (strcmp(argv[1], "flood") == 0)
    flood(argv[2]);
  else
    own(argv[2]);
  return 0;
}
