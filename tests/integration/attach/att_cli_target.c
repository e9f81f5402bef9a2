/*
 * att_cli_target — the quiet process test_att_cli attaches to: it prints
 * "ready", then its main thread reads stdin with fgets until EOF (blocked
 * in read under stdio's frames: an attach enters at once, if gdb can
 * unwind that stack through libc to its end) while a second thread
 * allocates a little every 10 ms (so that an attached heapprof samples,
 * starts its dump thread and answers `heapprof dump`; "ready" comes once it
 * has made its first 17 blocks); at EOF it exits 0.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Where the blocks go, so that the compiler keeps every malloc and free. */
static char *volatile ring[16];

static sem_t started; /* posted once the thread has its arena */

static void *allocate(void *arg) {
  (void)arg;
  struct timespec pause = {0, 10 * 1000 * 1000};
  for (unsigned i = 0;; i++) {
    free(ring[i % 16]);
    ring[i % 16] = malloc(4096 + i % 4096);
    if (ring[i % 16] != NULL)
      memset(ring[i % 16], (int)i, 64);
    if (i == 16)
      sem_post(&started);
    nanosleep(&pause, NULL);
  }
  return NULL;
}

int main(void) {
  pthread_t t;
  if (sem_init(&started, 0, 0) != 0 || pthread_create(&t, NULL, allocate, NULL) != 0)
    return 2;
  while (sem_wait(&started) != 0) {
  }
  if (write(1, "ready\n", 6) != 6)
    return 2;
  char buf[64];
  while (fgets(buf, sizeof buf, stdin) != NULL) {
  }
  return 0;
}
