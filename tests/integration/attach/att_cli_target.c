/*
 * att_cli_target — the quiet process test_att_cli attaches to: it prints
 * "ready", then its main thread reads stdin until EOF (blocked in read: an
 * attach enters at once) while a second thread allocates a little every
 * 10 ms (so that an attached heapprof samples, starts its dump thread and
 * answers `heapprof dump`); at EOF it exits 0.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Where the blocks go, so that the compiler keeps every malloc and free. */
static char *volatile ring[16];

static void *allocate(void *arg) {
  (void)arg;
  struct timespec pause = {0, 10 * 1000 * 1000};
  for (unsigned i = 0;; i++) {
    free(ring[i % 16]);
    ring[i % 16] = malloc(4096 + i % 4096);
    if (ring[i % 16] != NULL)
      memset(ring[i % 16], (int)i, 64);
    nanosleep(&pause, NULL);
  }
  return NULL;
}

int main(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, allocate, NULL) != 0)
    return 2;
  if (write(1, "ready\n", 6) != 6)
    return 2;
  char buf[64];
  while (read(0, buf, sizeof buf) > 0) {
  }
  return 0;
}
