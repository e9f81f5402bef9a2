/*
 * dlopen_loop — dlopens and dlcloses libraries in a loop (taking the loader
 * lock over and over, running their constructors) while four threads
 * allocate: the combination that deadlocks profilers which unwind while
 * holding a lock. Prints "ok" and the number of rounds.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static atomic_int stop;
static void *volatile sink;

static void *churn(void *arg) {
  (void)arg;
  while (!atomic_load(&stop)) {
    char *p = malloc(200);
    __asm__ volatile("" : : "r"(p) : "memory"); /* keep the pair */
    free(p);
  }
  return NULL;
}

int main(void) {
  static const char *libs[] = {"libz.so.1", "libbz2.so.1.0", "liblzma.so.5",
                               "libsqlite3.so.0"};
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    pthread_create(&t[i], NULL, churn, NULL);
  int rounds = 0;
  for (int r = 0; r < 300; r++) {
    void *h = dlopen(libs[r % 4], RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
      fprintf(stderr, "dlopen %s: %s\n", libs[r % 4], dlerror());
      return 1;
    }
    sink = dlsym(h, "zlibVersion");
    dlclose(h);
    rounds++;
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  printf("ok %d\n", rounds);
  return 0;
}
