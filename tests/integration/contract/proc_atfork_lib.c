/*
 * proc_atfork_lib — a library of the program under test (proc_atfork) that
 * registers fork handlers from its constructor, as libraries do (a pool
 * that must be re-seeded in the child, a lock that guards a cache). Its
 * constructor runs before heapprof's: the loader initialises a program's
 * libraries, loaded after the preloaded one, first. Its handlers allocate
 * 4 MiB at a size never used before (a new bucket, sampled at rate 1 and,
 * almost surely, at the default rate), as a handler that copies a table
 * would.
 *
 * The handlers log their order in atfork_log, which the program prints.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static char log_text[4096];
static size_t log_len;
static unsigned forks;
void *volatile atfork_lib_sink;

__attribute__((visibility("default"))) void atfork_log(const char *what) {
  size_t n = strlen(what);
  if (log_len + n + 2 < sizeof log_text) {
    memcpy(log_text + log_len, what, n);
    log_len += n;
    log_text[log_len++] = ' ';
    log_text[log_len] = '\0';
  }
}

__attribute__((visibility("default"))) const char *atfork_log_text(void) {
  return log_text;
}

__attribute__((visibility("default"))) void atfork_log_clear(void) {
  log_len = 0;
  log_text[0] = '\0';
}

static __attribute__((noipa)) void lib_alloc(unsigned salt) {
  /* 4 MiB: sampled at the default rate too (p = 1 - e^-8 = 0.9997) */
  void *p = malloc((4 << 20) + 16 * (size_t)(forks * 3 + salt));
  atfork_lib_sink = p;
  free(p);
}

static void prepare(void) {
  atfork_log("lib-prepare");
  lib_alloc(0);
}

static void parent(void) {
  lib_alloc(1);
  atfork_log("lib-parent");
  forks++;
}

static void child(void) {
  lib_alloc(2);
  atfork_log("lib-child");
  forks++;
}

__attribute__((constructor)) static void lib_init(void) {
  atfork_log("lib-ctor");
  pthread_atfork(prepare, parent, child);
}
